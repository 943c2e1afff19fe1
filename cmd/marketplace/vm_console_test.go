package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// virtlogdLimits are the size at which virtlogd rotates a log and how many rotated files it keeps: its
// configuration's, or its defaults (2 MiB, 3).
func virtlogdLimits(t *testing.T) (maxSize, maxBackups int64) {
	t.Helper()
	maxSize, maxBackups = 2<<20, 3
	conf, err := os.ReadFile("/etc/libvirt/virtlogd.conf")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for key, into := range map[string]*int64{"max_size": &maxSize, "max_backups": &maxBackups} {
		if m := regexp.MustCompile(`(?m)^\s*` + key + `\s*=\s*(\d+)`).FindSubmatch(conf); m != nil {
			*into, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	return maxSize, maxBackups
}

// consoleOnDisk is how many bytes a guest's console takes on the VM host: its log and the files it was
// rotated into.
func consoleOnDisk(t *testing.T, vm string) (int64, []string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(tenv.VMDir, "logs", vm+".console.log*"))
	var total int64
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
	}
	return total, files
}

// TestVMConsoleFloodIsCapped boots a guest that writes more to its serial console than the cap
// (virtlogd's max_size × (max_backups + 1)): what its console takes on the host's disk never passes the
// cap, the console still answers with the guest's latest output, and the delete removes every file of it.
func TestVMConsoleFloodIsCapped(t *testing.T) {
	maxSize, maxBackups := virtlogdLimits(t)
	limit := maxSize * (maxBackups + 1)
	flood := limit + maxSize/2 // the serial console is slow under TCG (tens of KB/s on a busy machine)
	mp := startMarketplace(t, "serve", vmEnv(nil))
	tok := publishVM(t, mp, "test-guest.qcow2")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "flooder", "hourly_rate": 1,
		"deployment": map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1", "memory": "256Mi"},
		"inputs":     []map[string]any{{"name": "run", "type": "string"}}})
	run := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' A; echo; echo FLOOD-DONE", flood)
	id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 2, "project_id": 1,
		"inputs": map[string]any{"run": run}}).JSON(t)["deploymentID"])
	vm := mp.waitForStatus(t, tok, id, "installed", 4*time.Minute)["placement"].(map[string]any)["vm_name"].(string)

	start := time.Now()
	var most int64
	var console string
	waitFor(t, 10*time.Minute, fmt.Sprintf("the guest to write %d bytes to its console", flood), func() bool {
		if total, files := consoleOnDisk(t, vm); total > limit {
			t.Fatalf("the console takes %d bytes on disk (%v), more than the cap of %d", total, files, limit)
		} else if total > most {
			most = total
		}
		console = mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d/console?bytes=65536", id), tok, nil).JSON(t)["console"].(string)
		time.Sleep(time.Second)
		return strings.Contains(console, "FLOOD-DONE")
	})
	t.Logf("the guest wrote %d bytes to its console in %s; at most %d of them were on disk (cap %d)",
		flood, time.Since(start).Round(time.Second), most, limit)
	if n := strings.Count(console, "A"); n < 60000 {
		t.Fatalf("the console answers %d bytes with %d of the flood: want the end of it, up to 64 KiB", len(console), n)
	}
	if _, files := consoleOnDisk(t, vm); len(files) < 2 {
		t.Fatalf("console files %v: the flood should have been rotated", files)
	}

	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), tok, nil)
	mp.waitForStatus(t, tok, id, "uninstalled", 2*time.Minute)
	if total, files := consoleOnDisk(t, vm); len(files) != 0 {
		t.Fatalf("the delete left %d bytes of console on disk: %v", total, files)
	}
}
