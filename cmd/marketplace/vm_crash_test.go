package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestVMWorkerCrashBetweenDefineAndBoot kills the worker process with SIGKILL once the domain is defined
// and before its guest has booted, restarts it, and checks the deployment ends installed with exactly one
// domain and exactly one usage record.
func TestVMWorkerCrashBetweenDefineAndBoot(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", vmEnv(map[string]string{"DEPLOY_LEASE": "2s"}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	var instance string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instance)
	prefix := "mp-" + instance[:12] + "-"
	domains := func() []string {
		out, _ := exec.Command("virsh", "-c", "qemu:///system", "list", "--all", "--name").Output()
		var mine []string
		for _, name := range strings.Fields(string(out)) {
			if strings.HasPrefix(name, prefix) {
				mine = append(mine, name)
			}
		}
		return mine
	}

	worker := startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-1.log"))
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	waitFor(t, time.Minute, "the worker to define the domain", func() bool { return len(domains()) == 1 })
	if err := worker.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	worker.Wait()
	if d := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t); d["status"] != "installing" {
		t.Fatalf("after the crash the deployment is %v, want installing (the kill came too late to test anything)", d["status"])
	}

	startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-2.log"))
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	if n := num(t, d["attempts"]); n != 2 {
		t.Errorf("attempts %d, want 2 (the killed one and the one that finished)", n)
	}
	if got := domains(); len(got) != 1 || got[0] != d["placement"].(map[string]any)["vm_name"] {
		t.Fatalf("domains after recovery %v, want exactly the deployment's own", got)
	}
	var records int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = 1`, nil, &records)
	if records != 1 {
		t.Fatalf("%d usage records, want exactly 1", records)
	}
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", 1), tok, nil)
	mp.waitForStatus(t, tok, 1, "uninstalled", 2*time.Minute)
	if got := domains(); len(got) != 0 {
		t.Fatalf("domains after the delete: %v", got)
	}
}
