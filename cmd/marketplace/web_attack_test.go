package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// storefrontClient is a browser's cookie jar and what a test does with it: it follows no redirect (nor
// reads the Location header, which Go's client refuses to when it holds a control character), so the
// test sees where each answer sends the browser.
type storefrontClient struct {
	t    *testing.T
	base string
	jar  http.CookieJar
	csrf string
}

func newStorefrontClient(t *testing.T, base string) *storefrontClient {
	jar, _ := cookiejar.New(nil)
	return &storefrontClient{t: t, base: base, jar: jar}
}

// do sends a request with the browser's cookies; a form carries the session's CSRF token when it has one.
func (c *storefrontClient) do(method, path string, form url.Values, header map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		if c.csrf != "" && form.Get("csrf") == "" {
			form.Set("csrf", c.csrf)
		}
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for _, cookie := range c.jar.Cookies(req.URL) {
		req.AddCookie(cookie)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	c.jar.SetCookies(req.URL, resp.Cookies())
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfInPage = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// signIn signs the browser in with token, following the sign-in page's next field, and keeps the
// session's CSRF token. It returns where the answer sent the browser.
func (c *storefrontClient) signIn(token, next string) string {
	c.t.Helper()
	resp, page := c.do("GET", "/signin?next="+url.QueryEscape(next), nil, nil)
	field := regexp.MustCompile(`name="next" value="([^"]*)"`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || field == nil {
		c.t.Fatalf("sign-in page: %d, no next field: %.300s", resp.StatusCode, page)
	}
	resp, page = c.do("POST", "/signin", url.Values{"token": {token}, "next": {unescapeAttr(field[1])}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("sign in: status %d, want 303: %.300s", resp.StatusCode, page)
	}
	_, page = c.do("GET", "/deployments", nil, nil)
	m := csrfInPage.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("no CSRF token on the deployments page: %.300s", page)
	}
	c.csrf = m[1]
	return resp.Header.Get("Location")
}

// unescapeAttr reads an attribute value as a browser does, for the few references html/template writes.
func unescapeAttr(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&#43;", "+", "&#9;", "\t", "&#10;", "\n", "&#13;", "\r").Replace(s)
}

// browserResolve is where a browser goes for a Location header (the WHATWG URL parser): it drops leading
// and trailing spaces and controls, every tab and newline, and reads a backslash as a slash.
func browserResolve(t *testing.T, base, location string) *url.URL {
	t.Helper()
	location = strings.Trim(location, "\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f ")
	location = strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(location)
	b, _ := url.Parse(base)
	u, err := url.Parse(location)
	if err != nil {
		t.Fatalf("Location %q does not parse: %v", location, err)
	}
	return b.ResolveReference(u)
}

// TestStorefrontRedirectsStayOnSite: the next= of a sign-in link cannot send the browser to another site
// after it signs in, however it is written (a browser drops a tab or newline from a URL and reads a
// backslash as a slash, so "/<tab>/evil.example" is "//evil.example").
func TestStorefrontRedirectsStayOnSite(t *testing.T) {
	inst := startMarketplace(t, "api", nil)
	_, token := inst.user(t, "Redirected")
	base, _ := url.Parse(inst.URL)
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\t/evil.example/", "/\n/evil.example/",
		"/\r/evil.example/", `/\evil.example/`, "/\t\\evil.example/", " //evil.example/", "/%09/evil.example/", "javascript:alert(1)"} {
		c := newStorefrontClient(t, inst.URL)
		location := c.signIn(token, next)
		if u := browserResolve(t, inst.URL, location); u.Host != base.Host {
			t.Errorf("sign in with next=%q sends the browser to %q: %s", next, location, u)
		}
	}
	c := newStorefrontClient(t, inst.URL)
	if location := c.signIn(token, "/deployments?page=2"); location != "/deployments?page=2" {
		t.Errorf("sign in with next=/deployments?page=2 goes to %q", location)
	}
}

// TestStorefrontSessionHardening: pages cannot be framed by another site (header for browsers without
// CSP too) and private answers are not cached; signing in again ends the session the browser had; the
// session cookie is Secure when the operator says the storefront is served over HTTPS (TLS ends before
// the marketplace, which speaks HTTP only).
func TestStorefrontSessionHardening(t *testing.T) {
	inst := startMarketplace(t, "api", nil)
	_, token := inst.user(t, "Hardened")
	c := newStorefrontClient(t, inst.URL)
	c.signIn(token, "/")
	for _, path := range []string{"/", "/bills", "/bills/statement.csv", "/signin"} {
		resp, _ := c.do("GET", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: status %d", path, resp.StatusCode)
		}
		h := resp.Header
		if h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("GET %s can be framed: X-Frame-Options %q, CSP %q", path, h.Get("X-Frame-Options"), h.Get("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, h.Get("X-Content-Type-Options"))
		}
		if path != "/signin" && h.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s (private): Cache-Control %q, want no-store", path, h.Get("Cache-Control"))
		}
	}

	// The same browser signs in again (as itself, or as someone else): the first session is over.
	u, _ := url.Parse(inst.URL)
	first := c.jar.Cookies(u)
	c.signIn(token, "/")
	stale := newStorefrontClient(t, inst.URL)
	stale.jar.SetCookies(u, first)
	if resp, _ := stale.do("GET", "/deployments", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the session a browser had before it signed in again still opens pages: status %d", resp.StatusCode)
	}
	var sessions int
	query(t, inst.DatabaseURL, `SELECT count(*) FROM web_sessions`, nil, &sessions)
	if sessions != 1 {
		t.Errorf("%d sessions after one browser signed in twice, want 1", sessions)
	}

	secure := startMarketplace(t, "api", map[string]string{"MARKETPLACE_SECURE_COOKIES": "true"})
	_, token = secure.user(t, "Behind TLS")
	resp, _ := newStorefrontClient(t, secure.URL).do("POST", "/signin", url.Values{"token": {token}}, nil)
	if cs := resp.Cookies(); len(cs) != 1 || !cs[0].Secure || !cs[0].HttpOnly {
		t.Errorf("session cookie behind TLS: %+v, want one Secure HttpOnly cookie", cs)
	}
}

// hostile is what a publisher or another user writes where the storefront shows it: each must reach the
// page as text.
var hostile = []string{`<img src=x onerror=alert(1)>`, `"><svg onload=alert(2)>`, `</p><script>alert(3)</script>`,
	`<b onmouseover=alert(5)>`, `'><script>alert(6)</script>`, `</title><script>alert(7)</script>`, `<a href="javascript:alert(8)">`}

// checkInert fails if a page holds any of hostile as markup; shown says which must be there as text.
func checkInert(t *testing.T, page, body string, shown ...string) {
	t.Helper()
	for _, h := range hostile {
		if strings.Contains(body, h) {
			t.Errorf("%s holds %q as markup", page, h)
		}
	}
	for _, s := range shown {
		if !strings.Contains(body, strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)) {
			t.Errorf("%s does not show %q as text", page, s)
		}
	}
}

// TestStorefrontShowsHostileTextAsText: what a publisher writes (an application's name, description,
// inputs, defaults, changelog) and what a user is named reach every page as text, never as markup: the
// catalog's cards (escaped by hand), the application page, the install preview, the deployment page,
// the publisher's page and the operator's.
func TestStorefrontShowsHostileTextAsText(t *testing.T) {
	inst := startMarketplace(t, "api", nil)
	startMarketplace(t, "worker", sameMarketplace(inst)) // it answers the API's preview
	_, pubToken := inst.user(t, hostile[5])
	name := "Hostile " + hostile[0] + hostile[1]
	app := inst.must(t, 201, "POST", "/api/apps/new", pubToken, map[string]any{
		"name": name, "description": hostile[2] + " " + hostile[6], "hourly_rate": 0.5,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs": []map[string]any{{"name": "greeting", "type": "string", "default": hostile[4], "description": hostile[3]},
			{"name": "replicaCount", "type": "integer", "default": 1}},
	}).JSON(t)
	appID := num(t, app["id"])

	pub := newStorefrontClient(t, inst.URL)
	pub.signIn(pubToken, "/")
	if resp, body := pub.do("POST", fmt.Sprintf("/apps/%d/versions", appID), url.Values{"hourly_rate": {"0.6"}, "changelog": {hostile[2] + hostile[0]}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("publish a version from the publisher's page: %d %.300s", resp.StatusCode, body)
	}
	_, body := pub.do("GET", "/publisher", nil, nil)
	checkInert(t, "the publisher's page", body, name)

	consumerID, token := inst.user(t, "Consumer of hostile text")
	c := newStorefrontClient(t, inst.URL)
	c.signIn(token, "/")
	_, body = c.do("GET", "/?q=Hostile", nil, nil)
	checkInert(t, "the catalog", body, name, hostile[2])
	_, body = c.do("GET", fmt.Sprintf("/apps/%d", appID), nil, nil)
	checkInert(t, "the application page", body, name, hostile[2], hostile[3], hostile[4])
	if resp, body := c.do("POST", "/projects", url.Values{"name": {hostile[1]}, "next": {"/deployments"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create a project: %d %.300s", resp.StatusCode, body)
	}
	projects := inst.must(t, 200, "GET", fmt.Sprintf("/api/user/project/%d", consumerID), token, nil).List(t)
	form := url.Values{"project": {fmt.Sprint(num(t, projects[0]["id"]))}, "in.greeting": {hostile[4]}, "in.replicaCount": {"1"}}
	form.Set("action", "preview")
	resp, body := c.do("POST", fmt.Sprintf("/apps/%d/install", appID), form, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("preview: %d %.500s", resp.StatusCode, body)
	}
	checkInert(t, "the install preview", body, name, hostile[1], hostile[4])
	form.Set("action", "install")
	resp, body = c.do("POST", fmt.Sprintf("/apps/%d/install", appID), form, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("install: %d %.500s", resp.StatusCode, body)
	}
	_, body = c.do("GET", resp.Header.Get("Location"), nil, nil)
	checkInert(t, "the deployment page", body, name)

	op := newStorefrontClient(t, inst.URL)
	op.signIn(inst.Environ["MARKETPLACE_ADMIN_TOKEN"], "/")
	_, body = op.do("GET", "/operator", nil, nil)
	checkInert(t, "the operator's page", body, hostile[5])
}

// TestStorefrontTenancy: a signed-in user reaches nothing of another's through any storefront route,
// whatever id it puts in the address or the form, and changes nothing trying.
func TestStorefrontTenancy(t *testing.T) {
	inst := startMarketplace(t, "api", nil)
	victimID, victim := inst.user(t, "Victim")
	app := inst.must(t, 201, "POST", "/api/apps/new", victim, map[string]any{
		"name": "Victim's app", "description": "published by the victim", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
	}).JSON(t)
	appID := num(t, app["id"])
	project := num(t, inst.must(t, 201, "POST", "/api/user/project/new", victim, map[string]any{"name": "victim-project", "user_id": victimID}).JSON(t)["id"])
	deployment := num(t, inst.must(t, 202, "POST", "/api/deployments/install", victim, map[string]any{
		"consumer_id": victimID, "application_id": appID, "project_id": project}).JSON(t)["deploymentID"])

	_, attackerToken := inst.user(t, "Attacker")
	a := newStorefrontClient(t, inst.URL)
	a.signIn(attackerToken, "/")
	before := snapshot(t, inst.DatabaseURL)
	for _, r := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", fmt.Sprintf("/deployments/%d", deployment), nil},
		{"GET", fmt.Sprintf("/deployments/%d/status", deployment), nil},
		{"POST", fmt.Sprintf("/deployments/%d/delete", deployment), url.Values{"confirmed": {"yes"}}},
		{"POST", fmt.Sprintf("/deployments/%d/delete", deployment), url.Values{}},
		{"POST", fmt.Sprintf("/deployments/%d/upgrade", deployment), url.Values{"confirmed": {"yes"}, "version": {"1"}}},
		{"POST", fmt.Sprintf("/deployments/%d/rollback", deployment), url.Values{"confirmed": {"yes"}}},
		{"POST", fmt.Sprintf("/apps/%d/versions", appID), url.Values{"hourly_rate": {"0.01"}, "changelog": {"free now"}}},
		{"POST", fmt.Sprintf("/apps/%d/install", appID), url.Values{"project": {fmt.Sprint(project)}, "action": {"install"}}},
		{"POST", fmt.Sprintf("/apps/%d/install", appID), url.Values{"project": {fmt.Sprint(project)}, "action": {"preview"}}},
		{"GET", "/operator", nil},
	} {
		resp, body := a.do(r.method, r.path, r.form, nil)
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s %s %v as another user: status %d, want 404 or 422", r.method, r.path, r.form, resp.StatusCode)
		}
		if strings.Contains(body, "victim-project") || strings.Contains(body, "Delete deployment") {
			t.Errorf("%s %s as another user shows the victim's data: %.300s", r.method, r.path, body)
		}
	}
	for _, path := range []string{"/deployments", "/bills", "/publisher"} {
		_, body := a.do("GET", path, nil, nil)
		if strings.Contains(body, "victim-project") || strings.Contains(body, fmt.Sprintf("/deployments/%d\"", deployment)) || strings.Contains(body, "Victim&#39;s app") {
			t.Errorf("GET %s as another user shows the victim's data: %.500s", path, body)
		}
	}
	if _, csv := a.do("GET", "/bills/statement.csv?from=2000-01-01T00:00:00Z", nil, nil); strings.Count(csv, "\n") != 2 {
		t.Errorf("the attacker's statement has lines of usage it never had:\n%s", csv)
	}
	// An api instance runs no worker: nothing but the attacker's requests could change the database.
	if after := snapshot(t, inst.DatabaseURL); after != before {
		t.Errorf("the attacker's refused requests changed the database")
	}
	var versions int
	query(t, inst.DatabaseURL, `SELECT count(*) FROM application_versions WHERE application_id = $1`, []any{appID}, &versions)
	if versions != 1 {
		t.Errorf("the victim's application has %d versions after the attacker's requests, want 1", versions)
	}
}

// TestStorefrontPollAfterSignOut: a status poll (htmx) whose session has ended is told to load the
// sign-in page in place of the whole page, not answered with a redirect that htmx would follow and swap
// the sign-in form into the status box.
func TestStorefrontPollAfterSignOut(t *testing.T) {
	inst := startMarketplace(t, "api", nil)
	_, token := inst.user(t, "Polling")
	c := newStorefrontClient(t, inst.URL)
	c.signIn(token, "/")
	if resp, body := c.do("POST", "/signout", url.Values{}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d %.300s", resp.StatusCode, body)
	}
	resp, _ := c.do("GET", "/deployments/1/status", nil, map[string]string{"HX-Request": "true", "HX-Current-URL": inst.URL + "/deployments/1"})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("HX-Redirect") != "/signin?next=%2Fdeployments%2F1" {
		t.Errorf("a poll after sign-out: status %d, HX-Redirect %q; want 401 and /signin?next=%%2Fdeployments%%2F1", resp.StatusCode, resp.Header.Get("HX-Redirect"))
	}
	resp, _ = c.do("GET", "/deployments/1/status", nil, map[string]string{"HX-Request": "true", "HX-Current-URL": "https://evil.example/x"})
	if got := resp.Header.Get("HX-Redirect"); got != "/signin?next=%2Fx" {
		t.Errorf("a poll naming another site as its page: HX-Redirect %q, want /signin?next=%%2Fx", got)
	}
}
