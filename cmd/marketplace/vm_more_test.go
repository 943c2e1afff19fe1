package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestVMFiveAtOnce installs five VMs at once: each reaches installed with an address of its own, and the
// deletes remove all five domains.
func TestVMFiveAtOnce(t *testing.T) {
	mp := startMarketplace(t, "serve", vmEnv(nil))
	tok := publishVM(t, mp, "test-guest.qcow2")
	start := time.Now()
	ids := make([]int64, 5)
	for i := range ids {
		ids[i] = num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": 1, "project_id": 1}).JSON(t)["deploymentID"])
	}
	ips, vms := map[string]bool{}, []string{}
	for _, id := range ids {
		p := mp.waitForStatus(t, tok, id, "installed", 4*time.Minute)["placement"].(map[string]any)
		ips[p["ip_address"].(string)] = true
		vms = append(vms, p["vm_name"].(string))
	}
	t.Logf("five installs to installed: %s", time.Since(start).Round(10*time.Millisecond))
	if len(ips) != 5 {
		t.Fatalf("five guests have addresses %v: want five different ones", ips)
	}
	for _, id := range ids {
		mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), tok, nil)
	}
	for i, id := range ids {
		mp.waitForStatus(t, tok, id, "uninstalled", 2*time.Minute)
		if domainExists(t, vms[i]) {
			t.Fatalf("domain %s is still defined after the delete", vms[i])
		}
	}
}

// TestVMUnbootableImageFails installs an image without a boot loader: the deployment ends failed with
// the reason, and neither its domain, its volumes nor its DHCP host entry (its address) are left behind.
func TestVMUnbootableImageFails(t *testing.T) {
	image := testenv.Name("unbootable-") + ".qcow2"
	path := filepath.Join(tenv.VMDir, "images", image)
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", path, "16M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	t.Cleanup(func() { os.Remove(path) })
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"VM_BOOT_TIMEOUT": "15s", "DEPLOY_MAX_ATTEMPTS": "1"}))
	tok := publishVM(t, mp, image)
	id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
		map[string]any{"application_id": 1, "project_id": 1}).JSON(t)["deploymentID"])
	d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
	reason, _ := d["failure_reason"].(string)
	if !strings.Contains(reason, "did not boot") || !strings.Contains(reason, "removed") {
		t.Fatalf("failure reason %q: want that the guest did not boot and that its resources were removed", reason)
	}
	var instance string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instance)
	matches, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", fmt.Sprintf("mp-%s-d%d*", instance[:12], id)))
	live := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/console", id), tok, nil).JSON(t)["live_state"]
	if len(matches) != 0 || live != "absent" {
		t.Fatalf("left behind: volumes %v, domain %v", matches, live)
	}
	if hosts := dhcpHosts(t, fmt.Sprintf("mp-%s-p1", instance[:12])); len(hosts) != 0 {
		t.Fatalf("left behind: the guest's DHCP host entry %v", hosts)
	}
}

// TestVMBadInput: sizing and image errors at publish, a private image URL, and a bad key at install
// answer 4xx and change nothing.
func TestVMBadInput(t *testing.T) {
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"VM_MAX_VCPUS": "4", "VM_MAX_MEMORY": "2Gi"}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	before := snapshot(t, mp.DatabaseURL)
	for _, tc := range []struct{ name, image, cpu, memory, want string }{
		{"cpu lots", "test-guest.qcow2", "lots", "256Mi", "cpu"},
		{"cpu zero", "test-guest.qcow2", "0", "256Mi", "cpu"},
		{"cpu negative", "test-guest.qcow2", "-2", "256Mi", "cpu"},
		{"cpu above the maximum", "test-guest.qcow2", "5", "256Mi", "VM_MAX_VCPUS"},
		{"memory lots", "test-guest.qcow2", "1", "lots", "memory"},
		{"memory zero", "test-guest.qcow2", "1", "0Mi", "memory"},
		{"memory negative", "test-guest.qcow2", "1", "-1Gi", "memory"},
		{"memory above the maximum", "test-guest.qcow2", "1", "4GB RAM", "VM_MAX_MEMORY"},
		{"image outside the directory", "../../etc/shadow", "1", "256Mi", ".."},
		{"image absolute", "/etc/passwd", "1", "256Mi", "absolute"},
		{"image at a private address", "http://10.1.2.3/disk.qcow2", "1", "256Mi", "10.1.2.3"},
		{"image at the metadata address", "http://169.254.169.254/latest/disk.qcow2", "1", "256Mi", "169.254.169.254"},
	} {
		r := mp.call(t, "POST", "/api/apps/new", tok, map[string]any{"name": tc.name, "hourly_rate": 1,
			"deployment": map[string]any{"type": "vm", "image": tc.image, "cpu": tc.cpu, "memory": tc.memory}})
		if r.Status != 422 || !strings.Contains(string(r.Body), tc.want) {
			t.Errorf("%s: %d %s, want 422 mentioning %q", tc.name, r.Status, r.Body, tc.want)
		}
	}
	r := mp.call(t, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1,
		"inputs": map[string]any{"ssh_authorized_keys": 12}})
	if r.Status != 422 || !strings.Contains(string(r.Body), "ssh_authorized_keys") {
		t.Errorf("install with a number for ssh_authorized_keys: %d %s, want 422", r.Status, r.Body)
	}
	if after := snapshot(t, mp.DatabaseURL); after != before {
		t.Fatal("refused requests changed the database")
	}
}
