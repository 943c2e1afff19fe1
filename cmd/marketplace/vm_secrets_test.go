package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// authImageServer is a publisher's image server that wants a user and a password. It answers a request
// carrying them by closing the connection (Go's client then fails with an error naming the URL it
// fetched, user included, as a dropped download does), and any other with 401. It remembers the
// credentials of every request.
type authImageServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // user:password of each request, "" without any
}

func newAuthImageServer(t *testing.T, user, password string) *authImageServer {
	s := &authImageServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		s.mu.Lock()
		if ok {
			s.seen = append(s.seen, u+":"+p)
		} else {
			s.seen = append(s.seen, "")
		}
		s.mu.Unlock()
		if !ok || u != user || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="images"`)
			http.Error(w, "credentials wanted", http.StatusUnauthorized)
			return
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// requests are the credentials of the requests the server received.
func (s *authImageServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// TestImageCredentialsAreNeverShown publishes a vm application whose image URL carries a user and a
// password and installs it: the download is made with them (the image server sees them), and no
// surface shows them: the API's application, catalog (a page, a kept search, a kept deep page, and the
// JSON the database keeps for them), versions, deployments and their failure reason, the audit trail,
// the storefront's pages and `mpctl apps show`. The publisher's update and new version made of the
// spec it read (credentials redacted) keep the stored credentials: the next download carries them.
func TestImageCredentialsAreNeverShown(t *testing.T) {
	const user, password = "alice-img", "s3cret-img-pw"
	images := newAuthImageServer(t, user, password)
	host := images.Listener.Addr().String()
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"DEPLOY_MAX_ATTEMPTS": "1",
		"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + host}))
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	fillerID, _ := mp.user(t, "catalog filler")
	pubID, pub := mp.user(t, "image publisher")
	_, con := mp.user(t, "image consumer")
	// More than one block of the catalog before it, so a page of it at offset 300 is a kept deep page.
	seedCatalog(t, mp.DatabaseURL, fillerID, 300)

	image := fmt.Sprintf("http://%s:%s@%s/disks/guest.qcow2", user, password, host)
	shownImage := fmt.Sprintf("http://REDACTED@%s/disks/guest.qcow2", host)
	spec := map[string]any{"type": "vm", "image": image, "cpu": "1 vCPU", "memory": "256Mi"}
	created := mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "Zephyrine appliance",
		"description": "A guest from a private image server.", "hourly_rate": 1, "deployment": spec})
	id := num(t, created.JSON(t)["id"])
	var instanceID string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instanceID)
	t.Cleanup(func() { mp.stop(); removeVMs(t, "mp-"+instanceID[:12]+"-") })

	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", con, map[string]any{"name": "vms"}).JSON(t)["id"])
	install := func() int64 {
		t.Helper()
		dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", con,
			map[string]any{"application_id": id, "project_id": project}).JSON(t)["deploymentID"])
		mp.waitForStatus(t, con, dep, "failed", 2*time.Minute)
		return dep
	}
	dep := install()
	if got := images.requests(); len(got) == 0 || got[len(got)-1] != user+":"+password {
		t.Fatalf("the image server saw the credentials %q; want the download made with %s:%s", got, user, password)
	}

	// The publisher reads its application and sends it back renamed; then publishes a version made of it.
	read := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), pub, nil).JSON(t)
	if shown := read["deployment"].(map[string]any)["image"]; shown != shownImage {
		t.Fatalf("the image is shown as %v, want %s", shown, shownImage)
	}
	updated := mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", id), pub, map[string]any{"name": "Zephyrine appliance 2",
		"description": "A guest from a private image server.", "hourly_rate": 1, "deployment": read["deployment"]})
	var stored string
	query(t, mp.DatabaseURL, `SELECT deployment->>'image' FROM applications WHERE id = $1`, []any{id}, &stored)
	if stored != image {
		t.Fatalf("after the update the stored image is %q, want %q", stored, image)
	}
	version := mp.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", id), pub, map[string]any{"hourly_rate": 2,
		"deployment": read["deployment"], "changelog": "same image"})
	query(t, mp.DatabaseURL, `SELECT deployment->>'image' FROM application_versions WHERE application_id = $1 ORDER BY version DESC LIMIT 1`, []any{id}, &stored)
	if stored != image {
		t.Fatalf("the new version's stored image is %q, want %q", stored, image)
	}
	before := len(images.requests())
	second := install()
	if got := images.requests()[before:]; len(got) == 0 || got[len(got)-1] != user+":"+password {
		t.Fatalf("after the update the image server saw the credentials %q; want %s:%s", got, user, password)
	}

	d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", dep), con, nil)
	reason, _ := d.JSON(t)["failure_reason"].(string)
	if !strings.Contains(reason, "REDACTED@"+host) {
		t.Fatalf("failure reason %q: want the download's error, naming the image's URL redacted", reason)
	}
	search := "/api/apps?q=Zephyrine"
	deep := "/api/apps?page=4&limit=100" // offset 300: past the first block
	responses := map[string]response{"publish": created, "update": updated, "new version": version,
		"application":      mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), con, nil),
		"catalog":          mp.must(t, 200, "GET", "/api/apps?deploymentType=vm&publisher="+strconv.FormatInt(pubID, 10), con, nil),
		"search":           mp.must(t, 200, "GET", search, con, nil),
		"kept search":      mp.must(t, 200, "GET", search, con, nil),
		"deep page":        mp.must(t, 200, "GET", deep, con, nil),
		"kept deep":        mp.must(t, 200, "GET", deep, con, nil),
		"versions":         mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d/versions", id), con, nil),
		"deployment":       d,
		"second":           mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", second), con, nil),
		"deployments":      mp.must(t, 200, "GET", "/api/deployments", con, nil),
		"project":          mp.must(t, 200, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), con, nil),
		"audit":            mp.must(t, 200, "GET", "/api/audit?limit=100", con, nil),
		"operator's audit": mp.must(t, 200, "GET", fmt.Sprintf("/api/audit?resource=deployment:%d", dep), operator, nil),
	}
	for _, name := range []string{"search", "kept search", "deep page", "kept deep"} {
		if !strings.Contains(string(responses[name].Body), shownImage) {
			t.Errorf("the %s does not list the application with its image redacted: %.500s", name, responses[name].Body)
		}
	}
	if !strings.Contains(string(responses["operator's audit"].Body), "REDACTED@"+host) {
		t.Errorf("the audit trail lost the failure reason: %s", responses["operator's audit"].Body)
	}
	var kept string
	query(t, mp.DatabaseURL, `SELECT (SELECT listing FROM applications WHERE id = $1) || ' ' ||
  coalesce((SELECT string_agg(listings, ' ') FROM catalog_searches WHERE listings LIKE '%Zephyrine%'), '')`, []any{id}, &kept)
	if strings.Count(kept, shownImage) < 3 { // the listing, the kept search, the kept deep page
		t.Errorf("the database keeps for the catalog %.1000s; want the listing and two kept answers with the image redacted", kept)
	}
	responses["kept listings"] = response{Body: []byte(kept)}

	// The storefront, as the consumer's browser reads it, and the CLI.
	web := newStorefrontClient(t, mp.URL)
	web.signIn(con, "/")
	for _, path := range []string{fmt.Sprintf("/apps/%d", id), fmt.Sprintf("/deployments/%d", dep), "/?q=Zephyrine", "/deployments"} {
		resp, page := web.do("GET", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		responses["storefront "+path] = response{Body: []byte(page)}
	}
	if page := responses[fmt.Sprintf("storefront /apps/%d", id)].Body; !strings.Contains(string(page), shownImage) {
		t.Errorf("the application's page does not show its image redacted: %s", page)
	}
	cli := buildMpctl(t)
	if r := cli.runWithStdin(t, con+"\n", nil, "login", "--url", mp.URL, "--token", "-"); r.code != 0 {
		t.Fatalf("mpctl login: exit %d: %s", r.code, r.stderr)
	}
	shown := cli.must(t, "apps", "show", strconv.FormatInt(id, 10))
	if !strings.Contains(shown, shownImage) {
		t.Errorf("mpctl apps show does not show the image redacted: %s", shown)
	}
	responses["mpctl apps show"] = response{Body: []byte(shown)}

	for name, r := range responses {
		if strings.Contains(string(r.Body), password) || strings.Contains(string(r.Body), user) {
			t.Errorf("the %s shows the image's credentials: %.2000s", name, r.Body)
		}
	}
}

// TestSSHKeysTakeNoDefaultFromThePublisher checks a publisher cannot put its own key on every
// consumer's VM: publishing, updating or versioning a vm application whose ssh_authorized_keys input
// has a default (or an input under it) is refused with a 422 naming the input, and nothing is stored.
// Declaring it without a default, to describe it, is allowed.
func TestSSHKeysTakeNoDefaultFromThePublisher(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	_, pub := mp.user(t, "key publisher")
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpublisherskeypublisherskeypublisherskey publisher@laptop"
	spec := map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1 vCPU", "memory": "256Mi"}
	app := func(inputs ...map[string]any) map[string]any {
		return map[string]any{"name": "keyed", "hourly_rate": 1, "deployment": spec, "inputs": inputs}
	}
	withDefault := map[string]any{"name": "ssh_authorized_keys", "type": "string", "default": key}
	underIt := map[string]any{"name": "ssh_authorized_keys.publisher", "type": "string", "default": key}
	described := map[string]any{"name": "ssh_authorized_keys", "type": "string", "description": "your public keys"}

	before := snapshot(t, mp.DatabaseURL)
	mustProblem(t, mp.call(t, "POST", "/api/apps/new", pub, app(withDefault)), 422, "ssh_authorized_keys", "default")
	mustProblem(t, mp.call(t, "POST", "/api/apps/new", pub, app(underIt)), 422, "ssh_authorized_keys.publisher")
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a refused publish changed the database")
	}

	id := num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, app(described)).JSON(t)["id"])
	before = snapshot(t, mp.DatabaseURL)
	mustProblem(t, mp.call(t, "PUT", fmt.Sprintf("/api/apps/%d", id), pub, app(withDefault)), 422, "ssh_authorized_keys", "default")
	mustProblem(t, mp.call(t, "POST", fmt.Sprintf("/api/apps/%d/versions", id), pub,
		map[string]any{"hourly_rate": 1, "deployment": spec, "inputs": []map[string]any{withDefault}}), 422, "ssh_authorized_keys", "default")
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a refused update or version changed the database")
	}
	if a := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", id), pub, nil); strings.Contains(string(a.Body), "publisher@laptop") {
		t.Fatalf("the application holds the publisher's key: %s", a.Body)
	}
}
