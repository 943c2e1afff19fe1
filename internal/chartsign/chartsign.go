// Package chartsign checks Helm chart provenance at publish: it reads publishers' public OpenPGP keys
// (ParseKey) and decides what a chart's signature means for a publish (Checker). The verification itself
// runs where charts are fetched, on a worker (package chartverify, with Helm's pkg/provenance): an API
// replica links nothing of Helm.
package chartsign

import (
	"encoding/hex"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// ParseKey reads one armored OpenPGP public key block and returns its fingerprint and user IDs. A
// private key is refused: the marketplace must never hold one of a publisher's.
func ParseKey(armored string) (fingerprint string, identities []string, err error) {
	if len(armored) > marketplace.MaxSigningKeyBytes {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: at most %d bytes", marketplace.MaxSigningKeyBytes)
	}
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: not an ASCII-armored OpenPGP key block")
	}
	if block.Type != openpgp.PublicKeyType {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: a %q block; register the public key only (gpg --armor --export)", block.Type)
	}
	ring, err := openpgp.ReadKeyRing(block.Body)
	if err != nil {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: not an OpenPGP public key: %v", err)
	}
	if len(ring) != 1 {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: %d keys in the block; register one key at a time", len(ring))
	}
	e := ring[0]
	if e.PrivateKey != nil {
		return "", nil, marketplace.Errorf(marketplace.EINVALID, "armored_key: it holds a private key; register the public key only")
	}
	for name := range e.Identities {
		identities = append(identities, name)
	}
	return fingerprintOf(e), identities, nil
}

func fingerprintOf(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}
