package marketplace_test

import (
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestCleanQuery(t *testing.T) {
	long := strings.Repeat("é", marketplace.MaxQueryLength)
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"   ", "", true},
		{"  kube web ", "kube web", true},
		{"hello-web", "hello-web", true},
		{"Grüße 42", "Grüße 42", true},
		{long, long, true},
		{"--- !!", "", false},
		{"a\x00b", "", false},
		{"a\tb", "", false},
		{"\xff\xfe", "", false},
		{long + "a", "", false},
	} {
		got, err := marketplace.CleanQuery(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CleanQuery(%q) = %q, %v; want %q, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && marketplace.ErrorCode(err) != marketplace.EINVALID {
			t.Errorf("CleanQuery(%q): error code %s, want EINVALID", tc.in, marketplace.ErrorCode(err))
		}
	}
}
