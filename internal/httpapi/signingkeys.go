package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// ChartChecker checks a chart's provenance when a version is published, and reads publishers' keys.
type ChartChecker interface {
	// CheckChart checks the chart of spec (a version of application appID, 0 for a new one, published
	// by publisher); a refusal is EINVALID and says why.
	CheckChart(ctx context.Context, appID, publisher int64, spec marketplace.DeploymentSpec) (*marketplace.ChartSignature, error)
	// ReadKey parses an armored public key: its fingerprint and user IDs.
	ReadKey(armored string) (string, []string, error)
}

// signer is whose keys a version is checked against: the user publishing it, or for the operator the
// application's publisher.
func signer(ctx context.Context, publisher int64) int64 {
	if c := marketplace.CallerFrom(ctx); c.UserID > 0 {
		return c.UserID
	}
	return publisher
}

type signingKeyRequest struct {
	ArmoredKey string `json:"armored_key" minLength:"1" maxLength:"65536" doc:"an ASCII-armored OpenPGP public key (gpg --armor --export <key>)"`
}

type createSigningKeyInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body signingKeyRequest
}

func createSigningKey(keys marketplace.SigningKeyService, charts ChartChecker, log *slog.Logger) func(context.Context, *createSigningKeyInput) (*body[*marketplace.SigningKey], error) {
	return func(ctx context.Context, in *createSigningKeyInput) (*body[*marketplace.SigningKey], error) {
		if charts == nil {
			return nil, problem(ctx, log, marketplace.Errorf(marketplace.EINVALID, "this marketplace checks no chart signatures"))
		}
		fp, ids, err := charts.ReadKey(in.Body.ArmoredKey)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		k := &marketplace.SigningKey{UserID: in.ID, Fingerprint: fp, Identities: ids, Armored: in.Body.ArmoredKey}
		if err := keys.CreateSigningKey(ctx, k); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.SigningKey]{k}, nil
	}
}

func listSigningKeys(keys marketplace.SigningKeyService, log *slog.Logger) func(context.Context, *idInput) (*body[[]*marketplace.SigningKey], error) {
	return func(ctx context.Context, in *idInput) (*body[[]*marketplace.SigningKey], error) {
		ks, err := keys.FindSigningKeys(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[[]*marketplace.SigningKey]{ks}, nil
	}
}

type signingKeyInput struct {
	ID    int64 `path:"id" minimum:"1"`
	KeyID int64 `path:"keyID" minimum:"1"`
}

func deleteSigningKey(keys marketplace.SigningKeyService, log *slog.Logger) func(context.Context, *signingKeyInput) (*struct{}, error) {
	return func(ctx context.Context, in *signingKeyInput) (*struct{}, error) {
		if err := keys.DeleteSigningKey(ctx, in.ID, in.KeyID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
