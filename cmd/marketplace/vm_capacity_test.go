package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// vmNodeInfo is the VM host's CPUs and memory (MiB) as libvirt reports them.
func vmNodeInfo(t *testing.T) (int, int64) {
	t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "nodeinfo").Output()
	if err != nil {
		t.Fatalf("virsh nodeinfo: %v", err)
	}
	cpus := regexp.MustCompile(`(?m)^CPU\(s\):\s+(\d+)`).FindSubmatch(out)
	mem := regexp.MustCompile(`(?m)^Memory size:\s+(\d+) KiB`).FindSubmatch(out)
	if cpus == nil || mem == nil {
		t.Fatalf("virsh nodeinfo: %s", out)
	}
	n, _ := strconv.Atoi(string(cpus[1]))
	kib, _ := strconv.ParseInt(string(mem[1]), 10, 64)
	return n, kib / 1024
}

// TestVMHostFullRefusesInstalls fills the VM host (its CPU overcommit ratio set so that two guests of the
// test application, 1 vCPU each, take all of it): of ten installs sent at once exactly two are accepted,
// the others answer 409 naming what is short; a later one is refused and changes nothing; one admitted
// against a stale record of the host is refused by the worker before it defines a guest; after a delete
// the next install fits again.
func TestVMHostFullRefusesInstalls(t *testing.T) {
	cpus, _ := vmNodeInfo(t)
	ratio := strconv.FormatFloat(2.5/float64(cpus), 'f', -1, 64) // 2 vCPUs for guests, whatever the host has
	mp := startMarketplace(t, "serve", vmEnv(map[string]string{"VM_CPU_OVERCOMMIT": ratio}))
	tok := publishVM(t, mp, "test-guest.qcow2")
	install := map[string]any{"application_id": 1, "project_id": 1}

	// Ten consumers, each with a project, so nothing but the VM host orders their requests.
	type consumer struct {
		token   string
		project int64
	}
	consumers := make([]consumer, 10)
	for i := range consumers {
		_, ctok := mp.user(t, fmt.Sprintf("consumer %d", i))
		p := mp.must(t, 201, "POST", "/api/user/project/new", ctok, map[string]any{"name": "vms"}).JSON(t)
		consumers[i] = consumer{ctok, num(t, p["id"])}
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var accepted []int64
	var owners []string
	var refused []response
	for _, c := range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := mp.call(t, "POST", "/api/deployments/install", c.token, map[string]any{"application_id": 1, "project_id": c.project})
			mu.Lock()
			defer mu.Unlock()
			switch r.Status {
			case 202:
				accepted = append(accepted, num(t, r.JSON(t)["deploymentID"]))
				owners = append(owners, c.token)
			case 409:
				refused = append(refused, r)
			default:
				t.Errorf("install: status %d: %s", r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	if len(accepted) != 2 || len(refused) != 8 {
		t.Fatalf("ten installs at once on a host with room for two: %d accepted, %d refused; want 2 and 8", len(accepted), len(refused))
	}
	wantShort := "needs 1 vCPU and 256 MiB; the VM host has 0 vCPUs and "
	for _, r := range refused {
		if !strings.HasPrefix(r.ContentType, "application/problem+json") || !strings.Contains(string(r.Body), wantShort) {
			t.Fatalf("refusal %s %s: want a problem+json naming what is short (%q)", r.ContentType, r.Body, wantShort)
		}
	}
	var stored int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM deployments`, nil, &stored)
	if stored != 2 {
		t.Fatalf("%d deployments stored, want the 2 accepted", stored)
	}
	vms := map[int64]string{}
	for i, id := range accepted {
		vms[id] = mp.waitForStatus(t, owners[i], id, "installed", 4*time.Minute)["placement"].(map[string]any)["vm_name"].(string)
	}

	// Full: one more is refused and nothing changes.
	before := snapshot(t, mp.DatabaseURL)
	r := mp.must(t, 409, "POST", "/api/deployments/install", tok, install)
	if !strings.Contains(string(r.Body), wantShort) {
		t.Fatalf("install on a full host: %s", r.Body)
	}
	if after := snapshot(t, mp.DatabaseURL); after != before {
		t.Fatal("a refused install changed the database")
	}

	// A stale record of the host (more CPUs than it has) lets an install through; the worker counts the
	// host's own domains and refuses to define the guest.
	var stale int64
	waitFor(t, 30*time.Second, "an install admitted against a stale record of the host", func() bool {
		query(t, mp.DatabaseURL, `UPDATE vm_host SET cpus = 1000 RETURNING 1`, nil, new(int))
		r := mp.call(t, "POST", "/api/deployments/install", tok, install)
		if r.Status == 202 {
			stale = num(t, r.JSON(t)["deploymentID"])
		}
		return r.Status == 202 // a 409: the worker recorded the host again meanwhile
	})
	var reason string
	waitFor(t, 2*time.Minute, "the worker to refuse the over-booking guest", func() bool {
		query(t, mp.DatabaseURL, `SELECT failure_reason FROM deployments WHERE id = $1`, []any{stale}, &reason)
		return reason != ""
	})
	if !strings.Contains(reason, "needs 1 vCPU and 256 MiB; the VM host has 0 vCPUs") {
		t.Fatalf("failure reason %q: want the worker's refusal naming what is short", reason)
	}
	if name := strings.Replace(vms[accepted[0]], fmt.Sprintf("-d%d", accepted[0]), fmt.Sprintf("-d%d", stale), 1); domainExists(t, name) {
		t.Fatalf("the worker defined %s on a full host", name)
	}
	waitFor(t, time.Minute, "the refused deployment to take a delete", func() bool {
		return mp.call(t, "DELETE", fmt.Sprintf("/api/deployments/%d", stale), tok, nil).Status == 202 // 409 while an attempt runs
	})
	mp.waitForStatus(t, tok, stale, "uninstalled", 2*time.Minute)
	query(t, mp.DatabaseURL, `UPDATE vm_host SET cpus = $1 RETURNING 1`, []any{cpus}, new(int))

	// After a delete, the next install fits again and boots.
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", accepted[0]), owners[0], nil)
	mp.waitForStatus(t, owners[0], accepted[0], "uninstalled", 2*time.Minute)
	next := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, install).JSON(t)["deploymentID"])
	mp.waitForStatus(t, tok, next, "installed", 4*time.Minute)
	mp.must(t, 409, "POST", "/api/deployments/install", tok, install)
}
