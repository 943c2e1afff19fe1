package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOCITagListIsBounded points an application at a registry whose tag list never ends (each page
// links to one more): a dry run of it answers a 4xx saying so, after a bounded number of pages, instead
// of following the registry for ever.
func TestOCITagListIsBounded(t *testing.T) {
	var pages atomic.Int64
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			n := pages.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Link", fmt.Sprintf(`</v2/charts/endless/tags/list?n=1000&last=v%d>; rel="next"`, n))
			fmt.Fprintf(w, `{"name":"charts/endless","tags":["0.%d.0"]}`, n)
		default:
			http.NotFound(w, r)
		}
	}))
	defer registry.Close()
	host := strings.TrimPrefix(registry.URL, "http://")
	mp := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + host})
	_, tok := mp.user(t, "user")
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "endless tags", "hourly_rate": 0.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": "oci://" + host + "/charts", "chartName": "endless"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])

	done := make(chan response, 1)
	go func() {
		done <- mp.call(t, "POST", "/api/deployments/install?dry_run=true", tok, map[string]any{"application_id": app, "project_id": project})
	}()
	select {
	case r := <-done:
		if r.Status < 400 || r.Status >= 500 || !strings.Contains(string(r.Body), "more than") {
			t.Fatalf("dry run against an endless tag list: %d %s, want a 4xx saying the list is too long", r.Status, r.Body)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the dry run still waits after 90 s; the registry served %d pages", pages.Load())
	}
	// The tags are listed three times: once when the published version's package is read (package
	// chartmeta, in the background), then by the dry run twice (the values schema's read at request time,
	// then the preview). Each stops after 10 pages and the request for the 11th.
	if n := pages.Load(); n > 33 {
		t.Fatalf("the registry served %d pages of tags, want at most 11 for each of the 3 listings", n)
	}
}
