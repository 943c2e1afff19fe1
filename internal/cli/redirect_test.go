package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestTokenStaysWithItsServer: a marketplace address that redirects elsewhere (another port, another
// host, http instead of https) does not receive the bearer token there. Go's client forwards
// Authorization on a redirect to the same host name, whatever the port or scheme; mpctl follows no
// redirect off the address it was given.
func TestTokenStaysWithItsServer(t *testing.T) {
	const token = "mpt_secret-token-of-the-user"
	var mu sync.Mutex
	var leaked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data":[],"page":1,"total_pages":1,"total_items":0}`))
	}))
	defer elsewhere.Close()
	// The address the user logged in to, which now sends every request to another port of the same host.
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()

	for _, args := range [][]string{{"apps", "list"}, {"login", "--url", redirecting.URL, "--token", token}} {
		var stdout, stderr bytes.Buffer
		dir := t.TempDir()
		env := Env{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string {
			return map[string]string{"MARKETPLACE_URL": redirecting.URL, "MARKETPLACE_TOKEN": token, "HOME": dir}[k]
		}}
		code := Run(context.Background(), args, env)
		if code == ExitOK {
			t.Errorf("mpctl %s through a redirect to another address: exit 0, want a refusal", strings.Join(args, " "))
		}
		if !strings.Contains(stderr.String(), "redirect") {
			t.Errorf("mpctl %s: stderr %q does not say it refused a redirect", strings.Join(args, " "), stderr.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, auth := range leaked {
		if strings.Contains(auth, token) {
			t.Fatalf("the token was sent to %s, which the marketplace's address redirected to", elsewhere.URL)
		}
	}
}
