package httpapi

import (
	"fmt"
	"testing"
	"time"
)

// TestClientLimiter checks each address has a bucket of its own (an IPv6 host its /64), a refused event
// says how long to wait, and the table stays bounded: full, new clients share one bucket, and buckets
// that refilled are forgotten.
func TestClientLimiter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newClientLimiter(60, 2) // one a second, bursts of two
	for i := range 2 {
		if wait := l.wait("192.0.2.1:5000", now); wait != 0 {
			t.Fatalf("event %d of a burst of 2 refused (wait %v)", i+1, wait)
		}
	}
	if wait := l.wait("192.0.2.1:5001", now); wait <= 0 || wait > time.Second {
		t.Fatalf("third event at once: wait %v, want up to 1s", wait)
	}
	if wait := l.wait("192.0.2.2:5000", now); wait != 0 {
		t.Fatalf("another address waits %v", wait)
	}
	if wait := l.wait("192.0.2.1:5000", now.Add(time.Second)); wait != 0 {
		t.Fatalf("a second later: wait %v", wait)
	}
	l.wait("[2001:db8::1]:1", now)
	l.wait("[2001:db8::2]:1", now)
	if wait := l.wait("[2001:db8::3]:1", now); wait == 0 {
		t.Fatal("a third event from the same IPv6 /64 was allowed")
	}

	if l.wait("not an address", now) != 0 {
		t.Fatal("an address that does not parse was refused its first event")
	}
	for i := len(l.clients); i < maxRateLimitedClients; i++ {
		l.wait(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), now)
	}
	if len(l.clients) != maxRateLimitedClients {
		t.Fatalf("%d clients, want %d", len(l.clients), maxRateLimitedClients)
	}
	l.wait("198.51.100.1:1", now)
	l.wait("198.51.100.2:1", now)
	if wait := l.wait("198.51.100.3:1", now); wait == 0 {
		t.Fatal("with the table full, new clients do not share a bucket")
	}
	if len(l.clients) > maxRateLimitedClients {
		t.Fatalf("the table grew to %d", len(l.clients))
	}
	// Three seconds later every bucket is full again: they are forgotten for the next new client.
	if wait := l.wait("198.51.100.4:1", now.Add(3*time.Second)); wait != 0 {
		t.Fatalf("a new client after the sweep waits %v", wait)
	}
	if len(l.clients) != 1 {
		t.Fatalf("%d clients after the sweep, want 1", len(l.clients))
	}
}

func TestWellFormedToken(t *testing.T) {
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{newToken(), true}, {"mpt_not-a-token", false}, {"", false},
		{"xyz_" + newToken()[4:], false}, {newToken()[:46] + "!", false}, {newToken() + "a", false},
	} {
		if wellFormedToken(tc.token) != tc.ok {
			t.Errorf("wellFormedToken(%q) = %v, want %v", tc.token, !tc.ok, tc.ok)
		}
	}
}
