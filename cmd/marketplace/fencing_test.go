package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestStalledWorkerStopsBeforeTakeover runs worker A with its PostgreSQL connections through a proxy the
// test stalls mid-install. A cannot renew its lease, so it must stop its attempt (Helm's requests
// included) before the lease lapses and worker B's attempt begins; the deployment ends installed with
// exactly one release and one usage record.
func TestStalledWorkerStopsBeforeTakeover(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", map[string]string{"DEPLOY_LEASE": "3s", "LOG_LEVEL": "info"})
	proxy := startStallingProxy(t, "127.0.0.1:5432")
	label, tok := publishWaitingApp(t, mp)

	viaProxy := map[string]string{}
	for k, v := range mp.Environ {
		viaProxy[k] = v
	}
	viaProxy["DATABASE_URL"] = strings.Replace(mp.DatabaseURL, "127.0.0.1:5432", proxy.Addr(), 1)
	logA := filepath.Join(t.TempDir(), "worker-a.log")
	startWorker(t, bin, viaProxy, logA)
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})

	ns, release := mp.Environ["K8S_NAMESPACE_PREFIX"]+"-deployment-1", "deployment-1"
	waitFor(t, 2*time.Minute, "worker A's Helm to record the release as pending-install", func() bool {
		rels := helmReleases(t, ns, release)
		return len(rels) == 1 && rels[0].Labels["status"] == "pending-install"
	})
	proxy.Stall()
	logB := filepath.Join(t.TempDir(), "worker-b.log")
	startWorker(t, bin, mp.Environ, logB)
	waitFor(t, time.Minute, "worker B to claim attempt 2", func() bool {
		return logLine(t, logB, "attempt started", 2) != nil
	})
	labelNode(t, label)
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	proxy.Resume()

	stopped := logLine(t, logA, "lease lost; the attempt stopped", 1)
	if stopped == nil {
		t.Fatalf("worker A never said its attempt stopped")
	}
	began := logLine(t, logB, "attempt started", 2)
	if !stopped.Time.Before(began.Time) {
		t.Errorf("worker A stopped at %s, after worker B's attempt began at %s", stopped.Time, began.Time)
	}
	t.Logf("worker A stopped %s before worker B began", began.Time.Sub(stopped.Time))
	if n := num(t, d["attempts"]); n != 2 {
		t.Errorf("attempts %d, want 2", n)
	}
	if rels := helmReleases(t, ns, release); len(rels) != 1 || rels[0].Labels["status"] != "deployed" {
		t.Errorf("helm release records: %d, want exactly 1 deployed", len(rels))
	}
	var records int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = 1`, nil, &records)
	if records != 1 {
		t.Errorf("%d usage records, want exactly 1", records)
	}
}

// TestSIGTERMDoesNotUseUpAnAttempt stops a worker with SIGTERM mid-install when only one attempt is
// allowed: the attempt is handed back, not counted, and the next worker installs the deployment.
func TestSIGTERMDoesNotUseUpAnAttempt(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", map[string]string{"DEPLOY_LEASE": "3s", "DEPLOY_MAX_ATTEMPTS": "1", "LOG_LEVEL": "info"})
	label, tok := publishWaitingApp(t, mp)
	first := startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-1.log"))
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	ns := mp.Environ["K8S_NAMESPACE_PREFIX"] + "-deployment-1"
	waitFor(t, 2*time.Minute, "the release to be pending-install", func() bool {
		rels := helmReleases(t, ns, "deployment-1")
		return len(rels) == 1 && rels[0].Labels["status"] == "pending-install"
	})
	first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("worker exit after SIGTERM: %v", err)
	}
	if d := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t); d["status"] != "pending" || num(t, d["attempts"]) != 0 {
		t.Fatalf("after SIGTERM the deployment is %v with %v attempts, want pending with 0", d["status"], d["attempts"])
	}
	startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-2.log"))
	labelNode(t, label)
	if d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute); num(t, d["attempts"]) != 1 {
		t.Errorf("attempts %v, want 1", d["attempts"])
	}
}

// publishWaitingApp publishes hello-web with pods that select a node label nobody has yet, so its
// install waits in Helm until labelNode, and makes project 1. It returns the label and the consumer's
// token.
func publishWaitingApp(t *testing.T, mp *instance) (string, string) {
	label := testenv.Name("v")
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 3,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "nodeSelector.fencing-test", "default": label}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	return label, tok
}

// labelNode lets pods waiting for label schedule on the kwok node, until the test ends.
func labelNode(t *testing.T, label string) {
	cs := kube(t)
	patch := func(value string) {
		body := fmt.Sprintf(`{"metadata":{"labels":{"fencing-test":%s}}}`, value)
		if _, err := cs.CoreV1().Nodes().Patch(context.Background(), "kwok-node-0", types.MergePatchType, []byte(body), metav1.PatchOptions{}); err != nil {
			t.Fatalf("label node: %v", err)
		}
	}
	patch(`"` + label + `"`)
	t.Cleanup(func() { patch("null") })
}

func buildMarketplace(t *testing.T, flags ...string) string {
	bin := filepath.Join(t.TempDir(), "marketplace")
	if out, err := exec.Command("go", append(append([]string{"build", "-o", bin}, flags...), ".")...).CombinedOutput(); err != nil {
		t.Fatalf("build marketplace: %v\n%s", err, out)
	}
	return bin
}

// logEntry is one JSON line of the marketplace's log.
type logEntry struct {
	Time    time.Time `json:"time"`
	Msg     string    `json:"msg"`
	Attempt int       `json:"attempt"`
}

// logLine returns the first line of the log at path whose message starts with msg, for attempt.
func logLine(t *testing.T, path, msg string, attempt int) *logEntry {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e logEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil && strings.HasPrefix(e.Msg, msg) && e.Attempt == attempt {
			return &e
		}
	}
	return nil
}

// stallingProxy relays TCP connections to an upstream until Stall, after which it holds every byte
// (connections stay open, nothing moves) until Resume: a database that stops answering.
type stallingProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	stalled  bool
	resumed  chan struct{}
}

func startStallingProxy(t *testing.T, upstream string) *stallingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingProxy{ln: ln, upstream: upstream, resumed: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.Resume() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c)
		}
	}()
	return p
}

func (p *stallingProxy) Addr() string { return p.ln.Addr().String() }

func (p *stallingProxy) Stall() {
	p.mu.Lock()
	p.stalled = true
	p.mu.Unlock()
}

func (p *stallingProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resumed)
	}
}

// wait blocks while the proxy is stalled.
func (p *stallingProxy) wait() {
	p.mu.Lock()
	stalled, resumed := p.stalled, p.resumed
	p.mu.Unlock()
	if stalled {
		<-resumed
	}
}

func (p *stallingProxy) relay(client net.Conn) {
	p.wait()
	server, err := net.Dial("tcp", p.upstream)
	if err != nil {
		client.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.wait()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(server, client)
	go pipe(client, server)
}
