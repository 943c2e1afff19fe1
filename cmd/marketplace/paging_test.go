package main

import (
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// webSession signs in to the storefront with token over plain HTTP, as a browser's form would, and
// returns the client (its cookie jar holds the session; redirects are not followed) and the session's
// CSRF token.
func webSession(t *testing.T, inst *instance, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if s := webPost(t, inst, client, "/signin", url.Values{"token": {token}}, nil); s != http.StatusSeeOther {
		t.Fatalf("sign in: status %d, want 303", s)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(get(t, client, inst.URL+"/deployments", http.StatusOK))
	if csrf == nil {
		t.Fatal("no CSRF token in the storefront's page")
	}
	return client, csrf[1]
}

// webPost posts a form to the storefront and returns the status.
func webPost(t *testing.T, inst *instance, client *http.Client, path string, form url.Values, header map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", inst.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDeploymentReadsAreBounded gives an installed deployment 10,000 more revisions and usage records
// (inserted into PostgreSQL: ten thousand upgrades through the API and the cluster would take hours)
// and checks GET /api/deployments/{id} and its storefront page answer the latest few with the totals of
// all, and that the lists page through the rest: page 2 is the next slice, the totals exact.
func TestDeploymentReadsAreBounded(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	_, pub := inst.user(t, "publisher")
	consumer, tok := inst.user(t, "consumer")
	app := num(t, inst.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}}).JSON(t)["id"])
	project := num(t, inst.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	id := num(t, inst.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	inst.waitForStatus(t, tok, id, "installed", 2*time.Minute)

	const more = 10000
	var n int
	query(t, inst.DatabaseURL, `WITH r AS (INSERT INTO deployment_revisions (deployment_id, revision, version, inputs, chart_version)
  SELECT $1, 1 + g, 1, jsonb_build_object('replicaCount', g), '0.1.0' FROM generate_series(1, $2::int) g RETURNING 1),
u AS (INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount, metered_at)
  SELECT $1, $3, $4, 1, now() - interval '3 hours', now() - interval '2 hours', 1, now() FROM generate_series(1, $2::int) RETURNING 1)
SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM u)`, []any{id, more, consumer, app}, &n)
	if n != 2*more {
		t.Fatalf("inserted %d rows, want %d", n, 2*more)
	}
	// The amount of every record: the inserted ones' and the open one's few seconds.
	aboutMore := func(amount any) bool {
		v, err := strconv.ParseFloat(fmt.Sprint(amount), 64)
		return err == nil && v >= more && v < more+1
	}

	// The deployment's own answer: the latest ten of each, the totals of all, the next page's link.
	start := time.Now()
	d := inst.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), tok, nil).JSON(t)
	t.Logf("GET /api/deployments/%d with %d revisions and usage records: %s", id, more+1, time.Since(start))
	revs, _ := d["revisions"].(map[string]any)
	usage, _ := d["usage"].(map[string]any)
	if revs == nil || usage == nil {
		t.Fatalf("GET /api/deployments/%d has no revisions or usage: %s", id, d)
	}
	latest := revs["latest"].([]any)
	if num(t, revs["total"]) != more+1 || len(latest) != 10 || num(t, latest[0].(map[string]any)["revision"]) != more+1 ||
		!strings.Contains(fmt.Sprint(revs["next"]), "page=2") {
		t.Errorf("revisions: total %v, %d latest from %v, next %v; want %d, 10 from %d, a link to page 2",
			revs["total"], len(latest), latest[0].(map[string]any)["revision"], revs["next"], more+1, more+1)
	}
	// Every inserted record is an hour at 1 an hour: the amount of all of them and the real one's.
	records := usage["latest"].([]any)
	if num(t, usage["records"]) != more+1 || len(records) != 10 || !strings.Contains(fmt.Sprint(usage["next"]), "page=2") ||
		!aboutMore(usage["accrued_amount"]) {
		t.Errorf("usage: %v records, %d latest, next %v, accrued %v; want %d, 10, a link to page 2, %d and the open record's",
			usage["records"], len(records), usage["next"], usage["accrued_amount"], more+1, more)
	}

	// The links page through the rest, newest first: page 2 follows page 1.
	next := inst.must(t, 200, "GET", revs["next"].(string), tok, nil)
	page2, links := next.List(t), strings.Join(next.Header.Values("Link"), ", ")
	if next.Header.Get("X-Total-Count") != fmt.Sprint(more+1) || len(page2) != 10 || num(t, page2[0]["revision"]) != more+1-10 ||
		!strings.Contains(links, `rel="next"`) || !strings.Contains(links, `rel="prev"`) {
		t.Errorf("revisions page 2: total %s, %d items from %v, links %q", next.Header.Get("X-Total-Count"), len(page2), page2[0]["revision"], links)
	}
	bill := inst.must(t, 200, "GET", usage["next"].(string), tok, nil)
	billPage := bill.JSON(t)["records"].([]any)
	if bill.Header.Get("X-Total-Count") != fmt.Sprint(more+1) || len(billPage) != 10 ||
		num(t, billPage[0].(map[string]any)["id"]) != num(t, records[9].(map[string]any)["id"])-1 {
		t.Errorf("the bill's page 2: total %s, %d records from %v after %v", bill.Header.Get("X-Total-Count"), len(billPage),
			billPage[0].(map[string]any)["id"], records[9].(map[string]any)["id"])
	}
	// The seed's bill of a deployment keeps its shape: the first 100 records, oldest first, the whole total.
	seed := inst.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/%d", consumer, id), tok, nil)
	sb := seed.JSON(t)
	if rs := sb["records"].([]any); len(rs) != 100 || num(t, rs[0].(map[string]any)["id"]) >= num(t, rs[1].(map[string]any)["id"]) ||
		seed.Header.Get("X-Total-Count") != fmt.Sprint(more+1) || !aboutMore(sb["total_amount"]) {
		t.Errorf("the seed's bill: %d records, total %s, total_amount %v", len(rs), seed.Header.Get("X-Total-Count"), sb["total_amount"])
	}
	oldest := inst.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/revisions", id), tok, nil)
	if l := oldest.List(t); len(l) != 100 || num(t, l[0]["revision"]) != 1 || oldest.Header.Get("X-Total-Count") != fmt.Sprint(more+1) {
		t.Errorf("revisions, oldest first: %d from %v, total %s", len(l), l[0]["revision"], oldest.Header.Get("X-Total-Count"))
	}
	// The other newly paged lists answer their totals too.
	for path, total := range map[string]int{
		fmt.Sprintf("/api/apps/%d/versions", app):                              1,
		fmt.Sprintf("/api/billing/user/%d/invoices", consumer):                 0,
		fmt.Sprintf("/api/billing/user/%d/statement", consumer):                more + 1,
		fmt.Sprintf("/api/billing/user/%d/statement?limit=5&page=2", consumer): more + 1,
	} {
		r := inst.must(t, 200, "GET", path, tok, nil)
		if r.Header.Get("X-Total-Count") != fmt.Sprint(total) {
			t.Errorf("GET %s: X-Total-Count %q, want %d", path, r.Header.Get("X-Total-Count"), total)
		}
		if strings.Contains(path, "statement") {
			st := r.JSON(t)
			want := min(100, total)
			if strings.Contains(path, "limit=5") {
				want = 5
			}
			if num(t, st["line_count"]) != int64(total) || len(st["lines"].([]any)) != want {
				t.Errorf("GET %s: line_count %v, %d lines; want %d, %d", path, st["line_count"], len(st["lines"].([]any)), total, want)
			}
		}
	}

	// The storefront's page: a page of each, its place among all, and the links.
	client, csrf := webSession(t, inst, tok)
	start = time.Now()
	page := get(t, client, fmt.Sprintf("%s/deployments/%d", inst.URL, id), http.StatusOK)
	t.Logf("the storefront's page of deployment %d: %s", id, time.Since(start))
	rows := func(page, testid string) int {
		m := regexp.MustCompile(`(?s)data-testid="` + testid + `".*?<tbody>(.*?)</tbody>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatalf("no %s table in the page", testid)
		}
		return strings.Count(m[1], "<tr>")
	}
	for _, want := range []string{fmt.Sprintf("1–20 of %d revisions", more+1), fmt.Sprintf("1–20 of %d usage records", more+1),
		"revisions_page=2", "usage_page=2"} {
		if !strings.Contains(page, want) {
			t.Errorf("the deployment's page does not say %q", want)
		}
	}
	if rows(page, "revisions") != 20 || rows(page, "usage") != 20 || !strings.Contains(page, "<td>10001</td><td>1</td>") {
		t.Errorf("the deployment's page shows %d revisions and %d usage records, want the latest 20 of each", rows(page, "revisions"), rows(page, "usage"))
	}
	second := get(t, client, fmt.Sprintf("%s/deployments/%d?revisions_page=2", inst.URL, id), http.StatusOK)
	if !strings.Contains(second, fmt.Sprintf("21–40 of %d revisions", more+1)) || !strings.Contains(second, "<td>9981</td>") ||
		strings.Contains(second, "<td>10001</td><td>1</td>") {
		t.Errorf("the second page of revisions is not the next 20")
	}
	get(t, client, fmt.Sprintf("%s/deployments/%d/status", inst.URL, id), http.StatusOK)
	// The statement's CSV download has every line, read 500 at a time, and the total.
	csv := get(t, client, inst.URL+"/bills/statement.csv?from="+url.QueryEscape(time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339)), http.StatusOK)
	if lines := strings.Split(strings.TrimSpace(csv), "\n"); len(lines) != more+3 || !strings.HasPrefix(lines[len(lines)-1], "total,") {
		t.Errorf("the statement's CSV has %d lines, want a header, %d lines and the total", len(lines), more+1)
	}

	// Deleting it from the storefront: the confirmation page changes nothing and is not in the audit
	// trail; the confirmed delete is, once, as the consumer's.
	if s := webPost(t, inst, client, fmt.Sprintf("/deployments/%d/delete", id), url.Values{"csrf": {csrf}}, nil); s != http.StatusOK {
		t.Fatalf("the delete's confirmation: status %d, want 200", s)
	}
	if s := webPost(t, inst, client, fmt.Sprintf("/deployments/%d/delete", id), url.Values{"csrf": {csrf}, "confirmed": {"yes"}}, nil); s != http.StatusSeeOther {
		t.Fatalf("the confirmed delete: status %d, want 303", s)
	}
	var deletes []string
	for _, e := range inst.must(t, 200, "GET", "/api/audit?limit=500", tok, nil).List(t) {
		if strings.HasPrefix(fmt.Sprint(e["action"]), "POST /deployments/") {
			deletes = append(deletes, fmt.Sprintf("%s %s %s", e["actor"], e["action"], e["resource"]))
		}
	}
	if want := fmt.Sprintf("user:%d POST /deployments/{id}/{action} /deployments/%d/delete", consumer, id); len(deletes) != 1 || deletes[0] != want {
		t.Errorf("the storefront's delete in the audit trail: %q, want [%s]", deletes, want)
	}
	inst.waitForStatus(t, tok, id, "uninstalled", 2*time.Minute)
}
