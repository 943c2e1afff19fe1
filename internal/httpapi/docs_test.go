package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDocsAreServedLocally checks the API reference at /docs works offline: every script, stylesheet,
// image and link it references is on the same host, each asset is served, and the page documents the
// API's operations and schemas.
func TestDocsAreServedLocally(t *testing.T) {
	srv := httptest.NewServer(NewHandler(Deps{Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	page := get(t, srv.URL+"/docs", 200)
	if !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs is %q, want HTML", page.Header.Get("Content-Type"))
	}
	html := string(page.body)
	for _, want := range []string{"POST", "/api/deployments/install", "/api/apps/{id}/versions", `id="schema-Deployment"`, "hourly_rate"} {
		if !strings.Contains(html, want) {
			t.Errorf("/docs does not show %q", want)
		}
	}
	base, _ := url.Parse(srv.URL + "/docs")
	assets := 0
	for _, m := range regexp.MustCompile(`(?i)\b(src|href|action)\s*=\s*["']([^"']*)["']`).FindAllStringSubmatch(html, -1) {
		attr, ref := strings.ToLower(m[1]), m[2]
		u, err := base.Parse(ref)
		if err != nil {
			t.Errorf("%s=%q does not parse: %v", attr, ref, err)
			continue
		}
		if u.Host != base.Host || (u.Scheme != "http" && u.Scheme != "https") {
			t.Errorf("/docs references %s=%q, off this host: it would not load offline", attr, ref)
			continue
		}
		if strings.HasPrefix(ref, "#") {
			continue
		}
		if strings.Contains(m[0], "stylesheet") || attr == "src" || strings.Contains(u.Path, "/assets/") {
			assets++
		}
		if r := get(t, u.String(), 200); strings.Contains(u.Path, "/assets/") && r.Header.Get("Cache-Control") == "" {
			t.Errorf("%s is served without Cache-Control", u.Path)
		}
	}
	if assets == 0 {
		t.Error("/docs references no stylesheet of its own")
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("/docs has no same-origin Content-Security-Policy: %q", csp)
	}
	// <link rel=stylesheet> written with href before rel is found above; check the asset itself too.
	css := get(t, srv.URL+"/docs/assets/docs.css", 200)
	if !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") || strings.Contains(string(css.body), "http") {
		t.Errorf("docs.css: %q, and it must load nothing from elsewhere", css.Header.Get("Content-Type"))
	}
}

type fetched struct {
	Header http.Header
	body   []byte
}

func get(t *testing.T, u string, want int) fetched {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %.200s", u, resp.StatusCode, want, b)
	}
	return fetched{Header: resp.Header, body: b}
}
