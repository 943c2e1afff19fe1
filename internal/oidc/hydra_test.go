package oidc_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/oidc"
	"github.com/marketplace/marketplace/internal/postgres"
	"github.com/marketplace/marketplace/internal/testenv"
)

var tenv *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, &tenv, testenv.Options{})) }

// TestAccessTokens checks a real provider's (Ory Hydra's) JWT access tokens: one for the marketplace's
// audience is its subject's user (created once), and one for another audience, one whose signature was
// changed, or an ID token, are EUNAUTHORIZED.
func TestAccessTokens(t *testing.T) {
	ctx := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(ctx, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := tenv.Hydra(t)
	const redirect = "http://127.0.0.1:1/callback"
	id, secret := h.Client(t, []string{redirect}, "marketplace-api")
	p, err := oidc.New(ctx, oidc.Config{Issuer: h.Issuer, ClientID: id, ClientSecret: secret, Audience: "marketplace-api"}, db,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tok := h.Tokens(t, id, secret, redirect, "bob", "marketplace-api")
	access := tok["access_token"].(string)
	user, err := p.UserOfAccessToken(ctx, access)
	if err != nil {
		t.Fatalf("a valid access token: %v", err)
	}
	if again, err := p.UserOfAccessToken(ctx, access); err != nil || again != user {
		t.Fatalf("the same token again: %d %v, want user %d", again, err, user)
	}
	otherID, otherSecret := h.Client(t, []string{redirect}, "other-api")
	other := h.Tokens(t, otherID, otherSecret, redirect, "bob", "other-api")["access_token"].(string)
	parts := strings.Split(access, ".")
	sig := []byte(parts[2])
	if sig[len(sig)/2] == 'A' { // another base64url character: the same length, another signature
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	for what, bad := range map[string]string{"another audience": other, "a changed signature": parts[0] + "." + parts[1] + "." + string(sig),
		"an ID token": tok["id_token"].(string)} {
		if _, err := p.UserOfAccessToken(ctx, bad); marketplace.ErrorCode(err) != marketplace.EUNAUTHORIZED {
			t.Errorf("%s: %v, want EUNAUTHORIZED", what, err)
		}
	}
}
