package chartsign

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

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

func TestParseKey(t *testing.T) {
	_, publisherKey := newKey(t, "publisher")
	fp, ids, err := ParseKey(publisherKey)
	if err != nil || len(ids) != 1 || !strings.Contains(ids[0], "publisher@example.com") || len(fp) != 40 {
		t.Fatalf("ParseKey = %q %q %v", fp, ids, err)
	}
}

func TestParseKeyRefusesPrivateKeysAndJunk(t *testing.T) {
	e, _ := newKey(t, "publisher")
	var b bytes.Buffer
	w, _ := armor.Encode(&b, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivate(w, nil); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for name, armored := range map[string]string{"private key": b.String(), "junk": "not a key", "huge": strings.Repeat("a", marketplace.MaxSigningKeyBytes+1)} {
		if _, _, err := ParseKey(armored); marketplace.ErrorCode(err) != marketplace.EINVALID {
			t.Errorf("%s: ParseKey error %v, want EINVALID", name, err)
		}
	}
}
