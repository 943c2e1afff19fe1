package cli

import "testing"

// TestLoopback: the hosts login sends a token to over plain HTTP without a warning.
func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true, "127.8.9.1": true,
		"10.0.0.1": false, "marketplace.example.com": false, "localhost.example.com": false, "": false} {
		if got := loopback(host); got != want {
			t.Errorf("loopback(%q) = %v, want %v", host, got, want)
		}
	}
}
