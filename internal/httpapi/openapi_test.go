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

// openAPIDocument fetches the served document.
func openAPIDocument(t *testing.T) map[string]any {
	t.Helper()
	srv := httptest.NewServer(NewHandler(Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestMoneyIsDecimalInTheDocument checks every money field of every schema is of format decimal (a number
// in the seed API, a string in the ledger's documents), so no generated client reads an amount into a
// binary float.
func TestMoneyIsDecimalInTheDocument(t *testing.T) {
	schemas := openAPIDocument(t)["components"].(map[string]any)["schemas"].(map[string]any)
	found := 0
	for name, s := range schemas {
		props, _ := s.(map[string]any)["properties"].(map[string]any)
		for _, field := range []string{"hourly_rate", "amount", "total_amount"} {
			p, ok := props[field].(map[string]any)
			if !ok {
				continue
			}
			found++
			if (p["type"] != "number" && p["type"] != "string") || p["format"] != "decimal" {
				t.Errorf("%s.%s is %v, want a number or a string of format decimal", name, field, p)
			}
		}
	}
	if found < 5 { // the application, its request, the deployment, the usage record (2), the bill
		t.Errorf("found %d money fields, want every one of them", found)
	}
}

// TestListsDocumentPaging checks every list documents page and limit (at most maxPageLimit) and the
// X-Total-Count and Link headers.
func TestListsDocumentPaging(t *testing.T) {
	paths := openAPIDocument(t)["paths"].(map[string]any)
	for _, path := range []string{"/api/users", "/api/users/{id}/deployments", "/api/user/project/{userID}",
		"/api/user/project/{id}/deployments", "/api/deployments", "/api/billing/user/{id}"} {
		get := paths[path].(map[string]any)["get"].(map[string]any)
		params := map[string]map[string]any{}
		for _, p := range get["parameters"].([]any) {
			p := p.(map[string]any)
			params[p["name"].(string)] = p["schema"].(map[string]any)
		}
		if params["page"] == nil || params["limit"] == nil || params["limit"]["maximum"] != float64(maxPageLimit) {
			t.Errorf("GET %s: page and limit (at most %d) are not both documented: %v", path, maxPageLimit, params)
		}
		headers := get["responses"].(map[string]any)["200"].(map[string]any)["headers"].(map[string]any)
		if headers["X-Total-Count"] == nil || headers["Link"] == nil {
			t.Errorf("GET %s: X-Total-Count and Link are not documented: %v", path, headers)
		}
	}
}

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
		"GET /api/billing/user/{id}", "GET /api/billing/user/{id}/deployment/{deploymentID}", "GET /healthz", "GET /readyz",
		// Beyond the seed: token rotation and revocation.
		"POST /api/users/{id}/tokens", "GET /api/users/{id}/tokens", "DELETE /api/users/{id}/tokens/{tokenID}",
		"POST /api/apps/{id}/retire", "POST /api/apps/{id}/versions", "GET /api/apps/{id}/versions",
		"POST /api/apps/{id}/versions/{version}/deprecate", "GET /api/audit",
		"POST /api/deployments/{id}/upgrade", "POST /api/deployments/{id}/rollback", "GET /api/deployments/{id}/revisions"}
	sort.Strings(seed)
	for _, op := range seed {
		if !documented[op] {
			t.Errorf("seed endpoint missing from the document: %s", op)
		}
	}
}
