package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestWorkerCrashMidInstall kills the worker process with SIGKILL while Helm waits for the release's pods,
// restarts it, and checks the deployment ends installed with exactly one Helm release and exactly one
// usage record.
func TestWorkerCrashMidInstall(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", map[string]string{"DEPLOY_LEASE": "2s"})
	ctx := context.Background()
	cs := kube(t)

	// The pods select a node label nobody has yet, so the install stays in Helm's wait until we say so.
	label := testenv.Name("v")
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 3,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "nodeSelector.crash-test", "default": label}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})

	worker := startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-1.log"))
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})

	ns, release := mp.Environ["K8S_NAMESPACE_PREFIX"]+"-deployment-1", "deployment-1"
	waitFor(t, 2*time.Minute, "Helm to record the release as pending-install", func() bool {
		rels := helmReleases(t, ns, release)
		return len(rels) == 1 && rels[0].Labels["status"] == "pending-install"
	})
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	worker.Wait()
	if d := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t); d["status"] != "installing" {
		t.Fatalf("after the crash the deployment is %v, want installing", d["status"])
	}

	// Let the pods schedule, and start a fresh worker.
	node := "kwok-node-0"
	patch := func(value string) {
		body := fmt.Sprintf(`{"metadata":{"labels":{"crash-test":%s}}}`, value)
		if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
			t.Fatalf("label node: %v", err)
		}
	}
	patch(`"` + label + `"`)
	t.Cleanup(func() { patch("null") })
	worker = startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-2.log"))

	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	if n := num(t, d["attempts"]); n != 2 {
		t.Errorf("attempts %d, want 2 (the killed one and the one that finished)", n)
	}
	rels := helmReleases(t, ns, release)
	if len(rels) != 1 || rels[0].Labels["status"] != "deployed" {
		t.Fatalf("helm release records after recovery: %d, want exactly 1 deployed", len(rels))
	}
	var records int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = 1`, nil, &records)
	if records != 1 {
		t.Fatalf("%d usage records, want exactly 1", records)
	}
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, release+"-hello-web", metav1.GetOptions{})
	if err != nil || dep.Status.ReadyReplicas != 1 {
		t.Fatalf("release's Deployment: %v, ready %d", err, dep.Status.ReadyReplicas)
	}

	// A graceful stop: SIGTERM, and the worker exits cleanly.
	worker.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- worker.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("worker exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker did not stop within 30s of SIGTERM")
	}
}

// startWorker runs `marketplace worker` as a process of its own with environ; it is killed when the test
// ends if still running. Its log goes to a file in the test's temp dir, shown when the test fails.
func startWorker(t *testing.T, bin string, environ map[string]string, logPath string) *exec.Cmd {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "worker")
	for k, v := range environ {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// Its own address for /metrics and /healthz: the API of this test listens on MARKETPLACE_ADDR.
	cmd.Env = append(cmd.Env, fmt.Sprintf("MARKETPLACE_ADDR=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s:\n%s", filepath.Base(logPath), b)
		}
	})
	return cmd
}
