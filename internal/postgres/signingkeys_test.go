package postgres_test

import (
	"context"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// TestSigningKeysAreTheirOwners: a user's keys are read and deleted by the user (or the operator), never
// by another user (not found); a key registered twice is refused. A version's signature is kept with it
// and shown by the application while it is the current one.
func TestSigningKeysAreTheirOwners(t *testing.T) {
	op := marketplace.OperatorContext(context.Background())
	db, err := postgres.Open(op, tenv.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	u, o := &marketplace.User{Name: "publisher"}, &marketplace.User{Name: "other"}
	if err := db.CreateUser(op, u, []byte("hash-u")); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateUser(op, o, []byte("hash-o")); err != nil {
		t.Fatal(err)
	}
	asU := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: u.ID})
	asO := marketplace.WithCaller(context.Background(), marketplace.Caller{UserID: o.ID})

	k := &marketplace.SigningKey{UserID: u.ID, Fingerprint: "ABCD", Identities: []string{"p <p@example.com>"}, Armored: "-----BEGIN PGP PUBLIC KEY BLOCK-----"}
	if err := db.CreateSigningKey(asU, k); err != nil || k.ID == 0 {
		t.Fatalf("create: %v %+v", err, k)
	}
	if err := db.CreateSigningKey(asU, &marketplace.SigningKey{UserID: u.ID, Fingerprint: "ABCD", Armored: "x"}); marketplace.ErrorCode(err) != marketplace.ECONFLICT {
		t.Errorf("the same key again: %v, want a conflict", err)
	}
	if err := db.CreateSigningKey(asO, &marketplace.SigningKey{UserID: u.ID, Fingerprint: "EEEE", Armored: "x"}); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user registers a key for the publisher: %v, want not found", err)
	}
	if _, err := db.FindSigningKeys(asO, u.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user reads the keys: %v, want not found", err)
	}
	if err := db.DeleteSigningKey(asO, u.ID, k.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user deletes a key: %v, want not found", err)
	}
	if err := db.DeleteSigningKey(asO, o.ID, k.ID); marketplace.ErrorCode(err) != marketplace.ENOTFOUND {
		t.Errorf("another user deletes a key as its own: %v, want not found", err)
	}
	for _, ctx := range []context.Context{asU, op} {
		if ks, err := db.FindSigningKeys(ctx, u.ID); err != nil || len(ks) != 1 || ks[0].Fingerprint != "ABCD" || ks[0].Identities[0] != "p <p@example.com>" {
			t.Errorf("the keys: %v %v", ks, err)
		}
	}

	sig := &marketplace.ChartSignature{Verified: true, Outcome: marketplace.SignatureVerified, Signer: "ABCD", Digest: "sha256:00"}
	app := &marketplace.Application{Name: "a", PublisherID: u.ID, HourlyRate: marketplace.MustMoney("1"), Signature: sig,
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: "http://x", ChartName: "c"}, Inputs: []marketplace.Input{}}
	if err := db.CreateApp(asU, app); err != nil {
		t.Fatal(err)
	}
	v := &marketplace.AppVersion{ApplicationID: app.ID, HourlyRate: marketplace.MustMoney("1"), Deployment: app.Deployment, Inputs: []marketplace.Input{},
		Signature: &marketplace.ChartSignature{Outcome: marketplace.SignatureUnsigned, Reason: "no .prov"}}
	if err := db.CreateVersion(asU, v); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindAppVersion(asO, app.ID, 1)
	if err != nil || got.Signature == nil || *got.Signature != *sig {
		t.Errorf("version 1: %+v %v", got.Signature, err)
	}
	current, err := db.FindAppByID(asO, app.ID)
	if err != nil || current.Signature == nil || current.Signature.Verified || current.Signature.Reason != "no .prov" {
		t.Errorf("the application shows its current version's signature: %+v %v", current.Signature, err)
	}

	if err := db.DeleteSigningKey(asU, u.ID, k.ID); err != nil {
		t.Errorf("the publisher deletes its key: %v", err)
	}
	if ks, err := db.FindSigningKeys(asU, u.ID); err != nil || len(ks) != 0 {
		t.Errorf("after the delete: %v %v", ks, err)
	}
}
