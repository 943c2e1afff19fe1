package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// execSQL runs SQL statements on a test database.
func execSQL(t *testing.T, databaseURL string, statements ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, sql := range statements {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// mustProblem checks r is a problem+json of status whose detail contains each of says.
func mustProblem(t *testing.T, r response, status int, says ...string) {
	t.Helper()
	if r.Status != status || r.ContentType != "application/problem+json" {
		t.Fatalf("status %d (%s), want a %d problem: %.300s", r.Status, r.ContentType, status, r.Body)
	}
	p := r.JSON(t)
	if num(t, p["status"]) != int64(status) || p["title"] == nil || p["type"] == nil {
		t.Fatalf("not a complete problem: %s", r.Body)
	}
	for _, s := range says {
		if !strings.Contains(p["detail"].(string), s) {
			t.Fatalf("the problem does not say %q: %s", s, r.Body)
		}
	}
}

var nextLinkRE = regexp.MustCompile(`<([^>]+)>; rel="next"`)

// walk pages through a list from path (which sets its limit) following the Link rel="next" headers,
// and returns the ids of every page's items in order and the X-Total-Count of the first page. items
// picks the list out of a page's body.
func (inst *instance) walk(t *testing.T, path, token string, items func(response) []map[string]any) ([]int64, int) {
	t.Helper()
	var ids []int64
	total := -1
	for pages := 0; path != ""; pages++ {
		if pages > 50 {
			t.Fatalf("more than 50 pages from %s", path)
		}
		r := inst.must(t, 200, "GET", path, token, nil)
		n, err := strconv.Atoi(r.Header.Get("X-Total-Count"))
		if err != nil {
			t.Fatalf("GET %s: X-Total-Count %q", path, r.Header.Get("X-Total-Count"))
		}
		if total == -1 {
			total = n
		} else if n != total {
			t.Fatalf("GET %s: X-Total-Count %d, the first page said %d", path, n, total)
		}
		for _, item := range items(r) {
			ids = append(ids, num(t, item["id"]))
		}
		path = ""
		for _, link := range r.Header.Values("Link") {
			if m := nextLinkRE.FindStringSubmatch(link); m != nil {
				path = m[1]
			}
		}
	}
	return ids, total
}

func ids(from, to, step int64) []int64 {
	var l []int64
	for i := from; (step > 0 && i <= to) || (step < 0 && i >= to); i += step {
		l = append(l, i)
	}
	return l
}

// TestPagination pages through every list of the API by its Link headers and checks every item comes
// exactly once, in order, the totals are exact, and bad paging parameters are 422 problems.
func TestPagination(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	user, tok := mp.user(t, "consumer")
	for i := range 6 {
		mp.user(t, fmt.Sprint("user ", i))
	}
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	for range 5 {
		mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	}
	// Seven deployments in project 1, none elsewhere; this instance runs no worker, so they stay pending.
	for range 7 {
		mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	}
	execSQL(t, mp.DatabaseURL, `INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount)
SELECT id, consumer_id, 1, 1, now() - interval '2 hours', now() - interval '1 hour', 1.5 FROM deployments`)

	list := func(r response) []map[string]any { return r.List(t) }
	nested := func(field string) func(r response) []map[string]any {
		return func(r response) []map[string]any {
			var l []map[string]any
			for _, v := range r.JSON(t)[field].([]any) {
				l = append(l, v.(map[string]any))
			}
			return l
		}
	}
	for _, tc := range []struct {
		path, token string
		items       func(response) []map[string]any
		want        []int64
	}{
		{"/api/users?limit=3", operator, list, ids(1, 7, 1)},
		{"/api/users?limit=3", tok, list, []int64{user}},
		{fmt.Sprintf("/api/users/%d/deployments?limit=2", user), tok, list, ids(7, 1, -1)},
		{fmt.Sprintf("/api/users/%d/deployments?status=pending&limit=3", user), tok, list, ids(7, 1, -1)},
		{"/api/deployments?limit=4", tok, list, ids(7, 1, -1)},
		{"/api/deployments?limit=500", operator, list, ids(7, 1, -1)},
		{fmt.Sprintf("/api/user/project/%d?limit=2", user), tok, list, ids(1, 5, 1)},
		{"/api/user/project/1/deployments?limit=3", tok, nested("deployments"), ids(7, 1, -1)},
		{fmt.Sprintf("/api/billing/user/%d?limit=2", user), tok, nested("records"), ids(1, 7, 1)},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, total := mp.walk(t, tc.path, tc.token, tc.items)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || total != len(tc.want) {
				t.Fatalf("ids %v, total %d; want %v, %d", got, total, tc.want, len(tc.want))
			}
		})
	}

	// The defaults: the first 100, no next page; a page past the end is empty and keeps the total.
	r := mp.must(t, 200, "GET", "/api/users", operator, nil)
	if l := r.List(t); len(l) != 7 || r.Header.Get("X-Total-Count") != "7" || r.Header.Get("Link") != "" {
		t.Fatalf("default page: %d users, X-Total-Count %q, Link %q", len(l), r.Header.Get("X-Total-Count"), r.Header.Get("Link"))
	}
	r = mp.must(t, 200, "GET", "/api/users?page=9&limit=3", operator, nil)
	if strings.TrimSpace(string(r.Body)) != "[]" || r.Header.Get("X-Total-Count") != "7" {
		t.Fatalf("past the end: %s, X-Total-Count %q", r.Body, r.Header.Get("X-Total-Count"))
	}
	// The bill's total is the whole bill's, whatever the page.
	bill := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d?limit=2&page=2", user), tok, nil).JSON(t)
	if bill["total_amount"].(fmt.Stringer).String() != "10.5" || len(bill["records"].([]any)) != 2 {
		t.Fatalf("a page of the bill: %v, want 2 records and the total 10.5 of all 7", bill)
	}

	for _, path := range []string{"/api/users", fmt.Sprintf("/api/users/%d/deployments", user), "/api/deployments",
		fmt.Sprintf("/api/user/project/%d", user), "/api/user/project/1/deployments", fmt.Sprintf("/api/billing/user/%d", user)} {
		for _, bad := range []struct{ query, says string }{
			{"limit=0", "expected number >= 1"}, {"limit=-1", "expected number >= 1"},
			{"limit=501", "expected number <= 500"}, {"page=abc", "invalid integer"}, {"page=0", "expected number >= 1"},
			{"limit=ten", "invalid integer"},
		} {
			t.Run(path+"?"+bad.query, func(t *testing.T) {
				mustProblem(t, mp.call(t, "GET", path+"?"+bad.query, tok, nil), 422)
				if r := mp.call(t, "GET", path+"?"+bad.query, tok, nil); !strings.Contains(string(r.Body), bad.says) {
					t.Fatalf("the problem does not say %q: %s", bad.says, r.Body)
				}
			})
		}
	}
}

// TestQuotas fills each quota of one user and checks the next creation is a 409 that names the setting
// and changes nothing, for the user and for the operator acting for it, and that an uninstalled
// deployment frees its place.
func TestQuotas(t *testing.T) {
	mp := startMarketplace(t, "api", map[string]string{
		"QUOTA_PROJECTS_PER_USER": "2", "QUOTA_APPS_PER_USER": "1", "QUOTA_DEPLOYMENTS_PER_USER": "2"})
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	user, tok := mp.user(t, "busy")
	other, otherTok := mp.user(t, "other")
	app := func(owner int64) map[string]any {
		return map[string]any{"name": "web", "hourly_rate": 1, "publisher_id": owner,
			"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}
	}
	mp.must(t, 201, "POST", "/api/apps/new", tok, app(user))
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p1"})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p2"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 2})

	for _, tc := range []struct {
		name, token, path string
		body              map[string]any
		says              string
	}{
		{"a third project", tok, "/api/user/project/new", map[string]any{"name": "p3"}, "QUOTA_PROJECTS_PER_USER=2"},
		{"a third project by the operator", operator, "/api/user/project/new", map[string]any{"name": "p3", "user_id": user}, "QUOTA_PROJECTS_PER_USER=2"},
		{"a second application", tok, "/api/apps/new", app(user), "QUOTA_APPS_PER_USER=1"},
		{"a second application by the operator", operator, "/api/apps/new", app(user), "QUOTA_APPS_PER_USER=1"},
		{"a third deployment", tok, "/api/deployments/install", map[string]any{"application_id": 1, "project_id": 1}, "QUOTA_DEPLOYMENTS_PER_USER=2"},
		{"a third deployment by the operator", operator, "/api/deployments/install", map[string]any{"consumer_id": user, "application_id": 1, "project_id": 2}, "QUOTA_DEPLOYMENTS_PER_USER=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, mp.DatabaseURL)
			mustProblem(t, mp.call(t, "POST", tc.path, tc.token, tc.body), 409, tc.says, fmt.Sprintf("user %d", user))
			if snapshot(t, mp.DatabaseURL) != before {
				t.Fatal("the database changed")
			}
		})
	}
	// Quotas are per user: another user is not affected.
	mp.must(t, 201, "POST", "/api/apps/new", otherTok, app(other))
	// An uninstalled deployment frees its place.
	execSQL(t, mp.DatabaseURL, `UPDATE deployments SET status = 'uninstalled' WHERE id = 1`)
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
}

// TestUserCreationRateLimit creates users from one address beyond the burst and checks the next is a
// 429 with Retry-After that creates nothing.
func TestUserCreationRateLimit(t *testing.T) {
	mp := startMarketplace(t, "api", map[string]string{"USER_CREATE_RATE": "2", "USER_CREATE_BURST": "3"})
	for i := range 3 {
		mp.user(t, fmt.Sprint("user ", i))
	}
	before := snapshot(t, mp.DatabaseURL)
	for range 3 {
		r := mp.call(t, "POST", "/api/users/new", "", map[string]any{"name": "one too many"})
		mustProblem(t, r, 429, "at most 2 a minute")
		if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 30 {
			t.Fatalf("Retry-After %q, want the seconds until the next creation (at most 30 at 2 a minute)", r.Header.Get("Retry-After"))
		}
	}
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("the database changed")
	}
	// Other requests are not limited.
	mp.must(t, 200, "GET", "/api/users", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil)
}

// TestTokenRotation rotates a user's token through one API replica and revokes the old one, and checks
// a second replica sharing the database refuses the revoked token at once and accepts the new one.
func TestTokenRotation(t *testing.T) {
	a := startMarketplace(t, "api", nil)
	b := startMarketplace(t, "api", map[string]string{"DATABASE_URL": a.DatabaseURL, "REDIS_URL": a.Environ["REDIS_URL"],
		"MARKETPLACE_ADMIN_TOKEN": a.Environ["MARKETPLACE_ADMIN_TOKEN"]})
	operator := a.Environ["MARKETPLACE_ADMIN_TOKEN"]
	user, oldTok := a.user(t, "rotating")
	other, otherTok := a.user(t, "other")
	tokensOf := fmt.Sprintf("/api/users/%d/tokens", user)

	// Both replicas know the first token (and b caches whatever it caches).
	a.must(t, 200, "GET", "/api/users", oldTok, nil)
	b.must(t, 200, "GET", "/api/users", oldTok, nil)

	created := a.must(t, 201, "POST", tokensOf, oldTok, nil).JSON(t)
	newTok, _ := created["token"].(string)
	if !strings.HasPrefix(newTok, "mpt_") || created["id"] == nil || created["created_at"] == nil {
		t.Fatalf("created token: %v", created)
	}
	b.must(t, 200, "GET", "/api/users", newTok, nil)

	r := b.must(t, 200, "GET", tokensOf, newTok, nil)
	listed := r.List(t)
	if len(listed) != 2 || strings.Contains(string(r.Body), newTok) || strings.Contains(string(r.Body), "hash") {
		t.Fatalf("tokens listed: %s; want two, without secrets", r.Body)
	}
	oldID := num(t, listed[0]["id"])
	if num(t, listed[1]["id"]) != num(t, created["id"]) || listed[0]["last_used_at"] == nil {
		t.Fatalf("tokens listed: %s; want the first (used) and the new one", r.Body)
	}

	// Another tenant finds neither the user's tokens nor a way to add one.
	for _, c := range []struct{ method, path string }{{"GET", tokensOf}, {"POST", tokensOf},
		{"DELETE", fmt.Sprintf("%s/%d", tokensOf, oldID)}, {"DELETE", fmt.Sprintf("/api/users/%d/tokens/%d", other, oldID)}} {
		before := snapshot(t, a.DatabaseURL)
		mustProblem(t, a.call(t, c.method, c.path, otherTok, nil), 404)
		if snapshot(t, a.DatabaseURL) != before {
			t.Fatalf("%s %s by another user changed the database", c.method, c.path)
		}
	}

	a.must(t, 204, "DELETE", fmt.Sprintf("%s/%d", tokensOf, oldID), newTok, nil)
	for name, inst := range map[string]*instance{"the replica that revoked it": a, "another replica": b} {
		mustProblem(t, inst.call(t, "GET", "/api/users", oldTok, nil), 401, "not valid")
		inst.must(t, 200, "GET", "/api/users", newTok, nil)
		_ = name
	}
	mustProblem(t, a.call(t, "DELETE", fmt.Sprintf("%s/%d", tokensOf, oldID), newTok, nil), 404)

	// The operator rotates for a user who lost its token.
	rescue := b.must(t, 201, "POST", tokensOf, operator, nil).JSON(t)["token"].(string)
	a.must(t, 200, "GET", fmt.Sprintf("/api/users/%d/deployments", user), rescue, nil)
}

// TestRetiredApplication retires an application a consumer still runs (whose delete is refused, as the
// seed API says): it leaves the catalog (whose total stays exact), stays readable, refuses new installs
// with a 409, and the running deployment stays. An application whose only deployment failed is deleted
// outright.
func TestRetiredApplication(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	newApp := func() int64 {
		return num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	}
	retiring, failing, staying := newApp(), newApp(), newApp()
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", con, map[string]any{"name": "p"}).JSON(t)["id"])
	install := func(app int64) response {
		return mp.call(t, "POST", "/api/deployments/install", con, map[string]any{"application_id": app, "project_id": project})
	}
	live := num(t, install(retiring).JSON(t)["deploymentID"])
	failed := num(t, install(failing).JSON(t)["deploymentID"])
	execSQL(t, mp.DatabaseURL, fmt.Sprintf(`UPDATE deployments SET status = 'failed', failure_reason = 'x' WHERE id = %d`, failed))

	mustProblem(t, mp.call(t, "DELETE", fmt.Sprintf("/api/apps/%d", retiring), pub, nil), 409, "retire it")
	mustProblem(t, mp.call(t, "POST", fmt.Sprintf("/api/apps/%d/retire", retiring), con, nil), 404)
	mp.must(t, 200, "POST", fmt.Sprintf("/api/apps/%d/retire", retiring), pub, nil)
	mp.must(t, 204, "DELETE", fmt.Sprintf("/api/apps/%d", failing), pub, nil)

	catalog := mp.must(t, 200, "GET", "/api/apps", con, nil).JSON(t)
	if data := catalog["data"].([]any); len(data) != 1 || num(t, data[0].(map[string]any)["id"]) != staying || num(t, catalog["total_items"]) != 1 {
		t.Fatalf("the catalog: %v; want only application %d, total_items 1", catalog, staying)
	}
	if a := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", retiring), con, nil).JSON(t); a["retired_at"] == nil {
		t.Fatalf("the retired application: %v; want retired_at", a)
	}
	mustProblem(t, mp.call(t, "GET", fmt.Sprintf("/api/apps/%d", failing), con, nil), 404)

	before := snapshot(t, mp.DatabaseURL)
	mustProblem(t, install(retiring), 409, "retired")
	mustProblem(t, install(failing), 404)
	mustProblem(t, mp.call(t, "PUT", fmt.Sprintf("/api/apps/%d", retiring), pub, map[string]any{"name": "back", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}), 404)
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("the database changed")
	}
	if d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", live), con, nil).JSON(t); d["status"] != "pending" {
		t.Fatalf("the deployment of the retired application: %v", d)
	}
	// Once its deployment is gone, deleting it again deletes it.
	execSQL(t, mp.DatabaseURL, fmt.Sprintf(`UPDATE deployments SET status = 'uninstalled' WHERE id = %d`, live))
	mp.must(t, 204, "DELETE", fmt.Sprintf("/api/apps/%d", retiring), pub, nil)
	mustProblem(t, mp.call(t, "GET", fmt.Sprintf("/api/apps/%d", retiring), con, nil), 404)
}

// TestRepositoryCredentialsAreNeverShown publishes an application whose repoURL carries credentials and
// checks no response shows them (the application, the catalog, an update, a deployment's failure reason)
// while the database keeps them for fetching.
func TestRepositoryCredentialsAreNeverShown(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	repo := "https://alice:s3cret-pw@charts.example.com/stable"
	spec := map[string]any{"type": "k8s", "repoURL": repo, "chartName": "web"}
	created := mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1, "deployment": spec})
	app := created.JSON(t)
	id := num(t, app["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", con, map[string]any{"name": "p"}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", con, map[string]any{"application_id": id, "project_id": project}).JSON(t)["deploymentID"])
	execSQL(t, mp.DatabaseURL, fmt.Sprintf(`UPDATE deployments SET status = 'failed',
  failure_reason = 'install attempt 5 of 5: looks like "%s" is not a valid chart repository' WHERE id = %d`, repo, dep))

	// The publisher sends back what it read, with a new name: the stored credentials stay.
	read := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), pub, nil).JSON(t)
	shown := read["deployment"].(map[string]any)["repoURL"]
	if shown != "https://REDACTED@charts.example.com/stable" {
		t.Fatalf("repoURL shown as %v", shown)
	}
	updated := mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", id), pub, map[string]any{"name": "web 2", "hourly_rate": 1,
		"deployment": read["deployment"]})

	responses := []response{created, updated,
		mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), con, nil),
		mp.must(t, 200, "GET", "/api/apps", con, nil),
		mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", dep), con, nil),
		mp.must(t, 200, "GET", "/api/deployments", con, nil),
		mp.must(t, 200, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), con, nil),
		mp.call(t, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": "https://alice:s3cret-pw@", "chartName": "web"}}),
	}
	for i, r := range responses {
		if strings.Contains(string(r.Body), "s3cret") || strings.Contains(string(r.Body), "alice") {
			t.Errorf("response %d shows the credentials: %s", i, r.Body)
		}
	}
	if !strings.Contains(string(responses[4].Body), "REDACTED@charts.example.com") {
		t.Errorf("the failure reason lost more than the credentials: %s", responses[4].Body)
	}
	var stored string
	query(t, mp.DatabaseURL, `SELECT deployment->>'repoURL' FROM applications WHERE id = $1`, []any{id}, &stored)
	if stored != repo {
		t.Fatalf("stored repoURL %q, want %q", stored, repo)
	}
}

// TestMetricsNeedAnOperator checks /metrics of the API and of a worker is refused to anyone without
// the operator's token, refused to everyone when no operator token is configured, and public only when
// METRICS_PUBLIC says so.
func TestMetricsNeedAnOperator(t *testing.T) {
	get := func(url, token string) int {
		req, _ := http.NewRequest("GET", url+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	withToken := startMarketplace(t, "api", nil)
	if s := get(withToken.URL, ""); s != 401 {
		t.Errorf("without a token: %d, want 401", s)
	}
	if s := get(withToken.URL, withToken.Environ["MARKETPLACE_ADMIN_TOKEN"]); s != 200 {
		t.Errorf("with the operator's token: %d, want 200", s)
	}
	noOperator := startMarketplace(t, "api", map[string]string{"MARKETPLACE_ADMIN_TOKEN": ""})
	_, userTok := noOperator.user(t, "u")
	for _, tok := range []string{"", userTok} {
		r := noOperator.call(t, "GET", "/metrics", tok, nil)
		mustProblem(t, r, 403, "MARKETPLACE_ADMIN_TOKEN", "METRICS_PUBLIC")
	}
	public := startMarketplace(t, "api", map[string]string{"MARKETPLACE_ADMIN_TOKEN": "", "METRICS_PUBLIC": "true"})
	if s := get(public.URL, ""); s != 200 {
		t.Errorf("METRICS_PUBLIC=true: %d, want 200", s)
	}
	worker := startMarketplace(t, "worker", map[string]string{"MARKETPLACE_ADMIN_TOKEN": ""})
	waitFor(t, 30*time.Second, "the worker to answer /healthz", func() bool {
		resp, err := http.Get(worker.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	if s := get(worker.URL, ""); s != 403 {
		t.Errorf("a worker without an operator token: %d, want 403", s)
	}
}
