package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/testenv"
)

// canaryServer is an HTTP server on loopback, inside "the operator's network", that nobody allowed:
// it counts every request and answers a secret that must never reach a publisher.
type canaryServer struct {
	*httptest.Server
	Port   int
	Secret string
	hits   atomic.Int64
}

func startCanary(t *testing.T) *canaryServer {
	t.Helper()
	c := &canaryServer{Secret: "canary-secret-" + testenv.Name("")}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c.hits.Add(1)
		io.WriteString(w, c.Secret)
	}))
	t.Cleanup(c.Close)
	c.Port = c.Listener.Addr().(*net.TCPAddr).Port
	return c
}

// writeChart writes a small chart (one ConfigMap) with the given values schema under dir/name.
func writeChart(t *testing.T, dir, name, schema string) {
	t.Helper()
	files := map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n",
		"values.yaml":              "greeting: hello\n",
		"values.schema.json":       schema,
		"templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
	}
	for file, content := range files {
		path := filepath.Join(dir, name, file)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// publisherRepository is a chart repository a publisher controls, on an address the operator allowed.
// Under /schema/ it serves real charts whose values schemas refer to the canary and to a local file;
// /redirect/index.yaml redirects to the canary; /entry/index.yaml lists charts whose download URLs are
// on the canary; /big/index.yaml weighs 2 MiB.
func publisherRepository(t *testing.T, canary *canaryServer) *httptest.Server {
	t.Helper()
	src, built := t.TempDir(), t.TempDir()
	writeChart(t, src, "schema-http", fmt.Sprintf(`{"type": "object", "properties": {"greeting": {"$ref": "http://127.0.0.1:%d/schema.json"}}}`, canary.Port))
	writeChart(t, src, "schema-file", `{"type": "object", "properties": {"greeting": {"$ref": "file:///etc/passwd"}}}`)
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	entryIndex := fmt.Sprintf(`apiVersion: v1
entries:
  hello-web:
  - {apiVersion: v2, name: hello-web, version: 0.1.0, urls: ["http://127.0.0.1:%[1]d/hello-web-0.1.0.tgz"]}
  by-name:
  - {apiVersion: v2, name: by-name, version: 0.1.0, urls: ["http://localhost:%[1]d/by-name-0.1.0.tgz"]}
  decimal:
  - {apiVersion: v2, name: decimal, version: 0.1.0, urls: ["http://2130706433:%[1]d/decimal-0.1.0.tgz"]}
`, canary.Port)
	mux := http.NewServeMux()
	mux.Handle("/schema/", http.StripPrefix("/schema", http.FileServer(http.Dir(built))))
	mux.HandleFunc("/redirect/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, canary.URL+"/index.yaml", http.StatusFound)
	})
	mux.HandleFunc("/entry/index.yaml", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, entryIndex) })
	mux.HandleFunc("/big/index.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("apiVersion: v1\n# " + strings.Repeat("x", 2<<20) + "\n"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestPublisherURLsCannotReachInside is the evidence that a publisher's URL cannot make the marketplace
// fetch from inside the operator's network: a canary on loopback, not allowed, is named in every form a
// URL takes — a literal address, a name, a decimal address, an IPv4-mapped IPv6 address, a redirect, a
// chart URL in an index, a values schema $ref (and a file: $ref) — and each is refused at publish time
// (422 naming MARKETPLACE_FETCH_ALLOW, nothing stored) or ends failed saying why. The canary counts zero
// requests, its secret appears in no answer, and the allowed repositories keep working, within the size
// limit (MARKETPLACE_FETCH_MAX_BYTES).
func TestPublisherURLsCannotReachInside(t *testing.T) {
	canary := startCanary(t)
	repo := publisherRepository(t, canary)
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1", "MARKETPLACE_FETCH_MAX_BYTES": "1048576",
		"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + repo.Listener.Addr().String()})
	_, tok := mp.user(t, "publisher")
	var answers []string // every body the API answered, searched for the canary's secret at the end
	var answersMu sync.Mutex
	call := func(t *testing.T, want int, method, path string, body any) response {
		t.Helper()
		r := mp.call(t, method, path, tok, body)
		answersMu.Lock()
		answers = append(answers, string(r.Body))
		answersMu.Unlock()
		if r.Status != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
		}
		return r
	}
	app := func(name, repoURL, chart string) map[string]any {
		return map[string]any{"name": name, "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": repoURL, "chartName": chart}}
	}

	t.Run("refused at publish", func(t *testing.T) {
		call(t, 201, "POST", "/api/apps/new", app("allowed", tenv.ChartRepo, "hello-web"))
		before := snapshot(t, mp.DatabaseURL)
		for _, u := range []string{
			fmt.Sprintf("http://127.0.0.1:%d", canary.Port),
			fmt.Sprintf("http://localhost:%d", canary.Port),
			fmt.Sprintf("http://2130706433:%d", canary.Port),
			fmt.Sprintf("http://0x7f000001:%d", canary.Port),
			fmt.Sprintf("http://[::ffff:127.0.0.1]:%d", canary.Port),
			fmt.Sprintf("http://[::1]:%d", canary.Port),
			"http://169.254.169.254/latest/meta-data",
			fmt.Sprintf("oci://127.0.0.1:%d/charts", canary.Port),
		} {
			for _, req := range []struct{ method, path string }{{"POST", "/api/apps/new"}, {"PUT", "/api/apps/1"}} {
				r := mp.call(t, req.method, req.path, tok, app("inside", u, "hello-web"))
				answers = append(answers, string(r.Body))
				if r.Status != 422 {
					t.Errorf("%s %s with %s: status %d, want 422: %s", req.method, req.path, u, r.Status, r.Body)
					continue
				}
				if !strings.HasPrefix(r.ContentType, "application/problem+json") {
					t.Errorf("%s %s with %s: content type %q", req.method, req.path, u, r.ContentType)
				}
				detail, _ := r.JSON(t)["detail"].(string)
				if !strings.Contains(detail, "MARKETPLACE_FETCH_ALLOW") || !strings.Contains(detail, "does not fetch from") {
					t.Errorf("%s %s with %s: detail %q does not say why or what to set", req.method, req.path, u, detail)
				}
			}
		}
		if after := snapshot(t, mp.DatabaseURL); after != before {
			t.Error("a refused publish or update changed the database")
		}
	})

	t.Run("refused when fetched", func(t *testing.T) {
		call(t, 201, "POST", "/api/user/project/new", map[string]any{"name": "p"})
		for _, tc := range []struct {
			name, repoURL, chart, reason string
		}{
			{"a redirect to the canary", repo.URL + "/redirect", "hello-web", fmt.Sprintf("does not fetch from 127.0.0.1:%d", canary.Port)},
			{"an index entry on the canary", repo.URL + "/entry", "hello-web", fmt.Sprintf("does not fetch from 127.0.0.1:%d", canary.Port)},
			{"an index entry naming localhost", repo.URL + "/entry", "by-name", "does not fetch from localhost"},
			{"an index entry with a decimal address", repo.URL + "/entry", "decimal", "non-standard form"},
			{"a schema $ref on the canary", repo.URL + "/schema", "schema-http", fmt.Sprintf("values.schema.json refers to http://127.0.0.1:%d/schema.json", canary.Port)},
			{"a schema file: $ref", repo.URL + "/schema", "schema-file", "values.schema.json refers to file:///etc/passwd"},
			{"an index over the size limit", repo.URL + "/big", "hello-web", "is larger than the limit of 1048576 bytes"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				appID := num(t, call(t, 201, "POST", "/api/apps/new", app(tc.name, tc.repoURL, tc.chart)).JSON(t)["id"])
				id := num(t, call(t, 202, "POST", "/api/deployments/install", map[string]any{"application_id": appID, "project_id": 1}).JSON(t)["deploymentID"])
				d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
				answersMu.Lock()
				answers = append(answers, fmt.Sprint(d))
				answersMu.Unlock()
				reason, _ := d["failure_reason"].(string)
				t.Logf("failure reason: %s", reason)
				if !strings.Contains(reason, tc.reason) {
					t.Errorf("failure reason %q does not say %q", reason, tc.reason)
				}
			})
		}
	})

	t.Run("allowed repository still works", func(t *testing.T) {
		id := num(t, call(t, 202, "POST", "/api/deployments/install", map[string]any{"application_id": 1, "project_id": 1}).JSON(t)["deploymentID"])
		mp.waitForStatus(t, tok, id, "installed", 2*time.Minute)
	})

	call(t, 200, "GET", "/api/deployments", nil)
	call(t, 200, "GET", "/api/apps?limit=100", nil)
	for _, a := range answers {
		if strings.Contains(a, canary.Secret) {
			t.Errorf("an answer of the API carries the canary's secret: %s", a)
		}
	}
	if n := canary.hits.Load(); n != 0 {
		t.Errorf("the canary inside the network received %d requests", n)
	}
}

// TestOCIPullSendsNoOperatorCredentials checks that a publisher's OCI registry never receives the
// registry credentials the operator keeps in ~/.docker/config.json or Helm's registry config: the
// registry below wants credentials for everything and records every Authorization header; the install
// ends failed without repeating what the registry said.
func TestOCIPullSendsNoOperatorCredentials(t *testing.T) {
	var mu sync.Mutex
	var authorizations []string
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		authorizations = append(authorizations, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="operator registry"`)
		http.Error(w, `{"errors": [{"code": "UNAUTHORIZED", "message": "registry-says-secret-things"}]}`, http.StatusUnauthorized)
	}))
	defer registry.Close()
	host := registry.Listener.Addr().String()

	home, password := testenv.OperatorCredentials(t, host)

	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1", "HOME": home,
		"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + host})
	_, tok := mp.user(t, "publisher")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "private chart", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": "oci://" + host + "/charts", "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	d := mp.waitForStatus(t, tok, 1, "failed", 2*time.Minute)
	if reason := fmt.Sprint(d["failure_reason"]); strings.Contains(reason, "registry-says-secret-things") {
		t.Errorf("failure reason %q repeats what the registry said", reason)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(authorizations) == 0 {
		t.Fatal("the registry was never asked: the test proves nothing")
	}
	for _, a := range authorizations {
		if strings.Contains(a, password) {
			t.Fatalf("the operator's registry password was sent to a publisher's registry (Authorization: %s)", a)
		}
	}
}

// TestFetchAllowMustBeValid checks that the marketplace does not start with an allow-list entry it
// cannot read, and says which entry and what it should look like.
func TestFetchAllowMustBeValid(t *testing.T) {
	environ := map[string]string{"DATABASE_URL": tenv.Database(t), "REDIS_URL": tenv.RedisURL(t),
		"MARKETPLACE_ADDR": "127.0.0.1:0", "MARKETPLACE_CACHE_DIR": t.TempDir(), "LOG_LEVEL": "warn",
		"MARKETPLACE_FETCH_ALLOW": "127.0.0.1:8879,10.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"marketplace", "serve"}, func(k string) string { return environ[k] }, testLog{t})
	if err == nil || !strings.Contains(err.Error(), `MARKETPLACE_FETCH_ALLOW entry "10.0.0.1": must be host:port`) {
		t.Fatalf("run: %v, want an error naming the bad MARKETPLACE_FETCH_ALLOW entry", err)
	}
}
