package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
	"github.com/marketplace/marketplace/internal/webhook"
)

// receiver is a webhook receiver on a fixed loopback address that can go down and come back up on it.
// It verifies every delivery's signature (Standard Webhooks) with the secret its webhook was registered
// with, and keeps what it got by webhook-id. While holding, it answers nothing: a request stays open
// until its sender goes away.
type receiver struct {
	t    *testing.T
	addr string

	mu       sync.Mutex
	key      []byte
	srv      *http.Server
	holding  bool
	held     int                       // requests being held now
	received map[string]int            // requests by webhook-id, answered or not
	answered map[string]int            // 2xx answers by webhook-id
	events   map[string]map[string]any // the payload of each id answered
	refused  []string                  // deliveries whose signature did not verify
}

func newReceiver(t *testing.T) *receiver {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, addr: "127.0.0.1:" + strconv.Itoa(port), received: map[string]int{}, answered: map[string]int{},
		events: map[string]map[string]any{}}
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) url() string { return "http://" + r.addr + "/hooks/marketplace" }

// start listens on the receiver's address (again).
func (r *receiver) start() {
	var ln net.Listener
	var err error
	waitFor(r.t, 10*time.Second, "the receiver's port to be free again", func() bool {
		ln, err = net.Listen("tcp", r.addr)
		return err == nil
	})
	srv := &http.Server{Handler: http.HandlerFunc(r.serve)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

// stop closes the listener and every connection: the receiver is down.
func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *receiver) hold(on bool) {
	r.mu.Lock()
	r.holding = on
	r.mu.Unlock()
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	key, holding := r.key, r.holding
	r.received[id]++
	r.mu.Unlock()
	if err := webhook.Verify(key, id, req.Header.Get("webhook-timestamp"), req.Header.Get("webhook-signature"), body, time.Now()); err != nil {
		r.mu.Lock()
		r.refused = append(r.refused, fmt.Sprintf("%s: %v", id, err))
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if holding {
		r.mu.Lock()
		r.held++
		r.mu.Unlock()
		<-req.Context().Done() // the sender went away
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
		return
	}
	var event map[string]any
	if err := json.Unmarshal(body, &event); err != nil || req.Header.Get("Content-Type") != "application/json" {
		r.t.Errorf("delivery %s is not JSON (%s): %v: %s", id, req.Header.Get("Content-Type"), err, body)
	}
	r.mu.Lock()
	r.answered[id]++
	r.events[id] = event
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// find returns the events answered that match: of type typ whose data has every field of fields.
func (r *receiver) find(typ string, fields map[string]any) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, e := range r.events {
		data, _ := e["data"].(map[string]any)
		if e["type"] != typ || data == nil {
			continue
		}
		match := true
		for k, v := range fields {
			match = match && fmt.Sprint(data[k]) == fmt.Sprint(v)
		}
		if match {
			out = append(out, e)
		}
	}
	return out
}

// register registers the receiver as a webhook of token's user for events and keeps its secret.
func (r *receiver) register(t *testing.T, mp *instance, token string, events ...string) int64 {
	t.Helper()
	created := mp.must(t, 201, "POST", "/api/webhooks", token, map[string]any{"url": r.url(), "events": events}).JSON(t)
	secret, _ := created["secret"].(string)
	key, err := webhook.DecodeSecret(secret)
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) < 24 {
		t.Fatalf("registered webhook's secret %q (%v): want whsec_ and a base64 key of at least 24 bytes", secret, err)
	}
	r.mu.Lock()
	r.key = key
	r.mu.Unlock()
	return num(t, created["id"])
}

// deliveries is the webhook's deliveries as its owner reads them.
func deliveries(t *testing.T, mp *instance, token string, hook int64) []map[string]any {
	t.Helper()
	return mp.must(t, 200, "GET", fmt.Sprintf("/api/webhooks/%d/deliveries?limit=500", hook), token, nil).List(t)
}

// TestWebhookEvents registers a receiver for every event, installs a deployment, fails its upgrade,
// deletes it while the receiver is down and closes the month of its usage: every status, the failed
// upgrade and the invoice arrive signed, the ones sent while the receiver was down once it is back,
// each answered once, and the deliveries list shows each one's outcome.
func TestWebhookEvents(t *testing.T) {
	recv := newReceiver(t)
	recv.start()
	mp := startMarketplace(t, "serve", map[string]string{
		"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + recv.addr,
		"WEBHOOK_POLL_INTERVAL":   "200ms", "WEBHOOK_RETRY_BACKOFF": "1s", "WEBHOOK_MAX_BACKOFF": "2s",
		"DEPLOY_MAX_ATTEMPTS": "2",
	})
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	_, pub := mp.user(t, "publisher")
	_, tok := mp.user(t, "consumer")
	hook := recv.register(t, mp, tok, "deployment.status_changed", "upgrade.failed", "invoice.closed")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1.5, "deployment": spec}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	mp.waitForStatus(t, tok, dep, "installed", 2*time.Minute)

	// Version 2 names a chart the repository does not have: the upgrade fails, version 1 runs on.
	mp.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", app), pub, map[string]any{"hourly_rate": 2,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "no-such-chart"}})
	mp.must(t, 202, "POST", fmt.Sprintf("/api/deployments/%d/upgrade", dep), tok, map[string]any{"version": 2})
	waitFor(t, 2*time.Minute, "the failed upgrade to be recorded", func() bool {
		d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", dep), tok, nil).JSON(t)
		return d["status"] == "installed" && d["failure_reason"] != nil
	})
	for _, to := range []string{"pending", "installing", "installed", "upgrading"} {
		waitFor(t, 30*time.Second, "deployment.status_changed to "+to, func() bool {
			return len(recv.find("deployment.status_changed", map[string]any{"deployment_id": dep, "to": to})) > 0
		})
	}
	waitFor(t, 30*time.Second, "upgrade.failed", func() bool {
		return len(recv.find("upgrade.failed", map[string]any{"deployment_id": dep, "version": 1, "target_version": 2})) == 1
	})
	var back []map[string]any
	waitFor(t, 30*time.Second, "deployment.status_changed from upgrading back to installed", func() bool {
		back = recv.find("deployment.status_changed", map[string]any{"deployment_id": dep, "from": "upgrading", "to": "installed"})
		return len(back) == 1
	})
	if reason := fmt.Sprint(back[0]["data"].(map[string]any)["failure_reason"]); !strings.Contains(reason, "no-such-chart") {
		t.Errorf("the failed upgrade's status change says %q, want the reason", reason)
	}

	// The receiver goes down; the delete's two statuses are attempted, fail, and wait for it.
	recv.stop()
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), tok, nil)
	mp.waitForStatus(t, tok, dep, "uninstalled", 2*time.Minute)
	waitFor(t, 30*time.Second, "the delete's deliveries to fail an attempt", func() bool {
		failing := 0
		for _, d := range deliveries(t, mp, tok, hook) {
			to := d["payload"].(map[string]any)["data"].(map[string]any)["to"]
			if (to == "uninstalling" || to == "uninstalled") && d["status"] == "pending" && num(t, d["attempts"]) >= 1 &&
				d["last_error"] != nil && d["last_status_code"] == nil && d["next_attempt_at"] != nil {
				failing++
			}
		}
		return failing == 2
	})
	recv.start()
	for _, to := range []string{"uninstalling", "uninstalled"} {
		waitFor(t, 30*time.Second, "deployment.status_changed to "+to+" once the receiver is back", func() bool {
			return len(recv.find("deployment.status_changed", map[string]any{"deployment_id": dep, "to": to})) == 1
		})
	}

	// The usage moves to March 2025 (time passing); closing March issues the consumer's invoice.
	execSQL(t, mp.DatabaseURL, fmt.Sprintf(`UPDATE usage_records SET started_at = '2025-03-10 10:00Z', ended_at = '2025-03-10 12:00Z',
  amount = usage_amount(hourly_rate, '2025-03-10 10:00Z', '2025-03-10 12:00Z') WHERE deployment_id = %d`, dep))
	mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", operator, nil)
	var invoices []map[string]any
	waitFor(t, 30*time.Second, "invoice.closed", func() bool {
		invoices = recv.find("invoice.closed", map[string]any{"period": "2025-03"})
		return len(invoices) == 1
	})
	data := invoices[0]["data"].(map[string]any)
	inv := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%v/invoices/%s", data["user_id"], data["number"]), tok, nil).JSON(t)
	if fmt.Sprint(inv["total"]) != "3" || fmt.Sprint(data["total"]) != "3" || data["currency"] != "USD" {
		t.Errorf("invoice.closed %v; the invoice says %v: want a total of 3 USD in both", data, inv["total"])
	}

	// Every delivery arrived once, signed, and its outcome is recorded.
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.refused) > 0 {
		t.Errorf("deliveries whose signature did not verify: %v", recv.refused)
	}
	list := deliveries(t, mp, tok, hook)
	if len(list) != len(recv.answered) {
		t.Errorf("%d deliveries listed, %d received", len(list), len(recv.answered))
	}
	for _, d := range list {
		id := d["message_id"].(string)
		if recv.answered[id] != 1 || d["status"] != "delivered" || num(t, d["last_status_code"]) != 204 || d["delivered_at"] == nil {
			t.Errorf("delivery %s (%v): answered %d times, %v after %v attempts with %v; want delivered once, 204", id,
				d["event_type"], recv.answered[id], d["status"], d["attempts"], d["last_status_code"])
		}
	}
}

// TestWebhookRegistration checks what may be registered and who sees it: a URL inside the operator's
// network is refused (422) unless MARKETPLACE_FETCH_ALLOW allows it, and another user neither lists,
// nor deletes, nor reads the deliveries of someone's webhook (404). With no worker running, an event
// waits in the outbox, pending, for a sender.
func TestWebhookRegistration(t *testing.T) {
	recv := newReceiver(t)
	mp := startMarketplace(t, "api", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + recv.addr})
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	owner, tok := mp.user(t, "owner")
	_, other := mp.user(t, "someone else")
	for _, tc := range []struct {
		body map[string]any
		says []string
	}{
		// 127.0.0.1 is also the test cluster's API server, refused on every port: either way a refusal.
		{map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"invoice.closed"}}, []string{"does not fetch from 127.0.0.1:9", "MARKETPLACE_FETCH_ALLOW"}},
		{map[string]any{"url": "http://169.254.169.254/latest/meta-data", "events": []string{"invoice.closed"}}, []string{"link-local"}},
		{map[string]any{"url": "http://10.1.2.3/hook", "events": []string{"invoice.closed"}}, []string{"private"}},
		{map[string]any{"url": "http://localhost:8080/", "events": []string{"invoice.closed"}}, []string{"loopback"}},
		{map[string]any{"url": "http://2130706433/hook", "events": []string{"invoice.closed"}}, []string{"non-standard form"}},
		{map[string]any{"url": "ftp://hooks.example.com/x", "events": []string{"invoice.closed"}}, []string{"http or https"}},
		{map[string]any{"url": recv.url(), "events": []string{"deployment.deleted"}}, []string{`"deployment.deleted" is not an event type`}},
		{map[string]any{"url": recv.url(), "events": []string{"invoice.closed"}, "user_id": owner + 1}, []string{"user_id"}},
	} {
		mustProblem(t, mp.call(t, "POST", "/api/webhooks", tok, tc.body), 422, tc.says...)
	}
	mustProblem(t, mp.call(t, "POST", "/api/webhooks", tok, map[string]any{"url": recv.url(), "events": []string{}}), 422)
	var stored int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM webhooks`, nil, &stored)
	if stored != 0 {
		t.Fatalf("refused registrations stored %d webhooks", stored)
	}

	hook := recv.register(t, mp, tok, "deployment.status_changed")
	listed := mp.must(t, 200, "GET", "/api/webhooks", tok, nil)
	if l := listed.List(t); len(l) != 1 || num(t, l[0]["id"]) != hook || l[0]["url"] != recv.url() || num(t, l[0]["user_id"]) != owner ||
		strings.Contains(string(listed.Body), "whsec_") || strings.Contains(string(listed.Body), "secret") {
		t.Fatalf("the owner's webhooks: %s; want the one registered, without its secret", listed.Body)
	}
	if l := mp.must(t, 200, "GET", "/api/webhooks", other, nil).List(t); len(l) != 0 {
		t.Fatalf("another user lists %v", l)
	}
	if l := mp.must(t, 200, "GET", "/api/webhooks", operator, nil).List(t); len(l) != 1 {
		t.Fatalf("the operator lists %v, want the one webhook", l)
	}
	mustProblem(t, mp.call(t, "GET", fmt.Sprintf("/api/webhooks/%d/deliveries", hook), other, nil), 404)
	mustProblem(t, mp.call(t, "DELETE", fmt.Sprintf("/api/webhooks/%d", hook), other, nil), 404)

	// An install request's pending status is in the outbox at once, for the sender of some worker.
	_, pub := mp.user(t, "publisher")
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	list := deliveries(t, mp, tok, hook)
	if len(list) != 1 {
		t.Fatalf("deliveries %v, want the install request's", list)
	}
	d := list[0]
	data := d["payload"].(map[string]any)["data"].(map[string]any)
	if d["status"] != "pending" || num(t, d["attempts"]) != 0 || !strings.HasPrefix(d["message_id"].(string), "msg_") ||
		d["event_type"] != "deployment.status_changed" || num(t, data["deployment_id"]) != dep || data["to"] != "pending" || data["from"] != nil {
		t.Fatalf("delivery %v, want a pending deployment.status_changed to pending of deployment %d", d, dep)
	}

	mp.must(t, 204, "DELETE", fmt.Sprintf("/api/webhooks/%d", hook), tok, nil)
	if l := mp.must(t, 200, "GET", "/api/webhooks", tok, nil).List(t); len(l) != 0 {
		t.Fatalf("webhooks after the delete: %v", l)
	}
	mustProblem(t, mp.call(t, "GET", fmt.Sprintf("/api/webhooks/%d/deliveries", hook), tok, nil), 404)
}

// TestWebhookDeliveryThroughMarketplaceKill sends webhooks from worker processes killed with SIGKILL:
// the first while the receiver is down (the events wait in the outbox), the second while the receiver
// holds its requests unanswered. A third worker delivers everything: each event is answered 2xx exactly
// once. Delivery is at least once: an attempt cut off by the kill is sent again after its lease, with
// the same webhook-id, and only those are seen twice.
func TestWebhookDeliveryThroughMarketplaceKill(t *testing.T) {
	bin := buildMarketplace(t)
	recv := newReceiver(t)
	mp := startMarketplace(t, "api", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + recv.addr, "DEPLOY_LEASE": "2s"})
	_, tok := mp.user(t, "consumer")
	hook := recv.register(t, mp, tok, "deployment.status_changed")
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	var deps []int64
	for range 2 {
		deps = append(deps, num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"]))
	}
	environ := map[string]string{"WEBHOOK_TIMEOUT": "2s", "WEBHOOK_RETRY_BACKOFF": "500ms", "WEBHOOK_MAX_BACKOFF": "1s",
		"WEBHOOK_POLL_INTERVAL": "200ms", "WEBHOOK_MAX_ATTEMPTS": "1000"}
	for k, v := range mp.Environ {
		if _, ok := environ[k]; !ok {
			environ[k] = v
		}
	}
	dir := t.TempDir()
	pending := func() (all, attempted, delivered int) {
		query(t, mp.DatabaseURL, `SELECT count(*), count(*) FILTER (WHERE attempts > 0), count(*) FILTER (WHERE status = 'delivered') FROM webhook_deliveries`,
			nil, &all, &attempted, &delivered)
		return
	}

	// 1. The receiver is down: the first worker's attempts fail and are recorded; it is killed.
	w1 := startWorker(t, bin, environ, filepath.Join(dir, "worker-1.log"))
	waitFor(t, time.Minute, "the first worker to attempt every delivery", func() bool {
		all, attempted, _ := pending()
		return all >= 2 && attempted == all
	})
	w1.Process.Signal(syscall.SIGKILL)
	w1.Wait()
	if _, _, delivered := pending(); delivered != 0 {
		t.Fatalf("%d deliveries delivered to a receiver that is down", delivered)
	}

	// 2. The receiver is back but holds every request: the second worker is killed mid-send.
	recv.hold(true)
	recv.start()
	w2 := startWorker(t, bin, environ, filepath.Join(dir, "worker-2.log"))
	waitFor(t, time.Minute, "the second worker's deliveries to be held by the receiver", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return recv.held >= 2
	})
	w2.Process.Signal(syscall.SIGKILL)
	w2.Wait()
	waitFor(t, 10*time.Second, "the held requests to see their sender gone", func() bool {
		recv.mu.Lock()
		defer recv.mu.Unlock()
		return recv.held == 0
	})
	recv.mu.Lock()
	cutOff := map[string]bool{}
	for id := range recv.received {
		cutOff[id] = true
	}
	recv.mu.Unlock()

	// 3. The receiver answers; a third worker delivers everything, the cut-off ones once their lease lapses.
	recv.hold(false)
	startWorker(t, bin, environ, filepath.Join(dir, "worker-3.log"))
	for _, dep := range deps {
		mp.waitForStatus(t, tok, dep, "installed", 3*time.Minute)
	}
	waitFor(t, time.Minute, "every delivery to be delivered", func() bool {
		all, _, delivered := pending()
		return delivered == all
	})

	for _, dep := range deps {
		for _, to := range []string{"pending", "installing", "installed"} {
			if n := len(recv.find("deployment.status_changed", map[string]any{"deployment_id": dep, "to": to})); n < 1 {
				t.Errorf("deployment %d: no delivery of its status %s", dep, to)
			}
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.refused) > 0 {
		t.Errorf("deliveries whose signature did not verify: %v", recv.refused)
	}
	list := deliveries(t, mp, tok, hook)
	again := 0
	for _, d := range list {
		id := d["message_id"].(string)
		if recv.answered[id] != 1 {
			t.Errorf("delivery %s answered %d times, want exactly once", id, recv.answered[id])
		}
		if recv.received[id] > 1 {
			again++
			if !cutOff[id] {
				t.Errorf("delivery %s sent %d times though no attempt of it was cut off", id, recv.received[id])
			}
		}
	}
	if len(recv.answered) != len(list) {
		t.Errorf("the receiver answered %d webhook-ids, the marketplace lists %d deliveries", len(recv.answered), len(list))
	}
	if again != len(cutOff) {
		t.Errorf("%d deliveries were cut off by the kill but %d were sent again", len(cutOff), again)
	}
	t.Logf("%d deliveries; %d cut off mid-send by SIGKILL and sent again with the same webhook-id, answered once each", len(list), again)
}
