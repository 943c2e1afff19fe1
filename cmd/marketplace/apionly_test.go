package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestAPIOnlyBuildAsksAWorker runs the API from the API-only build (-tags apionly: nothing of Helm,
// client-go or go-libvirt linked) beside a `worker` of the full build. Without a worker a dry run is a
// 503 that says so; with one, the worker renders install and upgrade previews (a chart that refuses the
// values is the 422 `serve` gives, word for word) and reads an installed deployment's health; once the
// worker is gone, health is `unknown` with the last workloads seen.
func TestAPIOnlyBuildAsksAWorker(t *testing.T) {
	apiBin := buildMarketplace(t, "-tags=apionly")
	out, err := exec.Command("go", "version", "-m", apiBin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "dep" {
			for _, heavy := range []string{"k8s.io/", "helm.sh/", "sigs.k8s.io/", "github.com/digitalocean/go-libvirt"} {
				if strings.HasPrefix(f[1], heavy) {
					t.Errorf("the API-only build links %s", f[1])
				}
			}
		}
	}
	if out, err := exec.Command(apiBin, "worker").CombinedOutput(); err == nil || !strings.Contains(string(out), "runs only the api and migrate roles") {
		t.Errorf("the API-only build ran `worker`: %v: %s", err, out)
	}
	bin := buildMarketplace(t)

	environ := map[string]string{
		"DATABASE_URL":            tenv.Database(t),
		"REDIS_URL":               tenv.RedisURL(t),
		"KUBECONFIG":              tenv.Kubecfg,
		"MARKETPLACE_ADMIN_TOKEN": "operator-" + testenv.Name(""),
		"K8S_NAMESPACE_PREFIX":    testenv.Name("t"),
		"MARKETPLACE_CACHE_DIR":   t.TempDir(),
		"RECONCILE_INTERVAL":      "500ms",
		"DEPLOY_RETRY_BACKOFF":    "500ms",
		"DEPLOY_TIMEOUT":          "90s",
		"LOG_LEVEL":               "info",
		"OCI_PLAIN_HTTP":          "true",
		"MARKETPLACE_FETCH_ALLOW": testRepositories(),
		"USER_CREATE_RATE":        "0",
		"HOME":                    os.Getenv("HOME"),
	}
	t.Cleanup(func() { cleanupNamespaces(t, environ["K8S_NAMESPACE_PREFIX"]) })
	api := startProcess(t, apiBin, "api", environ)
	app := map[string]any{"name": "web", "hourly_rate": 1.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}}
	_, tok := api.user(t, "consumer")
	api.must(t, 201, "POST", "/api/apps/new", tok, app)
	api.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	install := map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{"replicaCount": 3}}

	// No worker: the dry run says what is missing, and nothing changed.
	before := snapshot(t, api.DatabaseURL)
	refused := api.call(t, "POST", "/api/deployments/install?dry_run=true", tok, install)
	mustProblem(t, refused, 503, "no worker")
	if refused.Header.Get("Retry-After") == "" {
		t.Error("the 503 says not when to try again (Retry-After)")
	}
	if snapshot(t, api.DatabaseURL) != before {
		t.Fatal("a refused dry run changed the database")
	}

	worker := startWorker(t, bin, api.Environ, filepath.Join(t.TempDir(), "worker.log"))
	preview := api.must(t, 200, "POST", "/api/deployments/install?dry_run=true", tok, install).JSON(t)["preview"].(map[string]any)
	if kinds := previewKinds(preview["resources"]); kinds != "Deployment,Service" {
		t.Errorf("previewed resources %v, want the chart's Deployment and Service", preview["resources"])
	}
	if manifest, _ := preview["manifest"].(string); !strings.Contains(manifest, "replicas: 3") {
		t.Errorf("the previewed manifest does not carry the consumer's replicaCount: %q", manifest)
	}
	if preview["cost_30_days"].(fmt.Stringer).String() != "900" {
		t.Errorf("previewed cost %v, want 900", preview["cost_30_days"])
	}
	// The chart's values.schema.json allows at most 20 replicas: the worker's Helm refuses 50, and the
	// problem is the one `serve` gives in process.
	tooMany := map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{"replicaCount": 50}}
	viaWorker := api.call(t, "POST", "/api/deployments/install?dry_run=true", tok, tooMany)
	mustProblem(t, viaWorker, 422, "replicaCount")
	serve := startMarketplace(t, "serve", nil)
	_, serveTok := serve.user(t, "consumer")
	serve.must(t, 201, "POST", "/api/apps/new", serveTok, app)
	serve.must(t, 201, "POST", "/api/user/project/new", serveTok, map[string]any{"name": "p"})
	inProcess := serve.call(t, "POST", "/api/deployments/install?dry_run=true", serveTok, tooMany)
	if got, want := viaWorker.JSON(t)["detail"], inProcess.JSON(t)["detail"]; got != want {
		t.Errorf("through a worker the problem says %q, in process %q", got, want)
	}

	// Health, read by the worker.
	api.must(t, 202, "POST", "/api/deployments/install", tok, install)
	api.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	var health map[string]any
	waitFor(t, 30*time.Second, "health healthy with 3 ready replicas", func() bool {
		health, _ = api.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)["health"].(map[string]any)
		w, _ := health["workloads"].([]any)
		return health["status"] == "healthy" && len(w) == 1 && num(t, w[0].(map[string]any)["ready"]) == 3
	})
	if num(t, health["revision"]) != 1 {
		t.Errorf("health %v, want release revision 1", health)
	}

	// An upgrade's dry run: the worker compares with the running release.
	upgrade := api.must(t, 200, "POST", "/api/deployments/1/upgrade?dry_run=true", tok,
		map[string]any{"inputs": map[string]any{"replicaCount": 2}}).JSON(t)["preview"].(map[string]any)
	diff, _ := upgrade["diff"].(map[string]any)
	if kinds := previewKinds(diff["changed"]); kinds != "Deployment" || len(diff["added"].([]any))+len(diff["removed"].([]any)) != 0 {
		t.Errorf("upgrade preview diff %v, want only the Deployment changed", diff)
	}

	// The worker gone: health unknown, with the workloads last seen; a dry run refused again.
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	worker.Wait()
	waitFor(t, 30*time.Second, "health unknown", func() bool {
		health, _ = api.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)["health"].(map[string]any)
		return health["status"] == "unknown"
	})
	if w, _ := health["workloads"].([]any); len(w) != 1 || !strings.Contains(fmt.Sprint(health["error"]), "did not answer") {
		t.Errorf("health with no worker: %v, want unknown with the last workloads and why", health)
	}
	mustProblem(t, api.call(t, "POST", "/api/deployments/install?dry_run=true", tok, install), 503, "no worker")
}

// previewKinds lists the kinds of a preview's resources, sorted, comma-separated.
func previewKinds(resources any) string {
	var kinds []string
	list, _ := resources.([]any)
	for _, r := range list {
		kinds = append(kinds, fmt.Sprint(r.(map[string]any)["kind"]))
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ",")
}

// TestKubeconfigServer reads the API server's address as client-go does.
func TestKubeconfigServer(t *testing.T) {
	got, err := kubeconfigServer(tenv.Kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", tenv.Kubecfg)
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg.Host {
		t.Errorf("kubeconfigServer says %q, client-go %q", got, cfg.Host)
	}
}
