package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/render"
)

// bombRepository is a chart repository a publisher controls whose charts' templates never finish:
// spin loops for ever (10^10 iterations), bomb asks for a string of a billion bytes.
func bombRepository(t *testing.T) *httptest.Server {
	t.Helper()
	src, built := t.TempDir(), t.TempDir()
	for name, template := range map[string]string{
		"spin": "{{ range until 100000 }}{{ range until 100000 }}x{{ end }}{{ end }}",
		"bomb": `{{ repeat 1000000000 "x" }}`,
	} {
		for file, content := range map[string]string{
			"Chart.yaml":          "apiVersion: v2\nname: " + name + "\nversion: 0.1.0\n",
			"templates/boom.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: boom\ndata:\n  x: \"" + template + "\"\n",
		} {
			path := filepath.Join(src, name, file)
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(built)))
	t.Cleanup(srv.Close)
	return srv
}

// renderChildren lists this process's children that are rendering: render children
// (`<executable> render-chart`) that have their request (the one started ahead, waiting, renders
// nothing).
func renderChildren(t *testing.T) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var found []int
	for _, stat := range procs {
		data, err := os.ReadFile(stat)
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its last ')'.
		fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		dir := filepath.Dir(stat)
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		comm := string(data[bytes.IndexByte(data, '(')+1 : bytes.LastIndexByte(data, ')')])
		if len(args) > 1 && args[1] == render.Subcommand && comm == render.RenderingName {
			pid, _ := strconv.Atoi(filepath.Base(dir))
			found = append(found, pid)
		}
	}
	return found
}

// peakMemory is this process's peak resident set (VmHWM), in bytes.
func peakMemory(t *testing.T) int64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// TestChartRenderIsBounded is the evidence that a publisher's templates cannot hold a worker: with an
// API replica and one worker of one slot (WORKER_CONCURRENCY=1) and RENDER_TIMEOUT=2s, the dry run
// of a chart that loops for ever answers 422 naming the budget within about RENDER_TIMEOUT, no render
// process is left running, and the same worker answers the next dry run at once; the chart's install
// fails at its first attempt with that reason and the worker installs another chart; a chart that
// asks for a billion-byte string fails on memory without the worker's process growing; and a client
// that gives up on a dry run ends its render.
func TestChartRenderIsBounded(t *testing.T) {
	repo := bombRepository(t)
	allow := testRepositories() + "," + repo.Listener.Addr().String()
	mp := startMarketplace(t, "api", map[string]string{"MARKETPLACE_FETCH_ALLOW": allow})
	worker := sameMarketplace(mp)
	for k, v := range map[string]string{"MARKETPLACE_FETCH_ALLOW": allow, "WORKER_CONCURRENCY": "1", "RENDER_TIMEOUT": "2s"} {
		worker[k] = v
	}
	startMarketplace(t, "worker", worker)

	_, pub := mp.user(t, "publisher")
	_, tok := mp.user(t, "consumer")
	app := func(name, repoURL, chart string) int64 {
		return num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": name, "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": repoURL, "chartName": chart}}).JSON(t)["id"])
	}
	spin, bomb, web := app("spin", repo.URL, "spin"), app("bomb", repo.URL, "bomb"), app("web", tenv.ChartRepo, "hello-web")
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	install := map[string]any{"application_id": spin, "project_id": project}
	noChildren := func(t *testing.T, within time.Duration) {
		t.Helper()
		waitFor(t, within, "no render process to be left", func() bool { return len(renderChildren(t)) == 0 })
	}

	t.Run("dry run", func(t *testing.T) {
		start := time.Now()
		r := mp.call(t, "POST", "/api/deployments/install?dry_run=true", tok, install)
		took := time.Since(start)
		detail, _ := r.JSON(t)["detail"].(string)
		if r.Status != 422 || !strings.Contains(detail, "chart spin 0.1.0 did not render within its time budget: 2s (RENDER_TIMEOUT)") {
			t.Fatalf("dry run of a chart that loops for ever: %d %s", r.Status, r.Body)
		}
		if took > 6*time.Second {
			t.Errorf("the dry run answered after %s, RENDER_TIMEOUT is 2s", took)
		}
		t.Logf("422 after %s: %s", took.Round(time.Millisecond), detail)
		if left := renderChildren(t); len(left) > 0 {
			t.Errorf("render processes %v still run after the dry run answered", left)
		}
		// The worker's one slot is free: the next dry run is answered at once.
		start = time.Now()
		mp.must(t, 200, "POST", "/api/deployments/install?dry_run=true", tok, map[string]any{"application_id": web, "project_id": project})
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("the next dry run took %s", took)
		}
	})

	t.Run("install", func(t *testing.T) {
		id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, install).JSON(t)["deploymentID"])
		d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
		reason, _ := d["failure_reason"].(string)
		if !strings.Contains(reason, "install attempt 1 of") || !strings.Contains(reason, "did not render within its time budget: 2s (RENDER_TIMEOUT)") {
			t.Errorf("failure reason %q, want the first attempt to fail naming the time budget", reason)
		}
		noChildren(t, time.Second)
		// The worker is free: another deployment installs.
		ok := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": web, "project_id": project}).JSON(t)["deploymentID"])
		mp.waitForStatus(t, tok, ok, "installed", 3*time.Minute)
	})

	t.Run("memory", func(t *testing.T) {
		before := peakMemory(t)
		r := mp.call(t, "POST", "/api/deployments/install?dry_run=true", tok, map[string]any{"application_id": bomb, "project_id": project})
		detail, _ := r.JSON(t)["detail"].(string)
		if r.Status != 422 || !strings.Contains(detail, "chart bomb 0.1.0 did not render within its memory budget") || !strings.Contains(detail, "RENDER_MAX_BYTES") {
			t.Errorf("dry run of a billion-byte string: %d %s", r.Status, r.Body)
		}
		id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": bomb, "project_id": project}).JSON(t)["deploymentID"])
		d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
		if reason, _ := d["failure_reason"].(string); !strings.Contains(reason, "did not render within its memory budget") {
			t.Errorf("failure reason %q, want the memory budget", reason)
		}
		if grew := peakMemory(t) - before; grew > 256<<20 {
			t.Errorf("the test process's peak memory grew by %d MiB", grew>>20)
		}
		noChildren(t, time.Second)
	})

	t.Run("client gives up", func(t *testing.T) {
		// A worker of its own with a budget far longer than the client waits.
		patient := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FETCH_ALLOW": allow, "RENDER_TIMEOUT": "5m"})
		_, pub := patient.user(t, "publisher")
		_, tok := patient.user(t, "consumer")
		spin := num(t, patient.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "spin", "hourly_rate": 1,
			"deployment": map[string]any{"type": "k8s", "repoURL": repo.URL, "chartName": "spin"}}).JSON(t)["id"])
		project := num(t, patient.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
		body := fmt.Sprintf(`{"application_id": %d, "project_id": %d}`, spin, project)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		answered := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", patient.URL+"/api/deployments/install?dry_run=true", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				answered <- 0
				return
			}
			resp.Body.Close()
			answered <- resp.StatusCode
		}()
		waitFor(t, 10*time.Second, "the dry run's render to start", func() bool { return len(renderChildren(t)) > 0 })
		time.Sleep(500 * time.Millisecond)
		cancel() // the client gives up
		if status := <-answered; status != 0 {
			t.Fatalf("the dry run answered %d before the client gave up", status)
		}
		noChildren(t, 3*time.Second)
	})
}
