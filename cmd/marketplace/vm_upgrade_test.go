package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestVMUpgradeResize installs a vm application at 1 vCPU and 256Mi, publishes v2 at 2 vCPUs and 384Mi
// and upgrades to it with new inputs: the deployment is installed at v2 once the resized guest booted,
// libvirt runs it at the new size, the guest answers with the new inputs, the revisions are 2 and the
// bill is split once. Then v3 names an image that cannot boot: its upgrade fails and v2 runs again, at
// its size and rate, with its disk. Then v4 names another image: the disk is replaced.
func TestVMUpgradeResize(t *testing.T) {
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"DEPLOY_MAX_ATTEMPTS": "1", "VM_BOOT_TIMEOUT": "30s", "DEPLOY_TIMEOUT": "3m"}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1,
		"inputs": map[string]any{"greeting": "first"}})
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	vm := d["placement"].(map[string]any)["vm_name"].(string)
	if cpus, mem := dominfo(t, vm); cpus != 1 || mem != 256*1024 {
		t.Fatalf("v1 runs with %d vCPUs and %d KiB, want 1 and 256 MiB", cpus, mem)
	}

	spec := map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "2 vCPU", "memory": "384Mi"}
	inputs := []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}
	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 3, "deployment": spec, "inputs": inputs})
	greeting := testenv.Name("second-")
	start := time.Now()
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 2, "inputs": map[string]any{"greeting": greeting}})
	d = mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	t.Logf("upgrade request to installed: %s", time.Since(start).Round(10*time.Millisecond))
	if num(t, d["version"]) != 2 || d["hourly_rate"].(fmt.Stringer).String() != "3" {
		t.Fatalf("after the upgrade: version %v at %v (%v), want v2 at 3", d["version"], d["hourly_rate"], d["failure_reason"])
	}
	if cpus, mem := dominfo(t, vm); cpus != 2 || mem != 384*1024 {
		t.Fatalf("v2 runs with %d vCPUs and %d KiB, want 2 and 384 MiB", cpus, mem)
	}
	ip := d["placement"].(map[string]any)["ip_address"].(string)
	guestAnswers(t, ip, greeting)
	if revs := mp.must(t, 200, "GET", "/api/deployments/1/revisions", tok, nil).List(t); len(revs) != 2 ||
		num(t, revs[0]["revision"]) != 1 || num(t, revs[1]["revision"]) != 2 || num(t, revs[1]["version"]) != 2 {
		t.Fatalf("revisions %v, want 1 (v1) and 2 (v2)", revs)
	}
	checkBill(t, mp, []string{"2", "3"})
	pool := func() []string {
		vols, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", vm+"*"))
		return vols
	}
	if vols := pool(); len(vols) != 2 {
		t.Fatalf("volumes %v, want the overlay and one seed", vols)
	}

	// v3's image is a blank disk: no boot, no guest agent. The upgrade fails and v2 runs again.
	broken := testenv.Name("blank-") + ".img"
	blank := filepath.Join(tenv.VMDir, "images", broken)
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(blank) })
	spec = map[string]any{"type": "vm", "image": broken, "cpu": "1 vCPU", "memory": "256Mi"}
	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 5, "deployment": spec, "inputs": inputs})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 3})
	waitFor(t, 4*time.Minute, "the failed upgrade to be recorded", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && d["failure_reason"] != nil && d["failure_reason"] != ""
	})
	t.Logf("failed upgrade: %v", d["failure_reason"])
	if num(t, d["version"]) != 2 || d["hourly_rate"].(fmt.Stringer).String() != "3" {
		t.Fatalf("after the failed upgrade: version %v at %v, want v2 at 3", d["version"], d["hourly_rate"])
	}
	if cpus, mem := dominfo(t, vm); cpus != 2 || mem != 384*1024 {
		t.Fatalf("after the failed upgrade the domain has %d vCPUs and %d KiB, want v2's 2 and 384 MiB", cpus, mem)
	}
	guestAnswers(t, d["placement"].(map[string]any)["ip_address"].(string), greeting)
	if vols := pool(); len(vols) != 2 {
		t.Fatalf("volumes %v after the failed upgrade, want v2's overlay and seed only", vols)
	}
	checkBill(t, mp, []string{"2", "3"})

	// v4 is a new image (a copy of the test guest under another name): the disk is replaced by a fresh
	// overlay of it, under the other volume name, and the old overlay goes once the new one booted.
	copied := testenv.Name("copy-") + ".qcow2"
	if out, err := exec.Command("cp", filepath.Join(tenv.VMDir, "images", "test-guest.qcow2"), filepath.Join(tenv.VMDir, "images", copied)).CombinedOutput(); err != nil {
		t.Fatalf("copy the test image: %v: %s", err, out)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(tenv.VMDir, "images", copied)) })
	spec = map[string]any{"type": "vm", "image": copied, "cpu": "1 vCPU", "memory": "256Mi"}
	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 4, "deployment": spec, "inputs": inputs})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 4, "inputs": map[string]any{"greeting": greeting}})
	waitFor(t, 3*time.Minute, "the upgrade to v4", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && num(t, d["version"]) == 4
	})
	if cpus, mem := dominfo(t, vm); cpus != 1 || mem != 256*1024 {
		t.Fatalf("v4 runs with %d vCPUs and %d KiB, want 1 and 256 MiB", cpus, mem)
	}
	guestAnswers(t, d["placement"].(map[string]any)["ip_address"].(string), greeting)
	vols := pool()
	if len(vols) != 2 || !slices.Contains(vols, filepath.Join(tenv.VMDir, "pool", vm+"-b.qcow2")) {
		t.Fatalf("volumes %v after the new image, want the other overlay and one seed", vols)
	}
	if out, err := exec.Command("qemu-img", "info", "-U", vols[slices.Index(vols, filepath.Join(tenv.VMDir, "pool", vm+"-b.qcow2"))]).CombinedOutput(); err != nil || !strings.Contains(string(out), copied) {
		t.Fatalf("the new overlay's backing file is not %s: %v: %s", copied, err, out)
	}
	if revs := mp.must(t, 200, "GET", "/api/deployments/1/revisions", tok, nil).List(t); len(revs) != 3 || num(t, revs[2]["revision"]) != 3 {
		t.Fatalf("revisions %v, want 3", revs)
	}
	checkBill(t, mp, []string{"2", "3", "4"})

	// The delete removes the volumes under either name.
	mp.must(t, 202, "DELETE", "/api/deployments/1", tok, nil)
	mp.waitForStatus(t, tok, 1, "uninstalled", 2*time.Minute)
	if vols := pool(); len(vols) != 0 || domainExists(t, vm) {
		t.Fatalf("after the delete: volumes %v, domain defined %v", vols, domainExists(t, vm))
	}
}

// dominfo asks libvirt for a domain's vCPUs and memory (KiB).
func dominfo(t *testing.T, name string) (cpus, kib int) {
	t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "dominfo", name).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh dominfo %s: %v: %s", name, err, out)
	}
	if m := regexp.MustCompile(`(?m)^CPU\(s\):\s+(\d+)`).FindSubmatch(out); m != nil {
		fmt.Sscan(string(m[1]), &cpus)
	}
	if m := regexp.MustCompile(`(?m)^Max memory:\s+(\d+) KiB`).FindSubmatch(out); m != nil {
		fmt.Sscan(string(m[1]), &kib)
	}
	return cpus, kib
}

// guestAnswers waits until the guest at ip serves inputs.json with the greeting.
func guestAnswers(t *testing.T, ip, greeting string) {
	t.Helper()
	var page string
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if page, err = guestHTTP(t, ip, "inputs.json"); err == nil && strings.Contains(page, greeting) {
			return
		}
	}
	t.Fatalf("the guest on %s does not answer with greeting %q: %v: %s", ip, greeting, err, page)
}

// checkBill checks deployment 1's usage records: one per completed revision at its rate, back to back,
// the last open.
func checkBill(t *testing.T, mp *instance, rates []string) {
	t.Helper()
	var n, open, contiguous int
	var got string
	query(t, mp.DatabaseURL, `SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL),
  string_agg(hourly_rate::text, ',' ORDER BY started_at),
  count(*) FILTER (WHERE ended_at IS NULL OR EXISTS (SELECT 1 FROM usage_records n WHERE n.deployment_id = 1 AND n.started_at = r.ended_at))
FROM usage_records r WHERE deployment_id = 1`, nil, &n, &open, &got, &contiguous)
	if n != len(rates) || open != 1 || contiguous != n {
		t.Errorf("%d usage records (%d open, %d back to back) at %s, want %d at %v", n, open, contiguous, got, len(rates), rates)
	}
	for _, r := range rates {
		if !strings.Contains(got, r) {
			t.Errorf("usage records at %s, want one at %s", got, r)
		}
	}
}

// TestVMUpgradeCrash kills the worker with SIGKILL while the upgraded guest boots (from a blank image
// that never will): the domain is left defined as the half-done revision. The next worker's attempt
// starts again from the previous definition kept in the domain's metadata, fails to boot the new image
// too and restores v1: its definition and its own overlay, the guest answering again, the new volumes
// gone.
func TestVMUpgradeCrash(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", vmEnv(map[string]string{"DEPLOY_LEASE": "2s", "DEPLOY_MAX_ATTEMPTS": "2", "VM_BOOT_TIMEOUT": "20s"}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	worker := startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-1.log"))
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1,
		"inputs": map[string]any{"greeting": "first"}})
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	vm := d["placement"].(map[string]any)["vm_name"].(string)
	ip := d["placement"].(map[string]any)["ip_address"].(string)

	broken := testenv.Name("blank-") + ".img"
	blank := filepath.Join(tenv.VMDir, "images", broken)
	if err := os.WriteFile(blank, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(blank) })
	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 5,
		"deployment": map[string]any{"type": "vm", "image": broken, "cpu": "2 vCPU", "memory": "384Mi"},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 2})
	waitFor(t, time.Minute, "the half-done revision to be defined", func() bool {
		out, _ := exec.Command("virsh", "-c", "qemu:///system", "dumpxml", "--inactive", vm).Output()
		return strings.Contains(string(out), vm+"-b.qcow2") && strings.Contains(string(out), "previous")
	})
	worker.Process.Signal(syscall.SIGKILL)
	worker.Wait()

	startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-2.log"))
	waitFor(t, 3*time.Minute, "the failed upgrade to be recorded", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && d["failure_reason"] != nil && d["failure_reason"] != ""
	})
	t.Logf("failed upgrade: %v", d["failure_reason"])
	if num(t, d["version"]) != 1 {
		t.Fatalf("after the failed upgrade: version %v, want 1", d["version"])
	}
	if cpus, mem := dominfo(t, vm); cpus != 1 || mem != 256*1024 {
		t.Fatalf("after the failed upgrade the domain has %d vCPUs and %d KiB, want v1's 1 and 256 MiB", cpus, mem)
	}
	guestAnswers(t, ip, "first")
	vols, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", vm+"*"))
	if len(vols) != 2 || !slices.Contains(vols, filepath.Join(tenv.VMDir, "pool", vm+".qcow2")) {
		t.Fatalf("volumes %v, want v1's overlay and seed only", vols)
	}
	checkBill(t, mp, []string{"2"})
}
