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

// vmEnv is the environment of a marketplace on the local VM host.
func vmEnv(extra map[string]string) map[string]string {
	env := map[string]string{"LIBVIRT_URI": "qemu:///system", "VM_DIR": tenv.VMDir, "VM_BOOT_TIMEOUT": "90s",
		"DEPLOY_TIMEOUT": "3m",
		"PATH":           os.Getenv("PATH")} // a worker process finds the seed tools (mkfs.vfat, mcopy) on it
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// publishVM publishes a vm application of the test guest and makes a project; it returns the consumer's
// token.
func publishVM(t *testing.T, mp *instance, image string) string {
	t.Helper()
	_, tok := mp.user(t, "vm-user")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "guest", "hourly_rate": 2,
		"deployment": map[string]any{"type": "vm", "image": image, "cpu": "1 vCPU", "memory": "256Mi"},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "vms"})
	var instance string
	query(t, mp.DatabaseURL, `SELECT replace(id::text, '-', '') FROM instance`, nil, &instance)
	// The marketplace stops first: its worker, still installing, would define a domain after the removal.
	t.Cleanup(func() { mp.stop(); removeVMs(t, "mp-"+instance[:12]+"-") })
	return tok
}

// removeVMs removes what a test left on the VM host: the domains, networks and volumes named with prefix
// (this test's marketplace instance).
func removeVMs(t *testing.T, prefix string) {
	virsh := func(args ...string) string {
		out, _ := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).Output()
		return string(out)
	}
	for _, name := range strings.Fields(virsh("list", "--all", "--name")) {
		if strings.HasPrefix(name, prefix) {
			t.Logf("removing domain %s left by the test", name)
			virsh("destroy", name)
			virsh("undefine", name)
		}
	}
	for _, name := range strings.Fields(virsh("net-list", "--all", "--name")) {
		if strings.HasPrefix(name, prefix) { // the projects' networks
			virsh("net-destroy", name)
			virsh("net-undefine", name)
		}
	}
	vols, _ := filepath.Glob(filepath.Join(tenv.VMDir, "pool", prefix+"*"))
	for _, v := range vols {
		virsh("vol-delete", v) // by path: the pool's name is derived from its directory
	}
}

// domainExists asks libvirt itself whether a domain of that name is defined.
func domainExists(t *testing.T, name string) bool {
	t.Helper()
	return exec.Command("virsh", "-c", "qemu:///system", "dominfo", name).Run() == nil
}

// guestHTTP fetches a page of a guest from the VM host's network namespace, where guests are reachable.
func guestHTTP(t *testing.T, ip, page string) (string, error) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tenv.VMNetNS, "curl", "-sSf", "-m", "5",
		"http://"+ip+"/"+page).CombinedOutput()
	return string(out), err
}

// TestVMInstallBootsAndDeletes installs a vm application through the API: the deployment is installed
// only once its guest booted with an address, the guest answers on that address with the consumer's
// inputs (read from its cloud-init seed), the usage record opens; the delete destroys the domain and
// its volumes and closes the record.
func TestVMInstallBootsAndDeletes(t *testing.T) {
	mp := startMarketplace(t, "serve", vmEnv(nil))
	tok := publishVM(t, mp, "test-guest.qcow2")
	greeting := testenv.Name("hello-")
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDmp consumer@laptop"

	start := time.Now()
	queued := mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1,
		"inputs": map[string]any{"greeting": greeting, "ssh_authorized_keys": key}}).JSON(t)
	id := num(t, queued["deploymentID"])
	d := mp.waitForStatus(t, tok, id, "installed", 3*time.Minute)
	t.Logf("install request to installed: %s", time.Since(start).Round(10*time.Millisecond))
	placement := d["placement"].(map[string]any)
	vm, ip := placement["vm_name"].(string), placement["ip_address"].(string)
	if !strings.HasPrefix(vm, "mp-") || !strings.HasSuffix(vm, fmt.Sprintf("-d%d", id)) || ip == "" {
		t.Fatalf("placement %v: want a vm name of this deployment and an IP address", placement)
	}
	if !domainExists(t, vm) {
		t.Fatalf("libvirt has no domain %s", vm)
	}
	overlay := filepath.Join(tenv.VMDir, "pool", vm+".qcow2")
	if _, err := os.Stat(overlay); err != nil {
		t.Fatalf("overlay volume: %v", err)
	}

	// The guest answers on its address, with the inputs its seed carried.
	var page string
	var httpErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		if page, httpErr = guestHTTP(t, ip, "inputs.json"); httpErr == nil {
			break
		}
	}
	if httpErr != nil {
		console := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/console", id), tok, nil).JSON(t)
		t.Fatalf("the guest does not answer HTTP on %s: %v: %s\nconsole: %s", ip, httpErr, page, console["console"])
	}
	if !strings.Contains(page, greeting) {
		t.Fatalf("the guest's inputs.json is %q, want the greeting %q", page, greeting)
	}
	if strings.Contains(page, "ssh_authorized_keys") {
		t.Fatalf("the SSH keys belong in user-data, not in the inputs: %q", page)
	}

	// The console shows the seed was read with the consumer's key; another tenant cannot read it.
	console := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/console", id), tok, nil).JSON(t)
	if text := console["console"].(string); !strings.Contains(text, "MARKETPLACE-SEED instance-id: "+vm) || !strings.Contains(text, "keys=1") {
		t.Fatalf("console: %q", text)
	}
	if console["live_state"] != "running" || console["status"] != "installed" {
		t.Fatalf("console states: %v / %v, want running / installed", console["live_state"], console["status"])
	}
	// The deployment itself shows the domain's live state beside its recorded status.
	health, _ := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), tok, nil).JSON(t)["health"].(map[string]any)
	if health["state"] != "running" || health["status"] != "healthy" {
		t.Fatalf("health: %v, want the domain running and healthy", health)
	}
	_, other := mp.user(t, "other tenant")
	mp.must(t, 404, "GET", fmt.Sprintf("/api/deployments/%d/console", id), other, nil)

	var open int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = $1 AND ended_at IS NULL`, []any{id}, &open)
	if open != 1 {
		t.Fatalf("%d open usage records, want 1", open)
	}

	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), tok, nil)
	mp.waitForStatus(t, tok, id, "uninstalled", 2*time.Minute)
	if domainExists(t, vm) {
		t.Fatalf("domain %s is still defined after the delete", vm)
	}
	for _, f := range []string{overlay, filepath.Join(tenv.VMDir, "pool", vm+"-seed.img")} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after the delete (%v)", f, err)
		}
	}
	var closed int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = $1 AND ended_at IS NOT NULL`, []any{id}, &closed)
	if closed != 1 {
		t.Fatalf("%d closed usage records, want 1", closed)
	}
}
