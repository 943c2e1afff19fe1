// Package webhook sends the marketplace's events to the URLs their owners registered, signed the
// Standard Webhooks way (https://www.standardwebhooks.com): headers webhook-id, webhook-timestamp and
// webhook-signature, "v1," and the base64 HMAC-SHA256 of "<id>.<timestamp>.<body>" under the webhook's
// secret, which its owner got once as "whsec_" and its base64.
//
// The events come from the outbox the store fills in the transaction of each change (package postgres);
// a Sender claims due deliveries, sends each through the fetch guard's transport, and records the
// outcome: delivered, retried after an exponential backoff, or failed after its last attempt. Delivery
// is at least once: a sender that dies between the receiver's answer and the record sends that delivery
// again once its lease lapses, with the same webhook-id, by which a receiver drops the repeat.
//
// This package imports nothing of the marketplace but its domain.
package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every secret as its owner sees it.
const SecretPrefix = "whsec_"

// secretBytes is the size of a new secret's key (the scheme allows 24 to 64).
const secretBytes = 32

// NewSecret returns a fresh signing key and its text, shown once to the webhook's owner.
func NewSecret() (key []byte, text string) {
	key = make([]byte, secretBytes)
	rand.Read(key)
	return key, SecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// DecodeSecret returns the key of a secret's text (with or without its prefix).
func DecodeSecret(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(text, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("a webhook secret is %s and base64: %w", SecretPrefix, err)
	}
	return key, nil
}

// Sign returns the webhook-signature header of one message: "v1," and the base64 HMAC-SHA256 of
// "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + strconv.FormatInt(timestamp.Unix(), 10) + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Tolerance is how far a message's timestamp may be from the receiver's clock before Verify refuses it
// (a replayed message).
const Tolerance = 5 * time.Minute

// Verify is the receiver's side: it checks that a message with these headers and body was signed with
// key and sent within Tolerance of now. signature may hold several space-separated signatures (a key
// being rotated); one valid v1 signature is enough.
func Verify(key []byte, id, timestamp, signature string, body []byte, now time.Time) error {
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not a number of seconds", timestamp)
	}
	at := time.Unix(secs, 0)
	if at.Before(now.Add(-Tolerance)) || at.After(now.Add(Tolerance)) {
		return fmt.Errorf("webhook-timestamp %s is more than %s from now", at.UTC().Format(time.RFC3339), Tolerance)
	}
	want := Sign(key, id, at, body)
	for _, s := range strings.Fields(signature) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("no webhook-signature matches the body")
}
