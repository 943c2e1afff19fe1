package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/testenv"
)

var tenv *testenv.Env

func TestMain(m *testing.M) {
	// A worker in process renders charts by running its own executable, this test binary, as the render
	// child: answer as main does.
	if code, ok := renderChild(os.Args); ok {
		os.Exit(code)
	}
	os.Exit(testenv.Main(m, &tenv, testenv.Options{Cluster: true, Registry: true, VMHost: true}))
}

// instance is one marketplace started in process by run(), with the database and Redis of its test.
type instance struct {
	URL         string
	DatabaseURL string
	Environ     map[string]string
	stop        func() // stops it and waits until it has (once; also when the test ends)
}

// startMarketplace runs `marketplace <role>` in process with the test's own database, Redis database
// and namespace prefix; extra overrides the environment. It stops when the test ends.
func startMarketplace(t *testing.T, role string, extra map[string]string) *instance {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	environ := map[string]string{
		"DATABASE_URL":            tenv.Database(t),
		"REDIS_URL":               tenv.RedisURL(t),
		"MARKETPLACE_ADDR":        "127.0.0.1:" + strconv.Itoa(port),
		"KUBECONFIG":              tenv.Kubecfg,
		"MARKETPLACE_ADMIN_TOKEN": "operator-" + testenv.Name(""),
		"K8S_NAMESPACE_PREFIX":    testenv.Name("t"),
		"MARKETPLACE_CACHE_DIR":   t.TempDir(),
		"RECONCILE_INTERVAL":      "500ms",
		"DEPLOY_RETRY_BACKOFF":    "500ms",
		"DEPLOY_TIMEOUT":          "90s",
		"BILLING_INTERVAL":        "1s",
		"LOG_LEVEL":               "warn",
		"OCI_PLAIN_HTTP":          "true",
		"MARKETPLACE_FETCH_ALLOW": testRepositories(),
		// Tests create users quickly from one address; TestUserCreationRateLimit sets its own rate.
		"USER_CREATE_RATE":  "100000",
		"USER_CREATE_BURST": "10000",
		"HOME":              os.Getenv("HOME"),
	}
	for k, v := range extra {
		environ[k] = v
	}
	inst := &instance{URL: "http://" + environ["MARKETPLACE_ADDR"], DatabaseURL: environ["DATABASE_URL"], Environ: environ}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := run(ctx, []string{"marketplace", role}, func(k string) string { return environ[k] }, testLog{t}); err != nil {
			t.Errorf("run %s: %v", role, err)
		}
	}()
	inst.stop = sync.OnceFunc(func() {
		cancel()
		wg.Wait()
		cleanupNamespaces(t, environ["K8S_NAMESPACE_PREFIX"])
	})
	t.Cleanup(inst.stop)
	if role == "serve" || role == "api" {
		waitFor(t, 30*time.Second, "the API to answer /healthz", func() bool {
			resp, err := http.Get(inst.URL + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		})
	}
	return inst
}

// sameMarketplace is the environment another process of inst's marketplace (its worker, another API
// replica) starts with: the same database, Redis and namespace prefix.
func sameMarketplace(inst *instance) map[string]string {
	same := map[string]string{}
	for _, k := range []string{"DATABASE_URL", "REDIS_URL", "K8S_NAMESPACE_PREFIX", "MARKETPLACE_ADMIN_TOKEN"} {
		same[k] = inst.Environ[k]
	}
	return same
}

// testRepositories is MARKETPLACE_FETCH_ALLOW for the test chart repository and OCI registry, both on
// loopback, which the marketplace refuses to fetch from unless allowed.
func testRepositories() string {
	var hosts []string
	for _, repo := range []string{tenv.ChartRepo, tenv.OCIRepo} {
		if u, err := url.Parse(repo); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		}
	}
	return strings.Join(hosts, ",")
}

// testLog sends the marketplace's log to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// response is an HTTP answer.
type response struct {
	Status      int
	ContentType string
	Header      http.Header
	Body        []byte
}

// JSON decodes the body into a map (numbers as json.Number, so amounts stay exact).
func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return m
}

// List decodes a JSON array body.
func (r response) List(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return l
}

// call sends a request with an optional JSON body (a string is sent as is) and bearer token.
func (inst *instance) call(t *testing.T, method, path, token string, body any) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, inst.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: b}
}

// must sends a request and fails the test unless the answer has status want.
func (inst *instance) must(t *testing.T, want int, method, path, token string, body any) response {
	t.Helper()
	r := inst.call(t, method, path, token, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// user creates a user and returns its id and token.
func (inst *instance) user(t *testing.T, name string) (int64, string) {
	t.Helper()
	u := inst.must(t, 201, "POST", "/api/users/new", "", map[string]any{"name": name}).JSON(t)
	return num(t, u["id"]), u["token"].(string)
}

func num(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// waitForStatus polls a deployment until it has status want.
func (inst *instance) waitForStatus(t *testing.T, token string, id int64, want string, timeout time.Duration) map[string]any {
	t.Helper()
	var d map[string]any
	waitFor(t, timeout, fmt.Sprintf("deployment %d to be %s", id, want), func() bool {
		d = inst.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), token, nil).JSON(t)
		if d["status"] == "failed" && want != "failed" {
			t.Fatalf("deployment %d failed: %v", id, d["failure_reason"])
		}
		return d["status"] == want
	})
	return d
}

func waitFor(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kube returns a clientset of the local cluster.
func kube(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", tenv.Kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// kubeAs returns a clientset of the local cluster that impersonates user.
func kubeAs(t *testing.T, user string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", tenv.Kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Impersonate.UserName = user
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// cleanupNamespaces deletes the namespaces a test's marketplace created.
func cleanupNamespaces(t *testing.T, prefix string) {
	cs := kube(t)
	ctx := context.Background()
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, ns := range nss.Items {
		if strings.HasPrefix(ns.Name, prefix+"-") {
			cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		}
	}
}

// helmReleases lists the Helm release records (one Secret per revision) of a namespace.
func helmReleases(t *testing.T, ns, name string) []corev1.Secret {
	t.Helper()
	secrets, err := kube(t).CoreV1().Secrets(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: "owner=helm,name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return secrets.Items
}

// query runs one SQL query returning one row on a test database.
func query(t *testing.T, databaseURL, sql string, args []any, dest ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// snapshot is a digest of every row of every table: equal snapshots mean nothing changed.
func snapshot(t *testing.T, databaseURL string) string {
	t.Helper()
	var digest string
	query(t, databaseURL, `SELECT concat_ws('|',
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM users t),
  -- what a chart says about itself (categories, icon, app version, and the listing that shows them) is
  -- read after publish, whenever the package read ends: not what a request changed
  (SELECT md5(coalesce(string_agg((to_jsonb(t) - '{categories,icon_url,app_version,listing}'::text[])::text, ',' ORDER BY id), '')) FROM applications t),
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY publisher_id, deployment_type, shift, span), '')) FROM catalog_counts t),
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM projects t),
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM organizations t),
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY organization_id, user_id), '')) FROM organization_members t),
  (SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM deployments t),
  -- the billing job meters open records every second (amount, metered_at); what a record is does not change
  (SELECT md5(coalesce(string_agg(concat_ws(':', id, deployment_id, user_id, application_id, hourly_rate, started_at, ended_at,
    CASE WHEN ended_at IS NOT NULL THEN amount END, invoiced_seconds, invoiced_amount, opened_event_id, closed_event_id), ',' ORDER BY id), '')) FROM usage_records t),
  -- a token's last use changes on reads; what a token is and whom it belongs to does not
  (SELECT md5(coalesce(string_agg(concat_ws(':', id, user_id, encode(hash, 'hex'), created_at), ',' ORDER BY id), '')) FROM tokens))`, nil, &digest)
	return digest
}
