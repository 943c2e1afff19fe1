package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPIMatchesRoutes fails when the served OpenAPI document and the router disagree: every
// documented operation is routed and every routed API path is documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := NewHandler(Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi %q, want 3.1", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	routed := map[string]bool{}
	err = chi.Walk(h.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		// The document itself, its renderer and the metrics are not API operations.
		if strings.HasPrefix(route, "/openapi") || strings.HasPrefix(route, "/docs") || strings.HasPrefix(route, "/schemas") || route == "/metrics" {
			return nil
		}
		routed[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for op := range documented {
		if !routed[op] {
			t.Errorf("documented but not routed: %s", op)
		}
	}
	for op := range routed {
		if !documented[op] {
			t.Errorf("routed but not documented: %s", op)
		}
	}
	// The seed API's endpoints are all there.
	seed := []string{"POST /api/users/new", "GET /api/users", "GET /api/users/{id}/deployments", "POST /api/apps/new",
		"GET /api/apps", "GET /api/apps/{id}", "PUT /api/apps/{id}", "DELETE /api/apps/{id}", "POST /api/user/project/new",
		"GET /api/user/project/{userID}", "GET /api/user/project/{id}/deployments", "DELETE /api/user/project/{id}",
		"POST /api/deployments/install", "GET /api/deployments", "GET /api/deployments/{id}", "DELETE /api/deployments/{id}",
		"GET /api/billing/user/{id}", "GET /api/billing/user/{id}/deployment/{deploymentID}", "GET /healthz", "GET /readyz"}
	sort.Strings(seed)
	for _, op := range seed {
		if !documented[op] {
			t.Errorf("seed endpoint missing from the document: %s", op)
		}
	}
}
