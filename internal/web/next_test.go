package web

import "testing"

// TestSafeNext: a next= keeps the browser on this site. A browser drops tabs and newlines from a URL and
// reads a backslash as a slash, so each of these would be //evil.example to it.
func TestSafeNext(t *testing.T) {
	for _, next := range []string{"", "evil.example", "//evil.example", "https://evil.example/", `/\evil.example`,
		"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/\t\\evil.example", " //evil.example",
		"/\x00/evil.example", "/\x7f/evil.example", "javascript:alert(1)"} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
	}
	// Encoded, the tab stays a %09 in the path: the browser does not decode it into one.
	for _, next := range []string{"/", "/deployments", "/apps/3?x=1&y=%2F%2F", "/%09/evil.example", "/?q=a+b#top"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it unchanged", next, got)
		}
	}
}
