package kubereq

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestName(t *testing.T) {
	for _, c := range []struct {
		method, url, contentType, want string
	}{
		{"GET", "/version", "", "get /version"},
		{"GET", "/api", "", "get /api"},
		{"GET", "/apis", "", "get /apis"},
		{"GET", "/apis/apps/v1", "", "get /apis/apps/v1"},
		{"GET", "/openapi/v3/apis/apps/v1?hash=1", "", "get /openapi/v3/apis/apps/v1"},
		{"POST", "/api/v1/namespaces", "", "create namespaces"},
		{"GET", "/api/v1/namespaces/a", "", "get namespaces"},
		{"DELETE", "/api/v1/namespaces/a", "", "delete namespaces"},
		{"PUT", "/api/v1/namespaces/a/finalize", "", "update namespaces/finalize"},
		{"GET", "/api/v1/namespaces/a/secrets?labelSelector=owner%3Dhelm", "", "list secrets"},
		{"GET", "/api/v1/namespaces/a/secrets/s", "", "get secrets"},
		{"PUT", "/api/v1/namespaces/a/secrets/s", "", "update secrets"},
		{"GET", "/apis/apps/v1/namespaces/a/deployments?watch=true&resourceVersion=1", "", "watch deployments"},
		{"GET", "/apis/apps/v1/deployments?watch=1", "", "watch deployments"},
		{"PATCH", "/apis/apps/v1/namespaces/a/deployments/d?fieldManager=helm&force=true", "application/apply-patch+yaml", "apply deployments"},
		{"PATCH", "/api/v1/namespaces/a/services/s", "application/strategic-merge-patch+json", "patch services"},
		{"PUT", "/api/v1/namespaces/a/resourcequotas/q/status", "", "update resourcequotas/status"},
		{"DELETE", "/api/v1/namespaces/a/pods", "", "deletecollection pods"},
		{"POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/a/rolebindings", "", "create rolebindings"},
		{"GET", "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/p", "", "get validatingadmissionpolicies"},
	} {
		req := httptest.NewRequest(c.method, "https://127.0.0.1:6443"+c.url, nil)
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if got := Name(req); got != c.want {
			t.Errorf("%s %s: %q, want %q", c.method, c.url, got, c.want)
		}
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	client := &http.Client{Transport: c.Wrap(http.DefaultTransport)}
	for _, path := range []string{"/api/v1/namespaces", "/api/v1/namespaces", "/version"} {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	before := Counts{"list namespaces": 1}
	got := c.Counts()
	if got["list namespaces"] != 2 || got["get /version"] != 1 || got.Total() != 3 {
		t.Fatalf("counts %v", got)
	}
	if d := got.Minus(before); d["list namespaces"] != 1 || d.Total() != 2 {
		t.Fatalf("minus %v", d)
	}
	if names := got.Names(); names[0] != "list namespaces" {
		t.Fatalf("names %v", names)
	}
}
