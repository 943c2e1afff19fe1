package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestStorefrontChangesAreAudited makes changes with the storefront's forms (a session cookie and its
// CSRF token, as a browser posts them) and reads GET /api/audit: each change that was made is there
// once, with its actor, request id, route and path, beside the API's; the refused ones, a form without
// its CSRF token, bad input, another tenant's resource, are not.
func TestStorefrontChangesAreAudited(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	id, tok := inst.user(t, "publisher")
	_, other := inst.user(t, "other")
	app := num(t, inst.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	otherApp := num(t, inst.must(t, 201, "POST", "/api/apps/new", other, map[string]any{"name": "theirs", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])

	client, csrf := webSession(t, inst, tok)
	refused := map[string]struct {
		path string
		form url.Values
		want int
	}{
		"no CSRF token":            {"/projects", url.Values{"name": {"p"}}, http.StatusForbidden},
		"a project without a name": {"/projects", url.Values{"name": {""}, "csrf": {csrf}}, http.StatusUnprocessableEntity},
		"a rate that is no number": {fmt.Sprintf("/apps/%d/versions", app), url.Values{"hourly_rate": {"cheap"}, "csrf": {csrf}}, http.StatusUnprocessableEntity},
		"another's application":    {fmt.Sprintf("/apps/%d/versions", otherApp), url.Values{"hourly_rate": {"2"}, "csrf": {csrf}}, http.StatusNotFound},
		"another's deployment":     {"/deployments/99/delete", url.Values{"confirmed": {"yes"}, "csrf": {csrf}}, http.StatusNotFound},
	}
	for name, r := range refused {
		if s := webPost(t, inst, client, r.path, r.form, nil); s != r.want {
			t.Errorf("%s: status %d, want %d", name, s, r.want)
		}
	}
	if s := webPost(t, inst, client, "/projects", url.Values{"name": {"p"}, "csrf": {csrf}}, map[string]string{"X-Request-Id": "web-project-1"}); s != http.StatusSeeOther {
		t.Fatalf("a project from the storefront: status %d, want 303", s)
	}
	if s := webPost(t, inst, client, fmt.Sprintf("/apps/%d/versions", app), url.Values{"hourly_rate": {"2"}, "changelog": {"dearer"}, "csrf": {csrf}}, nil); s != http.StatusSeeOther {
		t.Fatalf("a version from the storefront: status %d, want 303", s)
	}
	if s := webPost(t, inst, client, "/signout", url.Values{"csrf": {csrf}}, nil); s != http.StatusSeeOther {
		t.Fatalf("sign out: status %d, want 303", s)
	}
	webSession(t, inst, inst.Environ["MARKETPLACE_ADMIN_TOKEN"])

	user := fmt.Sprintf("user:%d", id)
	story := func(token string) (lines []string, byAction map[string]map[string]any) {
		byAction = map[string]map[string]any{}
		for _, e := range inst.must(t, 200, "GET", "/api/audit?limit=500", token, nil).List(t) {
			lines = append(lines, fmt.Sprintf("%s %s %s", e["actor"], e["action"], e["resource"]))
			byAction[fmt.Sprint(e["action"])] = e
		}
		return lines, byAction
	}
	lines, events := story(tok)
	want := []string{
		user + " POST /api/apps/new /api/apps/new",
		user + " POST /signin /signin",
		user + " POST /projects /projects",
		user + fmt.Sprintf(" POST /apps/{id}/versions /apps/%d/versions", app),
		user + " POST /signout /signout",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("the publisher's audit trail:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if e := events["POST /projects"]; e == nil || e["request_id"] != "web-project-1" {
		t.Errorf("the project's event has request id %v, want the one the browser sent", e["request_id"])
	}
	if e := events["POST /signout"]; e == nil || e["request_id"] == "" {
		t.Errorf("the sign-out's event has no request id: %v", e)
	}
	all, _ := story(inst.Environ["MARKETPLACE_ADMIN_TOKEN"])
	if last := all[len(all)-1]; last != "operator POST /signin /signin" {
		t.Errorf("the operator's sign-in is audited as %q", last)
	}
	if theirs, _ := story(other); len(theirs) != 1 {
		t.Errorf("the other user reads %d events, want its own application's only: %v", len(theirs), theirs)
	}
}
