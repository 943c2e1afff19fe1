package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBadInput tries every class of bad input and checks the answer is a 4xx problem+json that says
// what to fix, and that the database did not change.
func TestBadInput(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	_, tok1 := mp.user(t, "publisher")
	_, tok2 := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok1, map[string]any{"name": "web", "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}})
	mp.must(t, 201, "POST", "/api/apps/new", tok1, map[string]any{"name": "vm", "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "vm", "image": "debian-12.qcow2", "cpu": "2", "memory": "4Gi"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok2, map[string]any{"name": "p1"})
	// A deployment that stays pending (this instance runs no worker) keeps the app and project live.
	mp.must(t, 202, "POST", "/api/deployments/install", tok2, map[string]any{"application_id": 1, "project_id": 1})

	app := func(mutate func(map[string]any)) string {
		body := map[string]any{"name": "x", "description": "d", "hourly_rate": 1.5,
			"deployment": map[string]any{"type": "k8s", "repoURL": "https://charts.example.com", "chartName": "nginx"}}
		mutate(body)
		b, _ := json.Marshal(body)
		return string(b)
	}
	spec := func(kv ...string) func(map[string]any) {
		return func(b map[string]any) {
			d := b["deployment"].(map[string]any)
			for i := 0; i < len(kv); i += 2 {
				d[kv[i]] = kv[i+1]
			}
		}
	}
	set := func(k string, v any) func(map[string]any) { return func(b map[string]any) { b[k] = v } }
	huge := `{"name": "` + strings.Repeat("a", 1<<20) + `"}`

	cases := []struct {
		name, method, path, token, body string
		status                          int
		detail                          string // a part of the detail or of an error message
	}{
		{"malformed JSON", "POST", "/api/apps/new", tok1, `{"name": "x",`, 400, ""},
		{"not an object", "POST", "/api/users/new", "", `[1, 2]`, 422, "expected object"},
		{"unknown field", "POST", "/api/apps/new", tok1, app(set("colour", "red")), 422, "unexpected property"},
		{"unknown nested field", "POST", "/api/apps/new", tok1, app(spec("helm", "3")), 422, "unexpected property"},
		{"rate as a string", "POST", "/api/apps/new", tok1, app(set("hourly_rate", "cheap")), 422, "expected number"},
		{"name as a number", "POST", "/api/user/project/new", tok2, `{"name": 5}`, 422, "expected string"},
		{"id as a string", "POST", "/api/deployments/install", tok2, `{"application_id": "one", "project_id": 1}`, 422, "expected integer"},
		{"body over 1 MiB", "POST", "/api/users/new", "", huge, 413, ""},
		{"missing name", "POST", "/api/users/new", "", `{}`, 422, "required property"},
		{"empty user name", "POST", "/api/users/new", "", `{"name": ""}`, 422, "length"},
		{"NUL in a user name", "POST", "/api/users/new", "", `{"name": "a\u0000b"}`, 422, "NUL"},
		{"NUL in a description", "POST", "/api/apps/new", tok1, app(set("description", "x\u0000")), 422, "NUL"},
		{"NUL in an input value", "POST", "/api/deployments/install", tok2, `{"application_id": 1, "project_id": 1, "inputs": {"replicaCount": 1, "x\u0000": 1}}`, 422, "not a parameter"},
		{"blank project name", "POST", "/api/user/project/new", tok2, `{"name": "   "}`, 422, "must not be empty"},
		{"over-long app name", "POST", "/api/apps/new", tok1, app(set("name", strings.Repeat("n", 101))), 422, "length"},
		{"negative rate", "POST", "/api/apps/new", tok1, app(set("hourly_rate", -1)), 422, "expected number >= 0"},
		{"over-precise rate", "POST", "/api/apps/new", tok1, app(set("hourly_rate", json.Number("1.0000001"))), 422, "more than 6 decimal places"},
		{"unknown deployment type", "POST", "/api/apps/new", tok1, app(spec("type", "docker")), 422, "one of"},
		{"ftp repo URL", "POST", "/api/apps/new", tok1, app(spec("repoURL", "ftp://charts.example.com")), 422, "http, https or oci"},
		{"repo URL not a URL", "POST", "/api/apps/new", tok1, app(spec("repoURL", "charts")), 422, "repoURL"},
		{"invalid chart name", "POST", "/api/apps/new", tok1, app(spec("chartName", "Nginx!")), 422, "not a valid chart name"},
		{"vm without image", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "cpu", "2", "memory", "4Gi")), 422, "image"},
		{"vm cpu not a number", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "image", "i", "cpu", "two", "memory", "4Gi")), 422, "cpu"},
		{"NUL in the image of a k8s app", "POST", "/api/apps/new", tok1, app(spec("image", "a\u0000b")), 422, "NUL"},
		{"NUL in the cpu of a k8s app", "POST", "/api/apps/new", tok1, app(spec("cpu", "\u0000")), 422, "NUL"},
		{"NUL in the repoURL of a vm app", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "image", "i", "cpu", "2", "memory", "4Gi", "repoURL", "x\u0000")), 422, "NUL"},
		{"NUL in the chartVersion of a vm app", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "image", "i", "cpu", "2", "memory", "4Gi", "chartVersion", "\u0000")), 422, "NUL"},
		{"huge memory on a k8s app", "POST", "/api/apps/new", tok1, app(spec("memory", strings.Repeat("9", 5000))), 422, "length"},
		{"huge chartName on a vm app", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "image", "i", "cpu", "2", "memory", "4Gi", "chartName", strings.Repeat("c", 5000))), 422, "length"},
		{"NUL in an update's image", "PUT", "/api/apps/1", tok1, app(spec("image", "\u0000")), 422, "NUL"},
		{"vm memory without unit", "POST", "/api/apps/new", tok1, app(spec("type", "vm", "image", "i", "cpu", "2", "memory", "4")), 422, "memory"},
		{"input of unknown type", "POST", "/api/apps/new", tok1, app(set("inputs", []map[string]any{{"name": "a", "type": "date"}})), 422, "one of"},
		{"input default of wrong type", "POST", "/api/apps/new", tok1, app(set("inputs", []map[string]any{{"name": "a", "type": "integer", "default": "x"}})), 422, "not a integer"},
		{"another publisher's id", "POST", "/api/apps/new", tok1, app(set("publisher_id", 2)), 422, "publisher_id 2 is not you"},
		{"another user's project owner", "POST", "/api/user/project/new", tok2, `{"name": "p", "user_id": 1}`, 422, "user_id 1 is not you"},
		{"another consumer's id", "POST", "/api/deployments/install", tok2, `{"consumer_id": 1, "application_id": 1, "project_id": 1}`, 422, "consumer_id 1 is not you"},
		{"application that does not exist", "POST", "/api/deployments/install", tok2, `{"application_id": 99, "project_id": 1}`, 404, "application 99 not found"},
		{"project that does not exist", "POST", "/api/deployments/install", tok2, `{"application_id": 1, "project_id": 99}`, 404, "project 99 not found"},
		{"project of another user", "POST", "/api/deployments/install", tok1, `{"application_id": 1, "project_id": 1}`, 404, "project 1 not found"},
		{"unknown input", "POST", "/api/deployments/install", tok2, `{"application_id": 1, "project_id": 1, "inputs": {"colour": "red"}}`, 422, "not a parameter"},
		{"input of wrong type", "POST", "/api/deployments/install", tok2, `{"application_id": 1, "project_id": 1, "inputs": {"replicaCount": "many"}}`, 422, "not a integer"},
		{"type without a provider", "POST", "/api/deployments/install", tok2, `{"application_id": 2, "project_id": 1}`, 422, "no provider"},
		{"app that does not exist", "GET", "/api/apps/99", tok1, "", 404, "not found"},
		{"id not a number", "GET", "/api/apps/abc", tok1, "", 422, "integer"},
		{"id zero", "GET", "/api/deployments/0", tok1, "", 422, "expected number >= 1"},
		{"update of a missing app", "PUT", "/api/apps/99", tok1, app(func(map[string]any) {}), 404, "not found"},
		{"delete of a missing deployment", "DELETE", "/api/deployments/99", tok2, "", 404, "not found"},
		{"bad status filter", "GET", "/api/users/2/deployments?status=running", tok2, "", 422, "one of"},
		{"page zero", "GET", "/api/apps?page=0", tok1, "", 422, "expected number >= 1"},
		{"limit too large", "GET", "/api/apps?limit=1000", tok1, "", 422, "expected number <= 100"},
		{"bad type filter", "GET", "/api/apps?deploymentType=docker", tok1, "", 422, "one of"},
		{"no token", "GET", "/api/apps", "", "", 401, "Bearer"},
		{"wrong token", "GET", "/api/apps", "mpt_not-a-token", "", 401, "not valid"},
		{"delete an app with live deployments", "DELETE", "/api/apps/1", tok1, "", 409, "live deployment"},
		{"delete a project with live deployments", "DELETE", "/api/user/project/1", tok2, "", 409, "live deployment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, mp.DatabaseURL)
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := mp.call(t, tc.method, tc.path, tc.token, body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %.300s", r.Status, tc.status, r.Body)
			}
			if r.ContentType != "application/problem+json" {
				t.Fatalf("content type %q, want application/problem+json", r.ContentType)
			}
			p := r.JSON(t)
			if p["type"] == "" || p["type"] == nil || p["title"] == nil || num(t, p["status"]) != int64(tc.status) || p["detail"] == "" {
				t.Fatalf("not a complete problem: %s", r.Body)
			}
			if !strings.Contains(strings.ToLower(string(r.Body)), strings.ToLower(tc.detail)) {
				t.Fatalf("the problem does not say %q: %.500s", tc.detail, r.Body)
			}
			if after := snapshot(t, mp.DatabaseURL); after != before {
				t.Fatalf("the database changed")
			}
		})
	}

	// Installing into a project twice while the first is in flight is allowed: two deployments.
	second := mp.must(t, 202, "POST", "/api/deployments/install", tok2, map[string]any{"application_id": 1, "project_id": 1}).JSON(t)
	if num(t, second["deploymentID"]) != 2 {
		t.Fatalf("second install: %v", second)
	}
	if l := mp.must(t, 200, "GET", "/api/user/project/1/deployments", tok2, nil).JSON(t)["deployments"].([]any); len(l) != 2 {
		t.Fatalf("project 1 has %d deployments, want 2", len(l))
	}
}
