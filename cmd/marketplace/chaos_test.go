package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestChaosAtScale runs two `api` and two `worker` processes on a PostgreSQL and a Redis of the test's
// own and requests 200 installs, 100 deletes and 50 upgrades over both APIs, while a random marketplace
// process is killed with SIGKILL every 5 s (and started again at once, as a supervisor would), Redis is
// restarted twice (losing every queued task: it keeps nothing on disk) and PostgreSQL once (an
// immediate stop, recovered from its WAL). Clients do what a careful user does: a request whose answer
// is lost (a killed API, a 5xx) is retried through the other API, and an install is retried only after
// its project shows none was recorded.
//
// Once the requests are all accepted the faults stop, and the marketplace must get to what was asked by
// itself: each deployment in its requested state (uninstalled, or installed at version 1 or 2), each
// live one exactly one Helm release whose deployed revision is the one recorded and runs the requested
// version, one open usage record for each live deployment and none for the others, no two records of a
// deployment overlapping, and every amount equal to a recomputation from the audit trail alone (the
// status events' instants and the versions' rates) to 1e-6. How long the marketplace took to recover
// from each kind of fault is logged from the processes' own logs.
//
// CHAOS_SEED repeats a run's choice of processes to kill and the requests' delays.
func TestChaosAtScale(t *testing.T) {
	const consumers, perConsumer = 10, 20
	const total = consumers * perConsumer
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("CHAOS_SEED=%d", seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()

	bin := buildMarketplace(t)
	pg, err := testenv.StartPostgres()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Remove)
	redis, err := testenv.StartRedis(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	databaseURL := pg.URL("marketplace")
	environ := map[string]string{
		"DATABASE_URL":            databaseURL,
		"REDIS_URL":               redis.URL(0),
		"KUBECONFIG":              tenv.Kubecfg,
		"MARKETPLACE_ADMIN_TOKEN": "operator-" + testenv.Name(""),
		"K8S_NAMESPACE_PREFIX":    testenv.Name("t"),
		"MARKETPLACE_CACHE_DIR":   t.TempDir(),
		"RECONCILE_INTERVAL":      "1s",
		"DEPLOY_RETRY_BACKOFF":    "500ms",
		"DEPLOY_TIMEOUT":          "2m",
		// Attempts lost to a SIGKILL count as attempts (a worker that dies cannot tell why); under this many
		// kills, the default 5 would fail deployments for the test's own faults.
		"DEPLOY_MAX_ATTEMPTS": "20",
		// A crashed worker's deployment is taken over this long after its last heartbeat; shorter leases
		// were lost to a loaded machine's slow renewals.
		"DEPLOY_LEASE":            "10s",
		"BILLING_INTERVAL":        "1s",
		"LOG_LEVEL":               "info",
		"MARKETPLACE_FETCH_ALLOW": testRepositories(),
		"USER_CREATE_RATE":        "0",
		"HOME":                    os.Getenv("HOME"),
	}
	prefix := environ["K8S_NAMESPACE_PREFIX"]
	t.Cleanup(func() { cleanupNamespaces(t, prefix) })
	migrate := exec.Command(bin, "migrate")
	for k, v := range environ {
		migrate.Env = append(migrate.Env, k+"="+v)
	}
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}

	runCtx, stopProcs := context.WithCancel(ctx)
	procs := []*chaosProc{
		newChaosProc(t, bin, "api", "api-1", environ), newChaosProc(t, bin, "api", "api-2", environ),
		newChaosProc(t, bin, "worker", "worker-1", environ), newChaosProc(t, bin, "worker", "worker-2", environ),
	}
	var supervised sync.WaitGroup
	for _, p := range procs {
		supervised.Add(1)
		go func() { defer supervised.Done(); p.supervise(runCtx) }()
	}
	t.Cleanup(func() {
		stopProcs()
		supervised.Wait()
		if t.Failed() {
			for _, p := range procs {
				p.showLog(t)
			}
		}
		// CHAOS_LOGS=dir keeps every process's logs.
		if dir := os.Getenv("CHAOS_LOGS"); dir != "" {
			for _, p := range procs {
				for _, path := range p.logFiles() {
					if b, err := os.ReadFile(path); err == nil {
						os.WriteFile(filepath.Join(dir, filepath.Base(path)), b, 0o644)
					}
				}
			}
		}
	})
	for _, p := range procs {
		waitFor(t, time.Minute, p.name+" to answer /healthz", func() bool { return p.get("/healthz") == 200 })
	}
	apis := []*instance{{URL: procs[0].url}, {URL: procs[1].url}}

	// One publisher; ten consumers with a project per install, so a consumer whose install request got
	// no answer can tell from its project whether it was recorded.
	_, pubTok := apis[0].user(t, "publisher")
	v1 := map[string]any{"name": "hello, no pods", "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 0}}}
	apis[0].must(t, 201, "POST", "/api/apps/new", pubTok, v1)
	apis[1].must(t, 201, "POST", "/api/apps/1/versions", pubTok, map[string]any{"hourly_rate": 2.75, "deployment": v1["deployment"],
		"changelog": "the service on 8080", "inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 0},
			{"name": "service.port", "type": "integer", "default": 8080}}})
	type consumer struct {
		id    int64
		token string
	}
	cs := make([]consumer, consumers)
	projects := make([]int64, total)
	for i := range cs {
		cs[i].id, cs[i].token = apis[i%2].user(t, fmt.Sprintf("consumer %d", i))
	}
	each(t, total, 10, func(k int) error {
		var p struct {
			ID int64 `json:"id"`
		}
		err := apis[k%2].send("POST", "/api/user/project/new", cs[k%consumers].token, 201, map[string]any{"name": fmt.Sprintf("p%d", k)}, &p)
		projects[k] = p.ID
		return err
	})

	// What each install k is for: k%4 0 and 1 deleted, 2 upgraded to version 2, 3 kept at version 1.
	want := func(k int) chaosWant {
		switch k % 4 {
		case 0, 1:
			return chaosDeleted
		case 2:
			return chaosUpgraded
		}
		return chaosKept
	}
	// Installs are requested 5 a second; a delete follows its install by 0-15 s (some before the install
	// is done, which it waits for: a 409 while installing), an upgrade by 3-15 s.
	delays := make([]time.Duration, total)
	for k := range delays {
		delays[k] = time.Duration(rnd.Int64N(int64(15 * time.Second)))
		if want(k) == chaosUpgraded {
			delays[k] = 3*time.Second + time.Duration(rnd.Int64N(int64(12*time.Second)))
		}
	}
	cl := &chaosClient{apis: []string{procs[0].url, procs[1].url}}

	start := time.Now()
	faults := &faultLog{start: start}
	chaosCtx, stopChaos := context.WithCancel(ctx)
	var chaos sync.WaitGroup
	t.Cleanup(func() { stopChaos(); chaos.Wait() }) // before the processes stop
	// A SIGKILL of a random process every 5 s; the process starts again at once.
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-chaosCtx.Done():
				return
			case <-tick.C:
			}
			p := procs[rnd.IntN(len(procs))]
			chaos.Add(1)
			go func() {
				defer chaos.Done()
				if k, ok := p.kill(); ok {
					faults.add(fault{kind: p.role + " SIGKILL", proc: p, at: k.at, log: k.log})
				}
			}()
		}
	}()
	// Redis restarted twice, PostgreSQL once, each down for 2 s, between the kills.
	infraDone := make(chan struct{})
	chaos.Add(1)
	go func() {
		defer chaos.Done()
		defer close(infraDone)
		for _, f := range []struct {
			after time.Duration
			kind  string
		}{{12 * time.Second, "Redis restart"}, {27 * time.Second, "PostgreSQL restart"}, {42 * time.Second, "Redis restart"}} {
			select {
			case <-chaosCtx.Done():
				return
			case <-time.After(time.Until(start.Add(f.after))):
			}
			down := time.Now()
			if f.kind == "Redis restart" {
				redis.Stop()
			} else if err := pg.Stop(); err != nil {
				t.Errorf("stop PostgreSQL: %v", err)
			}
			time.Sleep(2 * time.Second)
			var err error
			if f.kind == "Redis restart" {
				err = redis.Start()
			} else {
				err = pg.Start()
			}
			if err != nil {
				t.Errorf("%s: %v", f.kind, err)
				return
			}
			up := time.Now()
			// Both APIs ready again (PostgreSQL and Redis reachable from each).
			for _, p := range procs[:2] {
				for p.get("/readyz") != 200 && time.Since(up) < 2*time.Minute {
					time.Sleep(50 * time.Millisecond)
				}
			}
			faults.add(fault{kind: f.kind, at: down, up: up, ready: time.Since(up)})
		}
	}()

	// The requests: each install k, then its delete or upgrade, from a goroutine of its own.
	ids := make([]int64, total)
	var requests sync.WaitGroup
	errs := make(chan error, total)
	for k := range total {
		requests.Add(1)
		go func() {
			defer requests.Done()
			time.Sleep(time.Until(start.Add(time.Duration(k) * 200 * time.Millisecond)))
			c := cs[k%consumers]
			id, err := cl.install(k, c.token, projects[k])
			if err != nil {
				errs <- fmt.Errorf("install %d: %w", k, err)
				return
			}
			ids[k] = id
			time.Sleep(delays[k])
			switch want(k) {
			case chaosDeleted:
				err = cl.delete(k, c.token, id)
			case chaosUpgraded:
				err = cl.upgrade(k, c.token, projects[k], id)
			}
			if err != nil {
				errs <- fmt.Errorf("deployment %d: %w", id, err)
			}
		}()
	}
	// The faults stop once every request is accepted and the infrastructure's are over, or after
	// chaosFor if that is sooner: an upgrade waits for its install, which a loaded machine makes slow.
	accepted := make(chan struct{})
	go func() { requests.Wait(); close(accepted) }()
	select {
	case <-accepted:
	case <-time.After(time.Until(start.Add(chaosFor))):
	}
	<-infraDone
	stopChaos()
	chaos.Wait()
	calm := time.Now()
	t.Logf("faults stopped after %v", calm.Sub(start).Round(time.Millisecond))
	<-accepted
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("every request accepted after %v: %s", time.Since(start).Round(time.Millisecond), cl.summary())
	if t.Failed() {
		t.FailNow()
	}

	// By itself, the marketplace gets every deployment to what was asked.
	db, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	wantOf := map[int64]chaosWant{}
	for k, id := range ids {
		wantOf[id] = want(k)
	}
	type row struct {
		status  string
		version int
		reason  string
	}
	var rows map[int64]row
	readRows := func() {
		rows = map[int64]row{}
		rs, _ := db.Query(ctx, `SELECT id, status, version, failure_reason FROM deployments`)
		var id int64
		var r row
		if _, err := pgx.ForEachRow(rs, []any{&id, &r.status, &r.version, &r.reason}, func() error { rows[id] = r; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// settled: in the requested state.
	settled := func(id int64) bool {
		r := rows[id]
		if wantOf[id] == chaosDeleted {
			return r.status == "uninstalled"
		}
		return r.status == "installed" && r.version == wantOf[id].version()
	}
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		readRows()
		var unsettled []string
		for id := range wantOf {
			r := rows[id]
			if r.status == "failed" || (wantOf[id] == chaosUpgraded && r.status == "installed" && r.reason != "") {
				t.Fatalf("deployment %d is %s at version %d: %s", id, r.status, r.version, r.reason)
			}
			if !settled(id) {
				unsettled = append(unsettled, fmt.Sprintf("%d %s v%d", id, r.status, r.version))
			}
		}
		if len(unsettled) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes without faults, %d deployments are not in their requested state: %v", len(unsettled), unsettled[:min(len(unsettled), 20)])
		}
	}
	t.Logf("all %d deployments in their requested state %v after the faults stopped (%v after the start)",
		total, time.Since(calm).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if len(rows) != total || len(wantOf) != total {
		t.Errorf("%d deployments recorded for %d distinct accepted installs, want %d: a retried request made another", len(rows), len(wantOf), total)
	}
	for _, p := range procs[:2] {
		if s := p.get("/readyz"); s != 200 {
			t.Errorf("%s /readyz: %d after the faults", p.name, s)
		}
	}

	checkReleases(t, prefix, wantOf, db)
	checkUsage(t, db, wantOf)
	faults.report(t, procs, db)
	for _, p := range procs {
		p.mu.Lock()
		for _, c := range p.crashes {
			t.Errorf("%s exited by itself after it had come up (not killed by the test):\n%s", p.name, c)
		}
		if p.startFailures > 0 {
			t.Logf("%s: %d start(s) failed (PostgreSQL down at the time) and were retried", p.name, p.startFailures)
		}
		p.mu.Unlock()
	}
}

// checkReleases checks the cluster: each live deployment has exactly one Helm release, whose one
// deployed record is the revision the marketplace recorded last, of the version asked for, and whose
// Service listens on that version's port; each uninstalled one has its namespace gone or terminating;
// no namespace belongs to a deployment nobody asked for.
func checkReleases(t *testing.T, prefix string, wantOf map[int64]chaosWant, db *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	type revision struct{ revision, version int }
	recorded := map[int64]revision{}
	rs, _ := db.Query(ctx, `SELECT DISTINCT ON (deployment_id) deployment_id, revision, version FROM deployment_revisions
ORDER BY deployment_id, revision DESC`)
	var id int64
	var r revision
	if _, err := pgx.ForEachRow(rs, []any{&id, &r.revision, &r.version}, func() error { recorded[id] = r; return nil }); err != nil {
		t.Fatal(err)
	}
	cs := kube(t)
	secrets, err := cs.CoreV1().Secrets("").List(ctx, metav1.ListOptions{LabelSelector: "owner=helm"})
	if err != nil {
		t.Fatal(err)
	}
	releases := map[string][]map[string]string{}
	for _, s := range secrets.Items {
		if strings.HasPrefix(s.Namespace, prefix+"-") {
			releases[s.Namespace] = append(releases[s.Namespace], s.Labels)
		}
	}
	services, err := cs.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string][]int32{}
	for _, s := range services.Items {
		for _, p := range s.Spec.Ports {
			ports[s.Namespace+"/"+s.Name] = append(ports[s.Namespace+"/"+s.Name], p.Port)
		}
	}
	nss, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	terminating := map[string]bool{}
	for _, n := range nss.Items {
		if !strings.HasPrefix(n.Name, prefix+"-deployment-") {
			continue
		}
		terminating[n.Name] = n.DeletionTimestamp != nil
		id, _ := strconv.ParseInt(strings.TrimPrefix(n.Name, prefix+"-deployment-"), 10, 64)
		if _, ok := wantOf[id]; !ok {
			t.Errorf("namespace %s belongs to no deployment that was asked for", n.Name)
		}
	}
	var superseded int
	for id, want := range wantOf {
		ns := fmt.Sprintf("%s-deployment-%d", prefix, id)
		name := fmt.Sprintf("deployment-%d", id)
		if want == chaosDeleted {
			if dying, ok := terminating[ns]; ok && !dying {
				t.Errorf("deployment %d is uninstalled but its namespace is not being deleted", id)
			}
			if !terminating[ns] && len(releases[ns]) != 0 {
				t.Errorf("deployment %d is uninstalled but Helm release records are left: %v", id, releases[ns])
			}
			continue
		}
		version := want.version()
		var deployed []string
		newest := 0
		for _, l := range releases[ns] {
			if l["name"] != name {
				t.Errorf("deployment %d: a second Helm release %q in its namespace", id, l["name"])
			}
			v, _ := strconv.Atoi(l["version"])
			newest = max(newest, v)
			if l["status"] == "deployed" {
				deployed = append(deployed, l["version"])
			} else {
				superseded++
			}
		}
		// An attempt killed mid-upgrade leaves its revision pending (history, like a failed one); the
		// release's newest revision is the deployed one.
		rec := recorded[id]
		if len(deployed) == 1 && deployed[0] != strconv.Itoa(newest) {
			t.Errorf("deployment %d: Helm release records %v: the newest is not the deployed one", id, releases[ns])
		}
		if len(deployed) != 1 || deployed[0] != strconv.Itoa(rec.revision) || rec.version != version {
			t.Errorf("deployment %d: deployed Helm revisions %v (records %v), the marketplace's last revision %d of version %d; want exactly one, that one, of version %d",
				id, deployed, releases[ns], rec.revision, rec.version, version)
		}
		port := map[int]int32{1: 80, 2: 8080}[version]
		if got := ports[ns+"/"+name+"-hello-web"]; len(got) != 1 || got[0] != port {
			t.Errorf("deployment %d: its Service listens on %v, want version %d's %d", id, got, version, port)
		}
	}
	t.Logf("cluster: %d namespaces of the run, %d Helm release records of live deployments not deployed (superseded, failed or interrupted revisions)", len(terminating), superseded)
}

// checkUsage checks the bills: one open usage record for each live deployment and none for the others,
// no two records of a deployment overlapping, and each record what the audit trail alone says: it
// opens at the event of the deployment becoming installed, closes at its uninstall's request or splits
// at an upgrade completing to another rate, at the version's rate, and its amount (up to its end, or
// to the instant the billing job last metered it) is rate × whole seconds / 3600, to 6 places, half to
// even.
func checkUsage(t *testing.T, db *pgx.Conn, wantOf map[int64]chaosWant) {
	t.Helper()
	ctx := context.Background()
	rates := map[[2]int64]decimal.Decimal{}
	rs, _ := db.Query(ctx, `SELECT application_id, version, hourly_rate::text FROM application_versions`)
	var app, version int64
	var rate string
	if _, err := pgx.ForEachRow(rs, []any{&app, &version, &rate}, func() error {
		rates[[2]int64{app, version}] = decimal.RequireFromString(rate)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// The audit trail's story of each deployment's billing.
	type span struct {
		rate           decimal.Decimal
		from, to       time.Time
		opened, closed int64
	}
	spans := map[int64][]*span{}
	rs, _ = db.Query(ctx, `SELECT id, at, action, resource, coalesce(detail->>'from', ''), (detail->>'application_id')::bigint,
  (detail->>'version')::bigint FROM audit_events WHERE resource LIKE 'deployment:%' ORDER BY id`)
	var eventID int64
	var at time.Time
	var action, resource, from string
	if _, err := pgx.ForEachRow(rs, []any{&eventID, &at, &action, &resource, &from, &app, &version}, func() error {
		id, _ := strconv.ParseInt(strings.TrimPrefix(resource, "deployment:"), 10, 64)
		s := spans[id]
		var open *span
		if len(s) > 0 && s[len(s)-1].closed == 0 {
			open = s[len(s)-1]
		}
		switch {
		case action == "deployment.installed" && from == "installing":
			if open != nil || len(s) > 0 {
				t.Errorf("deployment %d: installed again (event %d)", id, eventID)
			}
			spans[id] = append(s, &span{rate: rates[[2]int64{app, version}], from: at, opened: eventID})
		case action == "deployment.installed" && from == "upgrading" && open != nil:
			if r := rates[[2]int64{app, version}]; !r.Equal(open.rate) {
				open.to, open.closed = at, eventID
				spans[id] = append(s, &span{rate: r, from: at, opened: eventID})
			}
		case action == "deployment.uninstalling" && open != nil:
			open.to, open.closed = at, eventID
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	type record struct {
		id                 int64
		rate, amount       string
		started, metered   time.Time
		ended              *time.Time
		openedBy, closedBy *int64
	}
	records := map[int64][]record{}
	rs, _ = db.Query(ctx, `SELECT deployment_id, id, hourly_rate::text, started_at, ended_at, amount::text, metered_at, opened_event_id, closed_event_id
FROM usage_records ORDER BY deployment_id, id`)
	var id int64
	var r record
	if _, err := pgx.ForEachRow(rs, []any{&id, &r.id, &r.rate, &r.started, &r.ended, &r.amount, &r.metered, &r.openedBy, &r.closedBy}, func() error {
		records[id] = append(records[id], r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var n, closed, checked int
	var worstSkew time.Duration
	for id, want := range wantOf {
		recs, story := records[id], spans[id]
		n += len(recs)
		open := 0
		for i, r := range recs {
			if r.ended == nil {
				open++
				if i != len(recs)-1 {
					t.Errorf("deployment %d: usage record %d is open but not its last", id, r.id)
				}
			} else if r.ended.Before(r.started) {
				t.Errorf("deployment %d: usage record %d ends before it starts", id, r.id)
			}
			if i > 0 && (recs[i-1].ended == nil || r.started.Before(*recs[i-1].ended)) {
				t.Errorf("deployment %d: usage records %d and %d overlap", id, recs[i-1].id, r.id)
			}
		}
		if wantOpen := min(want.version(), 1); open != wantOpen {
			t.Errorf("deployment %d: %d open usage records, want %d", id, open, wantOpen)
		}
		if len(recs) != len(story) {
			t.Errorf("deployment %d: %d usage records, the audit trail tells of %d", id, len(recs), len(story))
			continue
		}
		for i, r := range recs {
			s := story[i]
			end := r.metered
			if s.closed != 0 {
				end = s.to
				closed++
			}
			if (r.ended == nil) != (s.closed == 0) || !decimal.RequireFromString(r.rate).Equal(s.rate) ||
				r.openedBy == nil || *r.openedBy != s.opened || (s.closed != 0 && (r.closedBy == nil || *r.closedBy != s.closed)) {
				t.Errorf("deployment %d: usage record %d (rate %s, ended %v, events %v/%v) is not the audit trail's (rate %s, closed %v, events %d/%d)",
					id, r.id, r.rate, r.ended, deref(r.openedBy), deref(r.closedBy), s.rate, s.closed != 0, s.opened, s.closed)
				continue
			}
			worstSkew = max(worstSkew, r.started.Sub(s.from).Abs())
			if r.ended != nil {
				worstSkew = max(worstSkew, r.ended.Sub(s.to).Abs())
			}
			amount := decimal.RequireFromString(r.amount)
			if again := usageAmount(s.rate, s.from, end); amount.Sub(again).Abs().GreaterThanOrEqual(decimal.New(1, -6)) {
				t.Errorf("deployment %d: usage record %d amounts to %s; from the audit trail, %s × %s to %s is %s",
					id, r.id, amount, s.rate, s.from.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), again)
			}
			checked++
		}
	}
	t.Logf("usage: %d records (%d closed), %d amounts recomputed from the audit trail; largest gap between a record's start or end and its event: %v",
		n, closed, checked, worstSkew)
}

// chaosWant is what a deployment of the chaos test is asked to end as.
type chaosWant int

const (
	chaosDeleted  chaosWant = iota // uninstalled
	chaosUpgraded                  // installed, upgraded to version 2
	chaosKept                      // installed at version 1
)

// version is the version it is to run, 0 for none.
func (w chaosWant) version() int { return map[chaosWant]int{chaosUpgraded: 2, chaosKept: 1}[w] }

// usageAmount is the billing rule, computed here apart from the database's usage_amount: rate × the
// whole seconds from from to to, per hour, rounded to 6 places half to even.
func usageAmount(rate decimal.Decimal, from, to time.Time) decimal.Decimal {
	secs := max(int64(to.Sub(from)/time.Second), 0)
	micro := rate.Shift(6).IntPart() * secs // the amount in millionths, × 3600
	q, rem := micro/3600, micro%3600
	if 2*rem > 3600 || (2*rem == 3600 && q%2 == 1) {
		q++
	}
	return decimal.New(q, -6)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// chaosClient is the consumers' side: it retries what got no answer, through the other API.
type chaosClient struct {
	apis []string
	mu   sync.Mutex
	// unanswered counts requests without an answer (connection refused or cut, a 5xx) by operation;
	// adopted, installs found recorded after such a request.
	unanswered map[string]int
	adopted    int
	conflicts  int
}

// chaosFor is how long the faults go on at most.
const chaosFor = 2 * time.Minute

// A client waits requestDeadline at most for a request to be accepted, unansweredWait before it asks
// again after no answer, conflictWait after a 409 (a deployment still installing).
const (
	requestDeadline = 4 * time.Minute
	unansweredWait  = 500 * time.Millisecond
	conflictWait    = 2 * time.Second
)

func (c *chaosClient) note(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unanswered == nil {
		c.unanswered = map[string]int{}
	}
	c.unanswered[op]++
}

func (c *chaosClient) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("requests without an answer (retried) %v, installs found recorded after one %d, 409s waited out %d", c.unanswered, c.adopted, c.conflicts)
}

// do sends one request to API k%2; a status 0 is no answer.
func (c *chaosClient) do(k int, method, path, token string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, _ := http.NewRequest(method, c.apis[k%len(c.apis)]+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	client := http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// projectDeployment is what a consumer reads of a deployment in its project.
type projectDeployment struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	Version int    `json:"version"`
}

// projectDeployments is what the consumer's project holds, read through API k%2; false without an answer.
func (c *chaosClient) projectDeployments(k int, token string, projectID int64) ([]projectDeployment, bool) {
	status, b := c.do(k, "GET", fmt.Sprintf("/api/user/project/%d/deployments", projectID), token, nil)
	var p struct {
		Deployments []projectDeployment `json:"deployments"`
	}
	if status != 200 || json.Unmarshal(b, &p) != nil {
		return nil, false
	}
	return p.Deployments, true
}

// install requests install k into its own project. A request without an answer may have been recorded:
// the project tells, and only when it holds nothing is the install requested again.
func (c *chaosClient) install(k int, token string, projectID int64) (int64, error) {
	deadline := time.Now().Add(requestDeadline)
	for try := k; time.Now().Before(deadline); try++ {
		status, b := c.do(try, "POST", "/api/deployments/install", token,
			map[string]any{"application_id": 1, "project_id": projectID, "version": 1})
		if status == 202 {
			var r struct {
				DeploymentID int64 `json:"deploymentID"`
			}
			return r.DeploymentID, json.Unmarshal(b, &r)
		}
		if status != 0 && status < 500 {
			return 0, fmt.Errorf("status %d: %s", status, b)
		}
		c.note("install")
		for time.Now().Before(deadline) {
			time.Sleep(unansweredWait)
			try++
			if ds, ok := c.projectDeployments(try, token, projectID); ok {
				if len(ds) > 1 {
					return 0, fmt.Errorf("project %d holds %d deployments after one install request", projectID, len(ds))
				} else if len(ds) == 1 {
					c.mu.Lock()
					c.adopted++
					c.mu.Unlock()
					return ds[0].ID, nil
				}
				break
			}
		}
	}
	return 0, fmt.Errorf("no install accepted within %v", requestDeadline)
}

// delete requests the uninstall of deployment id, waiting out its install (409) and retrying what got
// no answer: a repeated delete is answered 202 again.
func (c *chaosClient) delete(k int, token string, id int64) error {
	deadline := time.Now().Add(requestDeadline)
	for try := k + 1; time.Now().Before(deadline); try++ {
		status, b := c.do(try, "DELETE", fmt.Sprintf("/api/deployments/%d", id), token, nil)
		switch {
		case status == 202:
			return nil
		case status == 409:
			c.mu.Lock()
			c.conflicts++
			c.mu.Unlock()
			time.Sleep(conflictWait)
		case status == 0 || status >= 500:
			c.note("delete")
			time.Sleep(unansweredWait)
		default:
			return fmt.Errorf("delete: status %d: %s", status, b)
		}
	}
	return fmt.Errorf("no delete accepted within %v", requestDeadline)
}

// upgrade requests the upgrade of deployment id to version 2, waiting out its install (409). After a
// request without an answer, a 409 may be that request's effect: the deployment upgrading, or at
// version 2 already, means it was accepted.
func (c *chaosClient) upgrade(k int, token string, projectID, id int64) error {
	deadline := time.Now().Add(requestDeadline)
	for try := k + 1; time.Now().Before(deadline); try++ {
		status, b := c.do(try, "POST", fmt.Sprintf("/api/deployments/%d/upgrade", id), token, map[string]any{"version": 2})
		switch {
		case status == 202:
			return nil
		case status == 409:
			ds, ok := c.projectDeployments(try, token, projectID)
			if ok && len(ds) == 1 && (ds[0].Status == "upgrading" || ds[0].Version == 2) {
				return nil
			}
			c.mu.Lock()
			c.conflicts++
			c.mu.Unlock()
			time.Sleep(conflictWait)
		case status == 0 || status >= 500:
			c.note("upgrade")
			time.Sleep(unansweredWait)
		default:
			return fmt.Errorf("upgrade: status %d: %s", status, b)
		}
	}
	return fmt.Errorf("no upgrade accepted within %v", requestDeadline)
}

// chaosProc is one marketplace process that the test kills and that starts again, as a supervisor
// (systemd, a Kubernetes Deployment) would start it: same role, environment and address each time, a
// log file per incarnation.
type chaosProc struct {
	t             *testing.T
	name          string
	role          string
	bin           string
	env           []string
	url           string
	dir           string
	kills         chan chan killed
	stopped       chan struct{} // closed when supervise returns
	mu            sync.Mutex
	logs          []string // each incarnation's log, in order
	crashes       []string // the end of the log of each incarnation that came up and exited by itself
	startFailures int      // incarnations that exited by themselves before coming up
}

// killed is one SIGKILL: when, and the log of the incarnation it ended.
type killed struct {
	at  time.Time
	log string
}

func newChaosProc(t *testing.T, bin, role, name string, environ map[string]string) *chaosProc {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &chaosProc{t: t, name: name, role: role, bin: bin, dir: t.TempDir(), kills: make(chan chan killed), stopped: make(chan struct{}),
		url: "http://127.0.0.1:" + strconv.Itoa(port)}
	for k, v := range environ {
		p.env = append(p.env, k+"="+v)
	}
	p.env = append(p.env, "MARKETPLACE_ADDR=127.0.0.1:"+strconv.Itoa(port))
	return p
}

// supervise runs the process until ctx is done, starting it again whenever it ends: at once after a
// kill, after half a second when it exited by itself.
func (p *chaosProc) supervise(ctx context.Context) {
	defer close(p.stopped)
	for n := 1; ctx.Err() == nil; n++ {
		logPath := filepath.Join(p.dir, fmt.Sprintf("%s.%d.log", p.name, n))
		f, err := os.Create(logPath)
		if err != nil {
			p.t.Error(err)
			return
		}
		cmd := exec.Command(p.bin, p.role)
		cmd.Env, cmd.Stdout, cmd.Stderr = p.env, f, f
		if err := cmd.Start(); err != nil {
			p.t.Errorf("start %s: %v", p.name, err)
			f.Close()
			return
		}
		p.mu.Lock()
		p.logs = append(p.logs, logPath)
		p.mu.Unlock()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case reply := <-p.kills:
			at := time.Now()
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			f.Close()
			reply <- killed{at: at, log: logPath}
		case err := <-exited:
			f.Close()
			b, _ := os.ReadFile(logPath)
			p.mu.Lock()
			if bytes.Contains(b, []byte(`"msg":"listening"`)) {
				p.crashes = append(p.crashes, fmt.Sprintf("%v\n%s", err, tail(b, 30)))
			} else {
				p.startFailures++
			}
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		case <-ctx.Done():
			cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			f.Close()
		}
	}
}

// kill sends SIGKILL to the running incarnation (the next one, while it is between two); false once
// the process is no longer supervised.
func (p *chaosProc) kill() (killed, bool) {
	reply := make(chan killed, 1)
	select {
	case p.kills <- reply:
		return <-reply, true
	case <-p.stopped:
		return killed{}, false
	}
}

// get is the status of GET path, 0 without an answer.
func (p *chaosProc) get(path string) int {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(p.url + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *chaosProc) logFiles() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.logs)
}

func (p *chaosProc) showLog(t *testing.T) {
	logs := p.logFiles()
	if len(logs) == 0 {
		return
	}
	b, _ := os.ReadFile(logs[len(logs)-1])
	t.Logf("%s (incarnation %d of %d) log:\n%s", p.name, len(logs), len(logs), tail(b, 60))
}

// attemptLog is a line of a process's JSON log, with the fields of an attempt.
type attemptLog struct {
	Time       time.Time `json:"time"`
	Msg        string    `json:"msg"`
	Deployment int64     `json:"deployment"`
	Op         string    `json:"op"`
	Attempt    int       `json:"attempt"`
}

// recorded reports whether the audit trail shows attempt ln's outcome recorded (a status change out of
// its operation's status by that attempt): killed after recording it, before logging it.
func recorded(t *testing.T, db *pgx.Conn, ln attemptLog) bool {
	t.Helper()
	from := map[string]string{"install": "installing", "uninstall": "uninstalling", "upgrade": "upgrading"}[ln.Op]
	var ok bool
	if err := db.QueryRow(context.Background(), `SELECT EXISTS (SELECT FROM audit_events
WHERE resource = 'deployment:' || $1::bigint AND detail->>'from' = $2 AND (detail->>'attempt')::int = $3)`,
		ln.Deployment, from, ln.Attempt).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

// events is the audit trail of a deployment's statuses, for a failure's message.
func events(t *testing.T, db *pgx.Conn, id int64) string {
	rows, _ := db.Query(context.Background(), `SELECT at, action, detail->>'from', detail->>'attempt' FROM audit_events
WHERE resource = 'deployment:' || $1::bigint ORDER BY id`, id)
	var out []string
	var at time.Time
	var action string
	var from, attempt *string
	_, err := pgx.ForEachRow(rows, []any{&at, &action, &from, &attempt}, func() error {
		out = append(out, fmt.Sprintf("%s %s from %v attempt %v", at.Format("15:04:05.000"), action, deref(from), deref(attempt)))
		return nil
	})
	if err != nil {
		return err.Error()
	}
	return strings.Join(out, "; ")
}

func readAttemptLogs(path string) []attemptLog {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var lines []attemptLog
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l attemptLog
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			lines = append(lines, l)
		}
	}
	return lines
}

// fault is one fault injected: a SIGKILL of a process (proc, the log of the incarnation it ended), or
// a restart of Redis or PostgreSQL (down at at, up again at up, the APIs ready ready after up).
type fault struct {
	kind  string
	proc  *chaosProc
	at    time.Time
	log   string
	up    time.Time
	ready time.Duration
}

type faultLog struct {
	start  time.Time
	mu     sync.Mutex
	faults []fault
}

func (l *faultLog) add(f fault) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.faults = append(l.faults, f)
}

func (l *faultLog) count(kind string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, f := range l.faults {
		if f.kind == kind {
			n++
		}
	}
	return n
}

// report logs how long the marketplace took to recover from each fault, read from the processes' logs:
//   - a worker's SIGKILL: until the restarted worker listens, and until every attempt the killed one
//     had started and not ended is taken over (another attempt of it starts, on any worker): its lease
//     lapsing, the reconciler queueing it again, and the wait behind the tasks queued before it;
//   - an api's SIGKILL: until the restarted API listens again;
//   - a Redis restart: until both APIs answer /readyz, and until the first attempt starts from a task
//     delivered after it;
//   - a PostgreSQL restart: until both APIs answer /readyz, and until the first attempt records its
//     outcome after it.
//
// A restart or readiness not back within two minutes fails the test, and so does an attempt never taken
// over.
func (l *faultLog) report(t *testing.T, procs []*chaosProc, db *pgx.Conn) {
	t.Helper()
	var workerLogs [][]attemptLog
	for _, p := range procs {
		if p.role == "worker" {
			for _, path := range p.logFiles() {
				workerLogs = append(workerLogs, readAttemptLogs(path))
			}
		}
	}
	// first is the earliest line after after that matches.
	first := func(after time.Time, match func(attemptLog) bool) (time.Duration, bool) {
		var best time.Time
		for _, lines := range workerLogs {
			for _, ln := range lines {
				if ln.Time.After(after) && match(ln) && (best.IsZero() || ln.Time.Before(best)) {
					best = ln.Time
				}
			}
		}
		return best.Sub(after), !best.IsZero()
	}
	listening := func(p *chaosProc, after time.Time) (time.Duration, bool) {
		for _, path := range p.logFiles() {
			for _, ln := range readAttemptLogs(path) {
				if ln.Msg == "listening" && ln.Time.After(after) {
					return ln.Time.Sub(after), true
				}
			}
		}
		return 0, false
	}
	const limit = 2 * time.Minute
	measured := map[string][]time.Duration{}
	note := func(what string, d time.Duration, ok bool) string {
		if !ok || d > limit {
			t.Errorf("%s: not recovered within %v", what, limit)
			return "never"
		}
		measured[what] = append(measured[what], d)
		return d.Round(time.Millisecond).String()
	}
	l.mu.Lock()
	faults := slices.Clone(l.faults)
	l.mu.Unlock()
	slices.SortFunc(faults, func(a, b fault) int { return a.at.Compare(b.at) })
	for _, f := range faults {
		when := f.at.Sub(l.start).Round(100 * time.Millisecond)
		switch f.kind {
		case "api SIGKILL":
			d, ok := listening(f.proc, f.at)
			t.Logf("%6v %s of %s: listening again after %s", when, f.kind, f.proc.name, note("api SIGKILL: listening again", d, ok))
		case "worker SIGKILL":
			d, ok := listening(f.proc, f.at)
			restart := note("worker SIGKILL: restarted worker listening", d, ok)
			// The attempts the killed incarnation had started and not ended.
			ended := map[[3]any]bool{}
			var started []attemptLog
			for _, ln := range readAttemptLogs(f.log) {
				key := [3]any{ln.Deployment, ln.Op, ln.Attempt}
				switch {
				case ln.Msg == "attempt started":
					started = append(started, ln)
				case ln.Msg == "done" || ln.Msg == "attempt failed" || strings.HasPrefix(ln.Msg, "lease lost") || strings.HasPrefix(ln.Msg, "worker stopping"):
					ended[key] = true
				}
			}
			var orphans []attemptLog
			for _, ln := range started {
				if !ended[[3]any{ln.Deployment, ln.Op, ln.Attempt}] && !recorded(t, db, ln) {
					orphans = append(orphans, ln)
				}
			}
			if len(orphans) == 0 {
				t.Logf("%6v %s of %s: restarted worker listening after %s; no attempt was in flight", when, f.kind, f.proc.name, restart)
				continue
			}
			// Taken over: another attempt of the same operation starts, on any worker, once the lease has
			// lapsed and the reconciler has queued it again (behind whatever else is queued).
			var takeover time.Duration
			for _, o := range orphans {
				// A later attempt may have begun before the kill: the killed one had lost its claim (and
				// its end is not logged), which is no wait at all.
				d, ok := first(o.Time, func(ln attemptLog) bool {
					return ln.Msg == "attempt started" && ln.Deployment == o.Deployment && ln.Op == o.Op && ln.Attempt > o.Attempt
				})
				d = max(d-f.at.Sub(o.Time), 0)
				if !ok {
					t.Errorf("%s of %s at %s: its attempt %d to %s deployment %d was never taken over; the deployment's events: %s",
						f.kind, f.proc.name, f.at.Format(time.RFC3339Nano), o.Attempt, o.Op, o.Deployment, events(t, db, o.Deployment))
				}
				takeover = max(takeover, d)
			}
			measured["worker SIGKILL: attempts in flight taken over"] = append(measured["worker SIGKILL: attempts in flight taken over"], takeover)
			t.Logf("%6v %s of %s: restarted worker listening after %s; its %d attempts in flight all taken over after %v",
				when, f.kind, f.proc.name, restart, len(orphans), takeover.Round(time.Millisecond))
		default: // Redis or PostgreSQL restart
			what, msg := "first attempt started", "attempt started"
			if f.kind == "PostgreSQL restart" {
				what, msg = "first attempt recorded", "done"
			}
			d, ok := first(f.up, func(ln attemptLog) bool { return ln.Msg == msg })
			t.Logf("%6v %s (down %v): both APIs ready %s after it was back, %s after %s", when, f.kind, f.up.Sub(f.at).Round(time.Millisecond),
				note(f.kind+": APIs ready", f.ready, f.ready < limit), what, note(f.kind+": "+what, d, ok))
		}
	}
	var kinds []string
	for k := range measured {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		ds := measured[k]
		slices.Sort(ds)
		t.Logf("recovery, %s: %d faults, median %v, max %v", k, len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
}
