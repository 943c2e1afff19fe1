package marketplace

import (
	"context"
	"time"
)

// Outcomes of checking a chart version's provenance (its .prov file) at publish.
const (
	SignatureVerified  = "verified"      // signed by one of its publisher's keys, and the archive is the one signed
	SignatureUnsigned  = "unsigned"      // no .prov next to the chart (or no provenance layer in the registry)
	SignatureTampered  = "tampered"      // the archive is not the one the .prov names (digest mismatch)
	SignatureBad       = "bad-signature" // no key of the publisher signed the .prov, or it is no signature at all
	SignatureUnchecked = "unchecked"     // not checked: its publisher has registered no signing key
)

// ChartSignature is what the marketplace found of a chart version's provenance when it was published.
type ChartSignature struct {
	Verified bool   `json:"verified" doc:"signed by one of its publisher's registered keys, and the archive is the one signed"`
	Outcome  string `json:"outcome" enum:"verified,unsigned,tampered,bad-signature,unchecked"`
	Signer   string `json:"signer,omitempty" doc:"the fingerprint of the publisher's key that signed it"`
	Digest   string `json:"digest,omitempty" doc:"sha256:<hex> of the chart archive checked; an install of a verified version refuses any other archive"`
	Reason   string `json:"reason,omitempty" doc:"why it is not verified"`
}

// Refused tells whether a version with this provenance is refused at publish: a tampered chart or a bad
// signature always, an unsigned one when the operator requires signed charts.
func (s *ChartSignature) Refused(requireSigned bool) bool {
	switch s.Outcome {
	case SignatureTampered, SignatureBad:
		return true
	case SignatureUnsigned, SignatureUnchecked:
		return requireSigned
	}
	return false
}

// SigningKey is a public OpenPGP key a publisher registered: a chart it signs with the key's private half
// is verified at publish.
type SigningKey struct {
	ID          int64     `json:"id"`
	UserID      int64     `json:"user_id"`
	Fingerprint string    `json:"fingerprint" doc:"the primary key's fingerprint, hex"`
	Identities  []string  `json:"identities" doc:"the key's user IDs (name <email>)"`
	Armored     string    `json:"armored_key" doc:"the ASCII-armored public key"`
	CreatedAt   time.Time `json:"created_at"`
}

// MaxSigningKeyBytes bounds an armored public key; MaxSigningKeys bounds a publisher's keys.
const (
	MaxSigningKeyBytes = 64 << 10
	MaxSigningKeys     = 20
)

// SigningKeyService stores publishers' keys. A user reads and deletes only its own (the operator any).
type SigningKeyService interface {
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	FindSigningKeys(ctx context.Context, userID int64) ([]*SigningKey, error)
	DeleteSigningKey(ctx context.Context, userID, id int64) error
}
