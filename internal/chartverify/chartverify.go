// Package chartverify checks a Helm chart archive and its .prov file (an OpenPGP clear-signed document
// naming the archive's SHA-256) against a publisher's public keys, with Helm's own package provenance.
// It fetches nothing: its caller (the kubernetes provider) hands it what it fetched through the fetch guard.
package chartverify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"helm.sh/helm/v4/pkg/provenance"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// MaxProvBytes bounds a .prov file: Helm's are about a kilobyte.
const MaxProvBytes = 64 << 10

// Verify checks archive (the chart package file named filename, as its .prov names it) against prov
// (nil: the chart is unsigned) and keys, armored public keys. What it finds is the signature's outcome:
// verified with the signer's fingerprint, unsigned, tampered (the archive's digest is not the one
// signed) or bad (no key of keys signed it, or prov is no signature).
func Verify(archive, prov []byte, filename string, keys []string) *marketplace.ChartSignature {
	sum := sha256.Sum256(archive)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	sig := &marketplace.ChartSignature{Digest: digest}
	if prov == nil {
		sig.Outcome, sig.Reason = marketplace.SignatureUnsigned, "the chart has no provenance file ("+filename+".prov)"
		return sig
	}
	if len(prov) > MaxProvBytes {
		sig.Outcome, sig.Reason = marketplace.SignatureBad, fmt.Sprintf("the provenance file is larger than %d bytes", MaxProvBytes)
		return sig
	}
	var ring openpgp.EntityList
	for _, k := range keys {
		if entities, err := openpgp.ReadArmoredKeyRing(strings.NewReader(k)); err == nil {
			ring = append(ring, entities...)
		}
	}
	if len(ring) == 0 {
		sig.Outcome, sig.Reason = marketplace.SignatureBad, "the chart is signed, but its publisher has registered no signing key"
		return sig
	}
	// The archive's digest is checked first, by itself: a signed .prov of another archive is a tampered
	// chart, whoever signed it.
	if block, _ := clearsign.Decode(prov); block != nil {
		var sums provenance.SumCollection
		if err := provenance.ParseMessageBlock(block.Plaintext, nil, &sums); err == nil {
			if named, ok := sums.Files[filename]; ok && named != digest {
				sig.Outcome, sig.Reason = marketplace.SignatureTampered,
					fmt.Sprintf("the chart archive's digest %s is not the %s its provenance file signs", digest, named)
				return sig
			}
		}
	}
	v, err := (&provenance.Signatory{KeyRing: ring}).Verify(archive, prov, filename)
	if err != nil {
		sig.Outcome, sig.Reason = outcome(err)
		return sig
	}
	sig.Verified, sig.Outcome, sig.Signer = true, marketplace.SignatureVerified, fingerprintOf(v.SignedBy)
	return sig
}

// outcome names why Helm's Verify refused.
func outcome(err error) (string, string) {
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return marketplace.SignatureBad, "the provenance file is not signed by any key its publisher registered"
	case strings.Contains(err.Error(), "sha256 sum does not match"):
		return marketplace.SignatureTampered, "the chart archive is not the one its provenance file signs"
	}
	return marketplace.SignatureBad, "the provenance file's signature does not verify: " + bounded(err.Error())
}

func bounded(s string) string {
	if len(s) > 300 {
		s = s[:300]
	}
	return string(bytes.ToValidUTF8([]byte(s), nil))
}

func fingerprintOf(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}
