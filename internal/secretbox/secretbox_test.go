package secretbox

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestSealOpenAndRotation(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	old, err := New(k1, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("apiVersion: v1\nkind: Config\n")
	sealed, err := old.Seal(secret, []byte("k8s/east"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret[:10]) {
		t.Fatalf("the sealed value holds the plaintext: %q", sealed)
	}
	if _, err := old.Open(sealed, []byte("k8s/west")); err == nil {
		t.Fatal("a value opened under another context")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := old.Open(sealed, []byte("k8s/east")); err == nil {
		t.Fatal("an altered value opened")
	}
	sealed[len(sealed)-1] ^= 1

	rotated, err := New(k2, []string{k1})
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Current(sealed) {
		t.Fatal("a value of the old key reported as sealed under the current one")
	}
	got, err := rotated.Open(sealed, []byte("k8s/east"))
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("after rotation: %q, %v", got, err)
	}
	resealed, err := rotated.Seal(got, []byte("k8s/east"))
	if err != nil || !rotated.Current(resealed) {
		t.Fatalf("resealed: %v", err)
	}
	onlyNew, err := New(k2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := onlyNew.Open(sealed, []byte("k8s/east")); !errors.Is(err, ErrNoKey) {
		t.Fatalf("the old key dropped, its value: %v, want ErrNoKey", err)
	}
	if got, err := onlyNew.Open(resealed, []byte("k8s/east")); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("resealed with the new key alone: %q, %v", got, err)
	}
}

func TestBadKeys(t *testing.T) {
	for _, k := range []string{"", "short", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := New(k, nil); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if _, err := New(newKey(t), []string{"nope"}); err == nil {
		t.Error("a bad old key accepted")
	}
}
