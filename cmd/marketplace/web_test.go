package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// seedCatalog inserts n applications of publisherID by SQL, as bench/apps.sh does: a catalog the size
// of a real one, in a second.
func seedCatalog(t *testing.T, databaseURL string, publisherID int64, n int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment, inputs)
SELECT $1, 'Catalog app ' || i, 'Application ' || i || ' of a large catalog: a small web server.', round(0.1 + (i % 100) * 0.05, 6),
       CASE WHEN i % 2 = 0 THEN 'vm' ELSE 'k8s' END,
       CASE WHEN i % 2 = 0
         THEN jsonb_build_object('type', 'vm', 'repoURL', '', 'chartName', '', 'chartVersion', '', 'image', 'test-guest.qcow2', 'cpu', '1', 'memory', '256Mi')
         ELSE jsonb_build_object('type', 'k8s', 'repoURL', 'http://127.0.0.1:8879', 'chartName', 'hello-web', 'chartVersion', '', 'image', '', 'cpu', '', 'memory', '')
       END, '[]'::jsonb
FROM generate_series(1, $2) AS i`, publisherID, n)
	if err != nil {
		t.Fatalf("seed %d applications: %v", n, err)
	}
}

// TestStorefront is the storefront as a consumer uses it, in Chromium: sign in, find an application by
// search among 10,000, install it through the form generated from its inputs (the page refuses a
// required input left empty, the API a value of the wrong type, shown next to the field), watch it
// become installed without reloading, see its bill accrue, delete it; a second user's session sees none
// of it and cannot act on it. Every page passes axe-core without a serious or critical violation.
// Screenshots of every step go to .local/screenshots.
func TestStorefront(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	_, fillerToken := inst.user(t, "Catalog filler")
	fillerID := num(t, inst.must(t, 200, "GET", "/api/users", fillerToken, nil).List(t)[0]["id"])
	seedCatalog(t, inst.DatabaseURL, fillerID, 10000)
	_, pubToken := inst.user(t, "Publisher")
	app := inst.must(t, 201, "POST", "/api/apps/new", pubToken, map[string]any{
		"name": "Needle web server", "description": "A hello-web server found by searching for its name.", "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "required": true, "description": "How many pods serve it."}},
	}).JSON(t)
	appID := num(t, app["id"])
	_, token := inst.user(t, "Consumer")
	_, otherToken := inst.user(t, "Other consumer")

	ctx := browserContext(t)
	step := 0
	shot := func(name string) { step++; screenshot(t, ctx, step, name) }

	// Sign in: the token becomes a session cookie the page's scripts cannot read.
	browse(t, ctx, "sign in",
		chromedp.Navigate(inst.URL+"/"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SendKeys(`#token`, token, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery))
	shot("catalog")
	checkAccessibility(t, ctx, "the catalog")
	var cookies string
	var transferred float64
	// The first load of the catalog with nothing cached: the sign-in page fetched the assets already.
	browse(t, ctx, "first load",
		chromedp.ActionFunc(func(ctx context.Context) error { return network.ClearBrowserCache().Do(ctx) }),
		chromedp.Navigate(inst.URL+"/"),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.cookie`, &cookies),
		chromedp.Evaluate(`performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).reduce((n, e) => n + e.transferSize, 0)`, &transferred))
	if strings.Contains(cookies, "mp_session") {
		t.Errorf("the session cookie is readable by scripts: %q", cookies)
	}
	t.Logf("first load of the catalog: %.0f bytes transferred", transferred)
	if transferred > 150*1024 {
		t.Errorf("first load of the catalog transferred %.0f bytes, more than 150 KB", transferred)
	}

	// Search: among 10,000 applications, the one whose name matches.
	var count string
	browse(t, ctx, "search",
		chromedp.SendKeys(`#q`, "Needle", chromedp.ByID),
		chromedp.Submit(`#q`, chromedp.ByID),
		// The answer's page, not the one still showing: its search field was written with the term.
		chromedp.WaitVisible(`#q[value="Needle"]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=count]`, &count, chromedp.ByQuery))
	shot("search")
	if !strings.HasPrefix(count, "1 application") {
		t.Fatalf("searching for Needle among 10,001 applications shows %q, want 1 application", count)
	}
	var price string
	browse(t, ctx, "open the application",
		chromedp.Click(`//a[text()="Needle web server"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=price]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=price]`, &price, chromedp.ByQuery))
	if !strings.Contains(price, "1.10 USD per hour") || !strings.Contains(price, "792.00 USD per 30 days") {
		t.Errorf("price = %q, want 1.10 USD per hour and 792.00 USD per 30 days", price)
	}
	shot("application")
	checkAccessibility(t, ctx, "the application page")

	// A project first, from the same page.
	browse(t, ctx, "create a project",
		chromedp.Click(`//button[text()="Create project"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=install-form]`, chromedp.ByQuery))

	// A required input left empty: the page does not send the form.
	var missing bool
	var location string
	browse(t, ctx, "submit without the required input",
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.getElementById("input-0").validity.valueMissing`, &missing),
		chromedp.Location(&location))
	shot("required-refused-in-page")
	if !missing || !strings.HasSuffix(location, fmt.Sprintf("/apps/%d", appID)) {
		t.Fatalf("an empty required input: valueMissing=%v, location %s; want the page to refuse it", missing, location)
	}

	// A value of the wrong type (a client that skips the page's checks): the API's validation refuses it
	// and the page shows why next to the field.
	var fieldError string
	browse(t, ctx, "submit a wrong type",
		chromedp.Evaluate(`document.getElementById("input-0").type = "text"; true`, nil),
		chromedp.SendKeys(`#input-0`, "three", chromedp.ByID),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#input-0-error`, chromedp.ByID),
		chromedp.Text(`#input-0-error`, &fieldError, chromedp.ByID))
	shot("wrong-type-refused-by-api")
	if !strings.Contains(fieldError, "replicaCount") || !strings.Contains(fieldError, "three") {
		t.Errorf("the error next to replicaCount says %q, want it to name the input and the value", fieldError)
	}
	checkAccessibility(t, ctx, "the refused install form")

	// The cost and the dry run's preview, then the install.
	var cost, resources string
	browse(t, ctx, "preview",
		chromedp.SetValue(`#input-0`, "1", chromedp.ByID),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=cost]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=cost]`, &cost, chromedp.ByQuery),
		chromedp.Text(`main ul`, &resources, chromedp.ByQuery))
	shot("preview")
	checkAccessibility(t, ctx, "the install preview")
	if !strings.Contains(cost, "1.10 USD per hour") || !strings.Contains(cost, "792.00 USD per 30 days") {
		t.Errorf("preview cost = %q", cost)
	}
	if !strings.Contains(resources, "Deployment") || !strings.Contains(resources, "Service") {
		t.Errorf("the preview lists %q, want the chart's Deployment and Service", resources)
	}
	browse(t, ctx, "confirm",
		chromedp.Click(`//button[text()="Confirm and install"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status]`, chromedp.ByQuery),
		chromedp.Location(&location),
		// A mark that a reload would wipe: the status must change under it.
		chromedp.Evaluate(`window.notReloaded = true; true`, nil))
	m := regexp.MustCompile(`/deployments/(\d+)$`).FindStringSubmatch(location)
	if m == nil {
		t.Fatalf("after confirming, the browser is at %s, want a deployment's page", location)
	}
	deploymentPath := m[0]
	shot("pending")

	// Live: pending → installed without a reload, then the bill accrues in the same page.
	var notReloaded bool
	var firstAccrued, accrued string
	browse(t, ctx, "watch it become installed",
		chromedp.WaitVisible(`[data-testid=status] .status-installed`, chromedp.ByQuery),
		chromedp.Evaluate(`window.notReloaded === true`, &notReloaded),
		chromedp.Text(`[data-testid=accrued]`, &firstAccrued, chromedp.ByQuery))
	if !notReloaded {
		t.Errorf("the page reloaded to show the new status; it should update in place")
	}
	shot("installed")
	checkAccessibility(t, ctx, "the deployment page")
	browse(t, ctx, "watch the bill accrue",
		chromedp.Poll(fmt.Sprintf(`document.querySelector("[data-testid=accrued]").textContent !== %q`, firstAccrued), nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`[data-testid=accrued]`, &accrued, chromedp.ByQuery))
	if a, err := decimal.NewFromString(accrued); err != nil || !a.IsPositive() {
		t.Errorf("accrued %q, want a positive amount", accrued)
	}
	shot("accruing")

	var total string
	browse(t, ctx, "bills",
		chromedp.Navigate(inst.URL+"/bills"),
		chromedp.Text(`[data-testid=total]`, &total, chromedp.ByQuery))
	shot("bills")
	checkAccessibility(t, ctx, "the bills page")
	if amount, err := decimal.NewFromString(strings.Fields(total)[0]); err != nil || !amount.IsPositive() {
		t.Errorf("the bill's total is %q, want a positive amount", total)
	}

	// A second user's session sees none of it and cannot act on it.
	other := browserContext(t)
	var otherList, notFound string
	var status404, csrfStatus float64
	browse(t, other, "second user",
		chromedp.Navigate(inst.URL+"/signin"),
		chromedp.SendKeys(`#token`, otherToken, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
		chromedp.Navigate(inst.URL+"/deployments"),
		chromedp.Text(`main`, &otherList, chromedp.ByQuery),
		chromedp.Navigate(inst.URL+deploymentPath),
		chromedp.Text(`main`, &notFound, chromedp.ByQuery),
		chromedp.Evaluate(`fetch(location.pathname + "/delete", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, confirmed: "yes"})}).then(r => r.status)`, &status404, awaitPromise),
		chromedp.Evaluate(`fetch("/projects", {method: "POST", body: new URLSearchParams({csrf: "not-this-session", name: "x"})}).then(r => r.status)`, &csrfStatus, awaitPromise))
	step++
	screenshot(t, other, step, "second-user")
	checkAccessibility(t, other, "another user's deployment")
	if strings.Contains(otherList, "#"+m[1]) || !strings.Contains(otherList, "No deployments yet") {
		t.Errorf("the second user's deployments page shows %q", otherList)
	}
	if !strings.Contains(notFound, "not found") {
		t.Errorf("the second user opening the first's deployment sees %q, want not found", notFound)
	}
	if status404 != 404 {
		t.Errorf("the second user deleting the first's deployment: status %v, want 404", status404)
	}
	if csrfStatus != 403 {
		t.Errorf("a form without the session's CSRF token: status %v, want 403", csrfStatus)
	}

	// Delete, with a confirmation, and watch it go.
	browse(t, ctx, "delete",
		chromedp.Navigate(inst.URL+deploymentPath),
		chromedp.Click(`//button[text()="Delete…"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//button[text()="Yes, delete"]`, chromedp.BySearch))
	shot("confirm-delete")
	checkAccessibility(t, ctx, "the delete confirmation")
	browse(t, ctx, "confirm the deletion",
		chromedp.Click(`//button[text()="Yes, delete"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status] .status-uninstalled`, chromedp.ByQuery))
	shot("uninstalled")

	// The publisher sees what the application earned; the operator sees the queues and the audit trail.
	publisher := browserContext(t)
	var revenue string
	browse(t, publisher, "publisher",
		chromedp.Navigate(inst.URL+"/signin"),
		chromedp.SendKeys(`#token`, pubToken, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
		chromedp.Navigate(inst.URL+"/publisher"),
		chromedp.WaitVisible(`svg.chart`, chromedp.ByQuery),
		chromedp.Text(`#revenue-h + figure + table tbody tr:last-child td:last-child`, &revenue, chromedp.ByQuery))
	step++
	screenshot(t, publisher, step, "publisher")
	checkAccessibility(t, publisher, "the publisher's page")
	if r, err := decimal.NewFromString(revenue); err != nil || !r.IsPositive() {
		t.Errorf("this month's revenue of the publisher is %q, want the deployment's positive amount", revenue)
	}
	operator := browserContext(t)
	var audit string
	browse(t, operator, "operator",
		chromedp.Navigate(inst.URL+"/signin"),
		chromedp.SendKeys(`#token`, inst.Environ["MARKETPLACE_ADMIN_TOKEN"], chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery),
		chromedp.Navigate(inst.URL+"/operator"),
		chromedp.WaitVisible(`[data-testid=depth]`, chromedp.ByQuery),
		chromedp.Text(`#audit-h + div`, &audit, chromedp.ByQuery))
	step++
	screenshot(t, operator, step, "operator")
	checkAccessibility(t, operator, "the operator's page")
	if !strings.Contains(audit, "deployment.installed") {
		t.Errorf("the operator's audit trail does not show the install: %.500s", audit)
	}

	// Sign out ends the session: the same cookie opens nothing.
	browse(t, ctx, "sign out",
		chromedp.Click(`//button[text()="Sign out"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.Navigate(inst.URL+"/deployments"),
		chromedp.WaitVisible(`#token`, chromedp.ByID))
	shot("signed-out")
	checkAccessibility(t, ctx, "the sign-in page")
}

// TestStorefrontSessions: a session is a cookie for a token, refused once the token is revoked or the
// session signed out; a form needs the session's CSRF token and must come from this origin; bearer
// tokens keep working for the API.
func TestStorefrontSessions(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	id, token := inst.user(t, "Web user")
	second := inst.must(t, 201, "POST", fmt.Sprintf("/api/users/%d/tokens", id), token, nil).JSON(t)

	signIn := func(token string) (*http.Client, string) {
		jar, _ := cookiejar.New(nil)
		client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.PostForm(inst.URL+"/signin", url.Values{"token": {token}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign in: status %d, want 303", resp.StatusCode)
		}
		c := resp.Cookies()
		if len(c) != 1 || !c[0].HttpOnly || c[0].SameSite != http.SameSiteLaxMode || strings.Contains(c[0].Value, token) {
			t.Fatalf("session cookie %+v: want one HttpOnly SameSite=Lax cookie that is not the token", c)
		}
		body := get(t, client, inst.URL+"/deployments", http.StatusOK)
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
		if csrf == nil {
			t.Fatalf("no CSRF token in the page: %s", body)
		}
		return client, csrf[1]
	}
	post := func(client *http.Client, path string, form url.Values, header map[string]string) int {
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

	// A wrong token opens nothing.
	jar, _ := cookiejar.New(nil)
	anon := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if s := post(anon, "/signin", url.Values{"token": {"mpt_" + strings.Repeat("x", 43)}}, nil); s != http.StatusUnauthorized {
		t.Errorf("sign in with a wrong token: status %d, want 401", s)
	}
	get(t, anon, inst.URL+"/", http.StatusSeeOther)

	client, csrf := signIn(token)
	before := snapshot(t, inst.DatabaseURL)
	if s := post(client, "/projects", url.Values{"name": {"p"}}, nil); s != http.StatusForbidden {
		t.Errorf("a form without the CSRF token: status %d, want 403", s)
	}
	if s := post(client, "/projects", url.Values{"name": {"p"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}); s != http.StatusForbidden {
		t.Errorf("a form from another origin: status %d, want 403", s)
	}
	if s := post(client, "/projects", url.Values{"name": {"p"}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); s != http.StatusForbidden {
		t.Errorf("a form from another site: status %d, want 403", s)
	}
	if s := post(client, "/projects", url.Values{"name": {""}, "csrf": {csrf}}, nil); s != http.StatusUnprocessableEntity {
		t.Errorf("a project without a name: status %d, want 422", s)
	}
	if after := snapshot(t, inst.DatabaseURL); after != before {
		t.Errorf("refused forms changed the database")
	}
	if s := post(client, "/projects", url.Values{"name": {"p"}, "csrf": {csrf}}, nil); s != http.StatusSeeOther {
		t.Errorf("a project from the storefront: status %d, want 303", s)
	}
	if ps := inst.must(t, 200, "GET", fmt.Sprintf("/api/user/project/%d", id), token, nil).List(t); len(ps) != 1 {
		t.Errorf("the API shows %d projects, want the one made in the storefront", len(ps))
	}

	// Revoking the token the session was opened with ends the session; another token's session lives.
	other, _ := signIn(second["token"].(string))
	firstTokenID := num(t, inst.must(t, 200, "GET", fmt.Sprintf("/api/users/%d/tokens", id), second["token"].(string), nil).List(t)[0]["id"])
	inst.must(t, 204, "DELETE", fmt.Sprintf("/api/users/%d/tokens/%d", id, firstTokenID), second["token"].(string), nil)
	get(t, client, inst.URL+"/deployments", http.StatusSeeOther)
	get(t, other, inst.URL+"/deployments", http.StatusOK)

	// Sign out deletes the session.
	body := get(t, other, inst.URL+"/deployments", http.StatusOK)
	otherCSRF := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)[1]
	if s := post(other, "/signout", url.Values{"csrf": {otherCSRF}}, nil); s != http.StatusSeeOther {
		t.Errorf("sign out: status %d, want 303", s)
	}
	var sessions int
	query(t, inst.DatabaseURL, `SELECT count(*) FROM web_sessions`, nil, &sessions)
	if sessions != 0 {
		t.Errorf("%d sessions left after revoking one and signing out of the other", sessions)
	}

	// The operator signs in with the operator token; the API keeps taking bearer tokens.
	op, _ := signIn(inst.Environ["MARKETPLACE_ADMIN_TOKEN"])
	if body := get(t, op, inst.URL+"/deployments", http.StatusOK); !strings.Contains(body, "operator") {
		t.Errorf("the operator's page does not say who is signed in")
	}
	inst.must(t, 200, "GET", "/api/apps", second["token"].(string), nil)
	if r := inst.call(t, "GET", "/api/apps", "", nil); r.Status != 401 || !strings.HasPrefix(r.ContentType, "application/problem+json") {
		t.Errorf("the API without a token: %d %s", r.Status, r.ContentType)
	}
	if r := inst.call(t, "GET", "/assets/nothing.js", "", nil); r.Status != 404 {
		t.Errorf("an unknown asset: status %d, want 404", r.Status)
	}
}

// get fetches a page and fails unless it has status want.
func get(t *testing.T, client *http.Client, u string, want int) string {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: status %d, want %d: %.300s", u, resp.StatusCode, want, b)
	}
	return string(b)
}
