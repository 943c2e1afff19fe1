package chartverify

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"helm.sh/helm/v4/pkg/provenance"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// newKey generates an OpenPGP key and returns it with its armored public half.
func newKey(t *testing.T, name string) (*openpgp.Entity, string) {
	t.Helper()
	e, err := openpgp.NewEntity(name, "", name+"@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, err := armor.Encode(&b, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return e, b.String()
}

func sign(t *testing.T, e *openpgp.Entity, archive []byte, filename string) []byte {
	t.Helper()
	prov, err := (&provenance.Signatory{Entity: e}).ClearSign(archive, filename, []byte("name: demo\nversion: 1.0.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(prov)
}

func TestVerify(t *testing.T) {
	publisher, publisherKey := newKey(t, "publisher")
	other, otherKey := newKey(t, "other")
	archive := []byte("a chart archive's bytes")
	const file = "demo-1.0.0.tgz"
	prov := sign(t, publisher, archive, file)

	fp := strings.ToUpper(hex.EncodeToString(publisher.PrimaryKey.Fingerprint))

	for _, c := range []struct {
		name     string
		archive  []byte
		prov     []byte
		keys     []string
		outcome  string
		verified bool
	}{
		{"signed by a registered key", archive, prov, []string{otherKey, publisherKey}, marketplace.SignatureVerified, true},
		{"tampered archive", []byte("another archive"), prov, []string{publisherKey}, marketplace.SignatureTampered, false},
		{"signed by another key", archive, sign(t, other, archive, file), []string{publisherKey}, marketplace.SignatureBad, false},
		{"no key registered", archive, prov, nil, marketplace.SignatureBad, false},
		{"not a signature", archive, []byte("hello"), []string{publisherKey}, marketplace.SignatureBad, false},
		{"unsigned", archive, nil, []string{publisherKey}, marketplace.SignatureUnsigned, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sig := Verify(c.archive, c.prov, file, c.keys)
			if sig.Outcome != c.outcome || sig.Verified != c.verified {
				t.Fatalf("Verify = %+v, want %s", sig, c.outcome)
			}
			if c.verified && sig.Signer != fp {
				t.Errorf("signer %q, want %q", sig.Signer, fp)
			}
			if !c.verified && sig.Reason == "" {
				t.Error("no reason given")
			}
			if !strings.HasPrefix(sig.Digest, "sha256:") {
				t.Errorf("digest %q", sig.Digest)
			}
		})
	}
}
