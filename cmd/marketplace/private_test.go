package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPrivateApplication publishes a private application shared with one organization and reads it
// through the API as everyone: a stranger and a member of another organization get 404 for it
// everywhere (its page, versions, install, visibility) and do not find it in the catalog, a search or
// total_items, and nothing changes; a member of the organization it is shared with sees and installs
// it, until it is removed from the organization. Made public, everyone sees it.
func TestPrivateApplication(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	owner, tokOwner := mp.user(t, "private owner")
	_, tokAdmin := mp.user(t, "sharing org admin")
	member, tokMember := mp.user(t, "sharing org member")
	_, tokOther := mp.user(t, "other org admin")
	_, tokStranger := mp.user(t, "stranger")

	org := num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokAdmin, map[string]any{"name": "sharing"}).JSON(t)["id"])
	num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokOther, map[string]any{"name": "other"}).JSON(t)["id"])
	mp.must(t, 201, "POST", fmt.Sprintf("/api/orgs/%d/members", org), tokAdmin, map[string]any{"user_id": member, "role": "deployer"})

	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	publicApp := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokOwner,
		map[string]any{"name": "zanzibar public", "hourly_rate": 1, "deployment": spec}).JSON(t)["id"])
	created := mp.must(t, 201, "POST", "/api/apps/new", tokOwner, map[string]any{"name": "zanzibar internal tool", "hourly_rate": 1,
		"deployment": spec, "visibility": "private", "shared_with": []int64{org}}).JSON(t)
	app := num(t, created["id"])
	if created["private"] != true || num(t, created["publisher_id"]) != owner {
		t.Fatalf("published private: %v", created)
	}
	projectOf := func(tok string) int64 {
		return num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	}
	strangerProject, otherProject, memberProject := projectOf(tokStranger), projectOf(tokOther), projectOf(tokMember)

	// catalog answers the ids of the catalog's first page and of a search, with their totals.
	catalog := func(tok string) (page []int64, total int64, found []int64, matches int64) {
		t.Helper()
		for _, q := range []string{"", "zanzibar"} {
			r := mp.must(t, 200, "GET", "/api/apps?limit=100&q="+url.QueryEscape(q), tok, nil).JSON(t)
			var ids []int64
			for _, a := range r["data"].([]any) {
				ids = append(ids, num(t, a.(map[string]any)["id"]))
			}
			if q == "" {
				page, total = ids, num(t, r["total_items"])
			} else {
				found, matches = ids, num(t, r["total_items"])
			}
		}
		return page, total, found, matches
	}
	hidden := func(who, tok string, project int64) {
		t.Helper()
		page, total, found, matches := catalog(tok)
		if slices.Contains(page, app) || total != 1 || !slices.Equal(found, []int64{publicApp}) || matches != 1 {
			t.Errorf("%s's catalog: %v (total %d), search %v (total %d): the private application shows", who, page, total, found, matches)
		}
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{"GET", fmt.Sprintf("/api/apps/%d", app), nil},
			{"GET", fmt.Sprintf("/api/apps/%d/versions", app), nil},
			{"GET", fmt.Sprintf("/api/apps/%d/visibility", app), nil},
			{"PUT", fmt.Sprintf("/api/apps/%d/visibility", app), map[string]any{"visibility": "public"}},
			{"POST", "/api/deployments/install", map[string]any{"application_id": app, "project_id": project}},
		} {
			before := snapshot(t, mp.DatabaseURL)
			if r := mp.call(t, c.method, c.path, tok, c.body); r.Status != 404 {
				t.Errorf("%s: %s %s: status %d, want 404: %s", who, c.method, c.path, r.Status, r.Body)
			}
			if after := snapshot(t, mp.DatabaseURL); after != before {
				t.Errorf("%s: %s %s: the database changed", who, c.method, c.path)
			}
		}
	}
	hidden("a stranger", tokStranger, strangerProject)
	hidden("another organization's admin", tokOther, otherProject)

	// A member of the organization it is shared with sees it (marked private) and installs it.
	if a := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", app), tokMember, nil).JSON(t); a["private"] != true {
		t.Errorf("the member reads it: %v", a)
	}
	if page, total, found, matches := catalog(tokMember); !slices.Contains(page, app) || total != 2 || len(found) != 2 || matches != 2 {
		t.Errorf("the member's catalog: %v (total %d), search %v (total %d)", page, total, found, matches)
	}
	mp.must(t, 202, "POST", "/api/deployments/install", tokMember, map[string]any{"application_id": app, "project_id": memberProject})
	if v := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d/visibility", app), tokOwner, nil).JSON(t); v["visibility"] != "private" {
		t.Errorf("its visibility: %v", v)
	}

	// The storefront shows each its own catalog, with a private mark; a page with the member's private
	// application is never kept for the stranger who asks for the same page after it.
	strangerWeb, memberWeb := newStorefrontClient(t, mp.URL), newStorefrontClient(t, mp.URL)
	strangerWeb.signIn(tokStranger, "/")
	memberWeb.signIn(tokMember, "/")
	for round, c := range []struct {
		who  string
		web  *storefrontClient
		sees bool
	}{{"the stranger", strangerWeb, false}, {"the member", memberWeb, true}, {"the stranger", strangerWeb, false}} {
		for _, path := range []string{"/", "/?q=zanzibar"} {
			resp, page := c.web.do("GET", path, nil, nil)
			shown := strings.Contains(page, "zanzibar internal tool")
			if resp.StatusCode != 200 || shown != c.sees || strings.Contains(page, `data-testid="private"`) != c.sees || !strings.Contains(page, "zanzibar public") {
				t.Errorf("round %d, %s's storefront %s: status %d, private application shown %v (want %v)", round, c.who, path, resp.StatusCode, shown, c.sees)
			}
		}
		want := 404
		if c.sees {
			want = 200
		}
		if resp, page := c.web.do("GET", fmt.Sprintf("/apps/%d", app), nil, nil); resp.StatusCode != want || (c.sees && !strings.Contains(page, `data-testid="private"`)) {
			t.Errorf("round %d, %s's storefront page of the application: status %d, want %d", round, c.who, resp.StatusCode, want)
		}
	}

	// Removed from the organization, the member sees it no more.
	mp.must(t, 204, "DELETE", fmt.Sprintf("/api/orgs/%d/members/%d", org, member), tokAdmin, nil)
	hidden("the removed member", tokMember, memberProject)

	// Made public by its owner, everyone sees it.
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d/visibility", app), tokOwner, map[string]any{"visibility": "public"})
	if _, total, _, matches := catalog(tokStranger); total != 2 || matches != 2 {
		t.Errorf("made public, the stranger's catalog holds %d (search %d), want 2", total, matches)
	}
	if a := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", app), tokStranger, nil).JSON(t); a["private"] != nil {
		t.Errorf("made public: %v", a)
	}
	mp.must(t, 422, "PUT", fmt.Sprintf("/api/apps/%d/visibility", app), tokOwner, map[string]any{"visibility": "public", "shared_with": []int64{org}})
}

// TestCLIPrivate drives mpctl's visibility commands: publish private from a file, share with an
// organization and stop sharing, make public; each caller's `apps list` shows what it may see, with a
// (private) mark, and `apps show` of a hidden application exits 3 (Not Found).
func TestCLIPrivate(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	cli := buildMpctl(t)
	_, tokOwner := mp.user(t, "cli private owner")
	_, tokAdmin := mp.user(t, "cli sharing admin")
	_, tokStranger := mp.user(t, "cli stranger")
	as := func(token string) []string {
		return []string{"MARKETPLACE_URL=" + mp.URL, "MARKETPLACE_TOKEN=" + token}
	}
	run := func(token string, args ...string) string {
		t.Helper()
		r := cli.run(t, as(token), args...)
		if r.code != 0 {
			t.Fatalf("mpctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	org := num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokAdmin, map[string]any{"name": "sharing"}).JSON(t)["id"])
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, fmt.Appendf(nil, "name: cli secret tool\nhourly_rate: 1\nvisibility: private\ndeployment:\n  type: k8s\n  repoURL: %s\n  chartName: hello-web\n", tenv.ChartRepo), 0o600); err != nil {
		t.Fatal(err)
	}
	run(tokOwner, "apps", "publish", "-f", file)
	if out := run(tokOwner, "apps", "list"); !strings.Contains(out, "cli secret tool (private)") {
		t.Fatalf("the owner's apps list:\n%s", out)
	}
	if out := run(tokOwner, "apps", "visibility", "1"); !strings.Contains(out, "private") {
		t.Fatalf("apps visibility:\n%s", out)
	}
	for _, tok := range []string{tokStranger, tokAdmin} {
		if out := run(tok, "apps", "list"); strings.Contains(out, "cli secret tool") {
			t.Fatalf("a stranger's apps list shows the private application:\n%s", out)
		}
		cli.expectFailure(t, as(tok), 3, []string{"Not Found"}, "apps", "show", "1")
		cli.expectFailure(t, as(tok), 3, []string{"Not Found"}, "apps", "visibility", "1", "public")
	}
	if out := run(tokOwner, "apps", "visibility", "1", "--share", fmt.Sprint(org)); !strings.Contains(out, fmt.Sprint(org)) {
		t.Fatalf("apps visibility --share:\n%s", out)
	}
	if out := run(tokAdmin, "apps", "list"); !strings.Contains(out, "cli secret tool (private)") {
		t.Fatalf("the sharing organization's admin's apps list:\n%s", out)
	}
	run(tokOwner, "apps", "visibility", "1", "--unshare", fmt.Sprint(org))
	cli.expectFailure(t, as(tokAdmin), 3, []string{"Not Found"}, "apps", "show", "1")
	run(tokOwner, "apps", "visibility", "1", "public")
	if out := run(tokStranger, "apps", "list"); !strings.Contains(out, "cli secret tool") || strings.Contains(out, "(private)") {
		t.Fatalf("made public, the stranger's apps list:\n%s", out)
	}
}
