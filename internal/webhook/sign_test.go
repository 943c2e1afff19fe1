package webhook

import (
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's own example: any receiver library of the scheme verifies what
// Sign signs.
const (
	specSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	specID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	specTimestamp = 1614265330
	specBody      = `{"test": 2432232314}`
	specSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesTheSpecification(t *testing.T) {
	key, err := DecodeSecret(specSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, specID, time.Unix(specTimestamp, 0), []byte(specBody)); got != specSignature {
		t.Fatalf("Sign = %s, want the specification's %s", got, specSignature)
	}
}

func TestVerify(t *testing.T) {
	key, _ := DecodeSecret(specSecret)
	at := time.Unix(specTimestamp, 0)
	for _, tc := range []struct {
		name, id, timestamp, signature, body string
		now                                  time.Time
		refused                              string
	}{
		{"the specification's message", specID, "1614265330", specSignature, specBody, at, ""},
		{"one of several signatures (a key rotation)", specID, "1614265330", "v1,bm90IHRoaXMgb25l " + specSignature, specBody, at.Add(time.Minute), ""},
		{"a changed body", specID, "1614265330", specSignature, `{"test": 2432232315}`, at, "no webhook-signature matches"},
		{"another message's id", "msg_other", "1614265330", specSignature, specBody, at, "no webhook-signature matches"},
		{"another timestamp", specID, "1614265331", specSignature, specBody, at, "no webhook-signature matches"},
		{"a replay 10 minutes later", specID, "1614265330", specSignature, specBody, at.Add(10 * time.Minute), "more than 5m0s from now"},
		{"a timestamp that is no number", specID, "soon", specSignature, specBody, at, "not a number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(key, tc.id, tc.timestamp, tc.signature, []byte(tc.body), tc.now)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.refused)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	key, text := NewSecret()
	if !strings.HasPrefix(text, SecretPrefix) || len(key) != secretBytes {
		t.Fatalf("NewSecret = %d bytes, %q", len(key), text)
	}
	decoded, err := DecodeSecret(text)
	if err != nil || string(decoded) != string(key) {
		t.Fatalf("DecodeSecret(%q) = %x, %v; want %x", text, decoded, err, key)
	}
	if _, again := NewSecret(); again == text {
		t.Fatal("two secrets are the same")
	}
}

func TestBackoff(t *testing.T) {
	base, limit := 10*time.Second, time.Hour
	for _, tc := range []struct {
		attempt int
		want    time.Duration
	}{{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {9, 2560 * time.Second}, {10, time.Hour}, {50, time.Hour}} {
		got := Backoff(tc.attempt, base, limit)
		if got < tc.want || got > tc.want+tc.want/10 {
			t.Errorf("Backoff(%d) = %s, want %s to %s more", tc.attempt, got, tc.want, tc.want/10)
		}
	}
}
