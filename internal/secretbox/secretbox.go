// Package secretbox seals small secrets (a target's kubeconfig) for storage: AES-256-GCM under the key of
// MARKETPLACE_SECRET_KEY. A sealed value names the key that sealed it (the first bytes of the key's
// SHA-256), so a box opened with the current key and a list of old ones reads what either sealed, and
// Sealed reports what an old key still holds (key rotation, README "Targets").
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// version is the first byte of every sealed value: the format below.
const version = 1

// idLen is how many bytes of the key's SHA-256 name it in a sealed value.
const idLen = 8

// Box seals with its current key and opens with it or any of its old keys.
type Box struct {
	current key
	old     []key
}

type key struct {
	id   []byte
	aead cipher.AEAD
}

// ErrNoKey is what opening a value sealed under none of the box's keys returns.
var ErrNoKey = errors.New("sealed under a key this marketplace does not have (MARKETPLACE_SECRET_KEY, MARKETPLACE_OLD_SECRET_KEYS)")

// New makes a box from the current key and the old ones, each 32 bytes written in standard base64
// (`openssl rand -base64 32`). An empty current key is refused: the caller decides what running without
// one means.
func New(current string, old []string) (*Box, error) {
	c, err := parseKey("MARKETPLACE_SECRET_KEY", current)
	if err != nil {
		return nil, err
	}
	b := &Box{current: c}
	for i, s := range old {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := parseKey(fmt.Sprintf("MARKETPLACE_OLD_SECRET_KEYS[%d]", i), s)
		if err != nil {
			return nil, err
		}
		b.old = append(b.old, k)
	}
	return b, nil
}

func parseKey(name, s string) (key, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(raw) != 32 {
		return key{}, fmt.Errorf("%s must be 32 random bytes in base64 (openssl rand -base64 32), not %d characters that are not", name, len(s))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, fmt.Errorf("%s: %w", name, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, fmt.Errorf("%s: %w", name, err)
	}
	sum := sha256.Sum256(raw)
	return key{id: sum[:idLen], aead: aead}, nil
}

// Seal encrypts plaintext under the current key, bound to context (the same context opens it: a value
// copied to another row does not open there).
func (b *Box) Seal(plaintext, context []byte) ([]byte, error) {
	nonce := make([]byte, b.current.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	out := append([]byte{version}, b.current.id...)
	out = append(out, nonce...)
	return b.current.aead.Seal(out, nonce, plaintext, context), nil
}

// Open decrypts what Seal sealed under context, with whichever of the box's keys sealed it.
func (b *Box) Open(sealed, context []byte) ([]byte, error) {
	k, err := b.keyOf(sealed)
	if err != nil {
		return nil, err
	}
	rest := sealed[1+idLen:]
	n := k.aead.NonceSize()
	if len(rest) < n+k.aead.Overhead() {
		return nil, errors.New("open: the sealed value is truncated")
	}
	plain, err := k.aead.Open(nil, rest[:n], rest[n:], context)
	if err != nil {
		return nil, errors.New("open: the sealed value was altered or belongs elsewhere")
	}
	return plain, nil
}

// Current reports whether sealed was sealed under the current key (false: an old one, to seal again).
func (b *Box) Current(sealed []byte) bool {
	return len(sealed) > 1+idLen && sealed[0] == version && bytes.Equal(sealed[1:1+idLen], b.current.id)
}

func (b *Box) keyOf(sealed []byte) (key, error) {
	if len(sealed) < 1+idLen || sealed[0] != version {
		return key{}, errors.New("open: not a sealed value of this format")
	}
	id := sealed[1 : 1+idLen]
	for _, k := range append([]key{b.current}, b.old...) {
		if bytes.Equal(k.id, id) {
			return k, nil
		}
	}
	return key{}, ErrNoKey
}
