package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestVMTwoWorkersOneProject: two worker processes install four guests of one project at once. Each
// worker chooses addresses knowing nothing of the other's; the project network's DHCP host entries are
// the record (libvirt refuses an address twice), so every guest ends installed with an address of its own,
// the one its entry gives its MAC, and the deletes remove every domain and entry. The API replica, which
// holds no VM host, shows a guest's console, live state and health as a worker reads them.
func TestVMTwoWorkersOneProject(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", vmEnv(nil))
	tok := publishVM(t, mp, "test-guest.qcow2")
	environ := maps.Clone(mp.Environ)
	environ["LOG_LEVEL"] = "info"
	environ["WORKER_CONCURRENCY"] = "2"
	logs := []string{filepath.Join(t.TempDir(), "worker-1.log"), filepath.Join(t.TempDir(), "worker-2.log")}
	for _, path := range logs {
		startWorker(t, bin, environ, path)
	}

	ids := make([]int64, 4)
	each(t, len(ids), len(ids), func(i int) error {
		var out struct{ DeploymentID int64 }
		err := mp.send("POST", "/api/deployments/install", tok, 202, map[string]any{"application_id": 1, "project_id": 1}, &out)
		ids[i] = out.DeploymentID
		return err
	})
	ips, vms := map[string]int64{}, map[int64]string{}
	for _, id := range ids {
		p := mp.waitForStatus(t, tok, id, "installed", 5*time.Minute)["placement"].(map[string]any)
		ip := p["ip_address"].(string)
		if other, ok := ips[ip]; ok {
			t.Fatalf("deployments %d and %d both have the address %s", other, id, ip)
		}
		ips[ip], vms[id] = id, p["vm_name"].(string)
	}
	for i, path := range logs {
		if n := countLogLines(t, path, "done", "install"); n == 0 {
			t.Fatalf("worker %d installed nothing: the test did not exercise two workers", i+1)
		}
	}
	// The API replica holds no VM host: a worker reads the guest's console, live state and health for it.
	console := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/console", ids[0]), tok, nil).JSON(t)
	if text, _ := console["console"].(string); !strings.Contains(text, "MARKETPLACE-SEED instance-id: "+vms[ids[0]]) ||
		console["live_state"] != "running" || console["status"] != "installed" {
		t.Errorf("the console through a worker: %v / %v, %q; want running / installed and the guest's boot", console["live_state"], console["status"], text)
	}
	if health, _ := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", ids[0]), tok, nil).JSON(t)["health"].(map[string]any); health["state"] != "running" {
		t.Errorf("the health through a worker: %v; want the domain running", health)
	}

	var instance string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instance)
	network := "mp-" + instance[:12] + "-p1"
	hosts := dhcpHosts(t, network)
	if len(hosts) != len(ids) {
		t.Fatalf("network %s has DHCP host entries %v: want one per guest (%d)", network, hosts, len(ids))
	}
	for id, vm := range vms {
		mac := guestMAC(t, vm)
		ip, ok := hosts[mac]
		if !ok || ips[ip] != id {
			t.Fatalf("deployment %d (%s, MAC %s) has address %v by its entry; the guests' addresses are %v", id, vm, mac, ip, ips)
		}
	}

	for _, id := range ids {
		mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), tok, nil)
	}
	for _, id := range ids {
		mp.waitForStatus(t, tok, id, "uninstalled", 3*time.Minute)
		if domainExists(t, vms[id]) {
			t.Fatalf("domain %s is still defined after the delete", vms[id])
		}
	}
	if hosts := dhcpHosts(t, network); len(hosts) != 0 {
		t.Fatalf("network %s keeps DHCP host entries %v after every guest was deleted", network, hosts)
	}
}

// TestWorkersStartTogetherOnANewVMHost: four workers started at the same moment on a VM host that has
// none of their storage pools yet (a fresh VM_DIR) all come up. Each defines and starts the pools it
// finds missing; before, every worker that lost the race exited ("pool already exists", "already
// active"), as seen when bench/install.sh started its four workers at once.
func TestWorkersStartTogetherOnANewVMHost(t *testing.T) {
	bin := buildMarketplace(t)
	dir := t.TempDir()
	virsh := func(args ...string) string {
		out, _ := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).Output()
		return string(out)
	}
	t.Cleanup(func() {
		for _, pool := range strings.Fields(virsh("pool-list", "--all", "--name")) {
			if strings.Contains(virsh("pool-dumpxml", pool), "<path>"+dir) {
				virsh("pool-destroy", pool)
				virsh("pool-undefine", pool)
			}
		}
	})
	// The api role never opens the VM host; it gives the workers their database and Redis.
	mp := startMarketplace(t, "api", vmEnv(nil))
	environ := maps.Clone(mp.Environ)
	environ["VM_DIR"], environ["LOG_LEVEL"] = dir, "info"
	logs := make([]string, 4)
	for i := range logs {
		logs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("worker-%d.log", i+1))
	}
	var wg sync.WaitGroup
	for i := range logs {
		wg.Go(func() { startWorker(t, bin, environ, logs[i]) })
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for i, path := range logs {
		for countLogLines(t, path, "listening", "") == 0 {
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(path)
				t.Fatalf("worker %d did not come up on a new VM host beside three others:\n%s", i+1, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if pools := strings.Count(virsh("pool-list", "--name"), "\n"); pools == 0 {
		t.Fatal("virsh lists no active pool")
	}
}
