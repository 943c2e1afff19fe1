package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestTwoAPIsTwoWorkersInstallEachOnce runs the marketplace past one process: two `api` and two `worker`
// processes on one PostgreSQL and one Redis. 200 installs, requested 20 at a time and spread over both
// APIs by 10 consumers, all end installed, each exactly once: one Helm release record, one usage
// record and one `installed` event each, with both workers having done part of the work. Then all are
// deleted, again through both APIs, and nothing of them is left running or billing.
//
// The chart runs no pods (replicaCount 0): the local cluster's one fake node takes 110 pods, and what is
// tested here is the marketplace's bookkeeping under concurrency, not the scheduler.
func TestTwoAPIsTwoWorkersInstallEachOnce(t *testing.T) {
	const consumers, perConsumer = 10, 20
	const total = consumers * perConsumer
	bin := buildMarketplace(t)
	ctx := context.Background()
	environ := map[string]string{
		"DATABASE_URL":            tenv.Database(t),
		"REDIS_URL":               tenv.RedisURL(t),
		"KUBECONFIG":              tenv.Kubecfg,
		"MARKETPLACE_ADMIN_TOKEN": "operator-" + testenv.Name(""),
		"K8S_NAMESPACE_PREFIX":    testenv.Name("t"),
		"MARKETPLACE_CACHE_DIR":   t.TempDir(),
		"RECONCILE_INTERVAL":      "1s",
		"DEPLOY_RETRY_BACKOFF":    "500ms",
		"DEPLOY_TIMEOUT":          "2m",
		"LOG_LEVEL":               "info",
		"MARKETPLACE_FETCH_ALLOW": testRepositories(),
		"USER_CREATE_RATE":        "0",
		"HOME":                    os.Getenv("HOME"),
	}
	t.Cleanup(func() { cleanupNamespaces(t, environ["K8S_NAMESPACE_PREFIX"]) })
	apis := []*instance{startProcess(t, bin, "api", environ), startProcess(t, bin, "api", environ)}
	workers := []*instance{startProcess(t, bin, "worker", environ), startProcess(t, bin, "worker", environ)}

	// The publisher, on the first API; ten consumers with a project each, alternating APIs.
	_, pubTok := apis[0].user(t, "publisher")
	apis[0].must(t, 201, "POST", "/api/apps/new", pubTok, map[string]any{"name": "hello, no pods", "hourly_rate": 0.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 0}}})
	type consumer struct {
		id        int64
		token     string
		projectID int64
	}
	cs := make([]consumer, consumers)
	for i := range cs {
		api := apis[i%2]
		cs[i].id, cs[i].token = api.user(t, fmt.Sprintf("consumer %d", i))
		p := api.must(t, 201, "POST", "/api/user/project/new", cs[i].token, map[string]any{"name": "p"}).JSON(t)
		cs[i].projectID = num(t, p["id"])
	}

	// 200 installs, 20 requests in flight at a time, request k through API k%2.
	ids := make([]int64, total)
	each(t, total, 20, func(k int) error {
		c := cs[k%consumers]
		var r struct {
			DeploymentID int64 `json:"deploymentID"`
		}
		err := apis[k%2].send("POST", "/api/deployments/install", c.token, 202,
			map[string]any{"application_id": 1, "project_id": c.projectID}, &r)
		ids[k] = r.DeploymentID
		return err
	})
	waitForCount(t, environ["DATABASE_URL"], "installed", total, 3*time.Minute)

	// What a consumer sees: each of its 20 deployments installed, through either API.
	for i, c := range cs {
		r := apis[(i+1)%2].must(t, 200, "GET", fmt.Sprintf("/api/users/%d/deployments?status=installed&limit=100", c.id), c.token, nil)
		if got := r.Header.Get("X-Total-Count"); got != strconv.Itoa(perConsumer) {
			t.Errorf("consumer %d sees %s installed deployments, want %d", c.id, got, perConsumer)
		}
	}
	// Exactly once: one release record, one usage record, one installed event per deployment.
	releases := helmReleasesByNamespace(t, environ["K8S_NAMESPACE_PREFIX"])
	for _, id := range ids {
		ns := fmt.Sprintf("%s-deployment-%d", environ["K8S_NAMESPACE_PREFIX"], id)
		if got := releases[ns]; len(got) != 1 || got[0] != "deployed" {
			t.Errorf("deployment %d: Helm release records %v, want exactly one deployed", id, got)
		}
	}
	if len(releases) != total {
		t.Errorf("%d namespaces hold Helm releases, want %d", len(releases), total)
	}
	var deployments, records, openRecords, installedEvents, worst int
	query(t, environ["DATABASE_URL"], `SELECT (SELECT count(*) FROM deployments),
  (SELECT count(*) FROM usage_records), (SELECT count(DISTINCT deployment_id) FROM usage_records WHERE ended_at IS NULL),
  (SELECT count(*) FROM audit_events WHERE action = 'deployment.installed'),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM audit_events WHERE action = 'deployment.installed' GROUP BY resource) e)`,
		nil, &deployments, &records, &openRecords, &installedEvents, &worst)
	if deployments != total || records != total || openRecords != total || installedEvents != total || worst != 1 {
		t.Errorf("%d deployments, %d usage records (%d open, of distinct deployments), %d installed events (at most %d for one); want %d of each and 1",
			deployments, records, openRecords, installedEvents, worst, total)
	}
	// Both workers did part of it.
	for i, w := range workers {
		if n := countLogLines(t, w.Environ["LOG_PATH"], "done", "install"); n == 0 {
			t.Errorf("worker %d finished no install: the work was not spread", i+1)
		}
	}

	// Delete them all, through both APIs: billing stops at once, and the releases go.
	each(t, total, 20, func(k int) error {
		return apis[(k+1)%2].send("DELETE", fmt.Sprintf("/api/deployments/%d", ids[k]), cs[k%consumers].token, 202, nil, nil)
	})
	query(t, environ["DATABASE_URL"], `SELECT count(*) FROM usage_records WHERE ended_at IS NULL`, nil, &openRecords)
	if openRecords != 0 {
		t.Errorf("%d usage records still open after every deployment was deleted", openRecords)
	}
	waitForCount(t, environ["DATABASE_URL"], "uninstalled", total, 3*time.Minute)
	if left := helmReleasesByNamespace(t, environ["K8S_NAMESPACE_PREFIX"]); len(left) != 0 {
		t.Errorf("Helm release records left after every uninstall: %v", left)
	}
	nss, err := kube(t).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss.Items {
		if strings.HasPrefix(n.Name, environ["K8S_NAMESPACE_PREFIX"]+"-deployment-") && n.DeletionTimestamp == nil {
			t.Errorf("namespace %s is not being deleted after its deployment's uninstall", n.Name)
		}
	}
}

// startProcess runs `marketplace <role>` as a process of its own with environ and an address of its
// own, waits until it answers /healthz, and kills it when the test ends. Its log is kept in the test's
// temp dir (inst.Environ["LOG_PATH"]) and shown when the test fails.
func startProcess(t *testing.T, bin, role string, environ map[string]string) *instance {
	t.Helper()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range environ {
		env[k] = v
	}
	env["MARKETPLACE_ADDR"] = "127.0.0.1:" + strconv.Itoa(port)
	env["LOG_PATH"] = filepath.Join(t.TempDir(), role+".log")
	logFile, err := os.Create(env["LOG_PATH"])
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(env["LOG_PATH"])
			t.Logf("%s %s log:\n%s", role, env["MARKETPLACE_ADDR"], tail(b, 100))
		}
	})
	inst := &instance{URL: "http://" + env["MARKETPLACE_ADDR"], DatabaseURL: env["DATABASE_URL"], Environ: env}
	waitFor(t, time.Minute, role+" to answer /healthz", func() bool {
		resp, err := http.Get(inst.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return inst
}

// each runs f(0..n-1), c at a time, and fails the test with the first error.
func each(t *testing.T, n, c int, f func(int) error) {
	t.Helper()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, n)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := int(next.Add(1)) - 1; k < n; k = int(next.Add(1)) - 1 {
				if err := f(k); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// send is a request from a goroutine other than the test's: it returns what went wrong instead of
// failing the test. The answer, when out is not nil, is decoded into it.
func (inst *instance) send(method, path, token string, want int, body, out any) error {
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, inst.URL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// waitForCount waits until n deployments have status, failing at once if one has failed.
func waitForCount(t *testing.T, databaseURL, status string, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d deployments to be %s", n, status), func() bool {
		var have, failed int
		query(t, databaseURL, `SELECT count(*) FILTER (WHERE status = $1), count(*) FILTER (WHERE status = 'failed') FROM deployments`,
			[]any{status}, &have, &failed)
		if failed > 0 {
			var reason string
			query(t, databaseURL, `SELECT failure_reason FROM deployments WHERE status = 'failed' LIMIT 1`, nil, &reason)
			t.Fatalf("%d deployments failed, one with: %s", failed, reason)
		}
		return have == n
	})
}

// helmReleasesByNamespace lists, in one request, the statuses of the Helm release records (owner=helm
// secrets) in the namespaces of prefix, by namespace.
func helmReleasesByNamespace(t *testing.T, prefix string) map[string][]string {
	t.Helper()
	secrets, err := kube(t).CoreV1().Secrets("").List(context.Background(), metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range secrets.Items {
		if strings.HasPrefix(s.Namespace, prefix+"-") {
			out[s.Namespace] = append(out[s.Namespace], s.Labels["status"])
		}
	}
	return out
}

// countLogLines counts the JSON log lines at path with message msg and op.
func countLogLines(t *testing.T, path, msg, op string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct{ Msg, Op string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == msg && l.Op == op {
			n++
		}
	}
	return n
}

// tail is the last n lines of b.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
