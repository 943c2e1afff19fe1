package main

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestThreeServeReplicasBillEachSecondOnce runs what the chart may scale out, three `serve` processes
// (each with the billing job every second, the reconciler and workers) on one PostgreSQL and one
// Redis, and checks that the work that must happen once does. Six deployments are installed through
// the three; three follow their application's versions, and when a dearer version is published the
// three reconcilers race to upgrade them; three are deleted. Then:
//
//   - each running second is in exactly one usage record: a deployment's records follow one another
//     without overlap or gap, from the instant it was installed to the instant of its delete (the
//     events that opened and closed them), one split per upgrade, not one per reconciler;
//   - the amounts the three billing jobs stored are the rule's, recomputed here apart from the
//     database; all three billed the same seconds;
//   - months close once: the deleted deployments' usage moved to March 2025 by SQL, the three jobs
//     close every month from March 2025 to last month, each once (one run counts each close), one
//     invoice per user and month, and each record is invoiced its amount, not more.
func TestThreeServeReplicasBillEachSecondOnce(t *testing.T) {
	const deployments = 6
	bin := staticMarketplace(t)
	environ := map[string]string{
		"DATABASE_URL":            tenv.Database(t),
		"REDIS_URL":               tenv.RedisURL(t),
		"KUBECONFIG":              tenv.Kubecfg,
		"MARKETPLACE_ADMIN_TOKEN": "operator-" + testenv.Name(""),
		"K8S_NAMESPACE_PREFIX":    testenv.Name("t"),
		"MARKETPLACE_CACHE_DIR":   t.TempDir(),
		"BILLING_INTERVAL":        "1s",
		"RECONCILE_INTERVAL":      "500ms",
		"DEPLOY_RETRY_BACKOFF":    "500ms",
		"DEPLOY_TIMEOUT":          "2m",
		"LOG_LEVEL":               "info",
		"MARKETPLACE_FETCH_ALLOW": testRepositories(),
		"USER_CREATE_RATE":        "0",
		"HOME":                    os.Getenv("HOME"),
	}
	t.Cleanup(func() { cleanupNamespaces(t, environ["K8S_NAMESPACE_PREFIX"]) })
	serves := []*instance{startProcess(t, bin, "serve", environ), startProcess(t, bin, "serve", environ), startProcess(t, bin, "serve", environ)}
	db := environ["DATABASE_URL"]

	_, pubTok := serves[0].user(t, "publisher")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	inputs := []map[string]any{{"name": "replicaCount", "type": "integer", "default": 0}}
	serves[0].must(t, 201, "POST", "/api/apps/new", pubTok, map[string]any{"name": "hello, no pods", "hourly_rate": 0.36,
		"deployment": spec, "inputs": inputs})
	type consumer struct {
		id      int64
		token   string
		project int64
	}
	consumers := make([]*consumer, 3)
	for i := range consumers {
		c := &consumer{}
		c.id, c.token = serves[i].user(t, fmt.Sprintf("consumer %d", i))
		c.project = num(t, serves[i].must(t, 201, "POST", "/api/user/project/new", c.token, map[string]any{"name": "p"}).JSON(t)["id"])
		consumers[i] = c
	}
	auto := map[int64]bool{}
	ids := make([]int64, deployments)
	for k := range deployments {
		c := consumers[k%3]
		req := map[string]any{"application_id": 1, "project_id": c.project}
		if k%2 == 0 {
			req["upgrade_policy"], req["max_hourly_rate"] = "auto", 1
		}
		ids[k] = num(t, serves[(k+1)%3].must(t, 202, "POST", "/api/deployments/install", c.token, req).JSON(t)["deploymentID"])
		auto[ids[k]] = k%2 == 0
	}
	waitForCount(t, db, "installed", deployments, 3*time.Minute)
	time.Sleep(3 * time.Second) // three billing ticks

	// A dearer version: the three reconcilers each see the auto deployments behind it.
	serves[1].must(t, 201, "POST", "/api/apps/1/versions", pubTok, map[string]any{"hourly_rate": 0.72, "deployment": spec,
		"inputs": inputs, "changelog": "dearer"})
	waitFor(t, 2*time.Minute, "the auto deployments to run version 2", func() bool {
		var n int
		query(t, db, `SELECT count(*) FROM deployments WHERE version = 2 AND status = 'installed'`, nil, &n)
		return n == deployments/2
	})
	time.Sleep(3 * time.Second)
	// Half are deleted, one of each consumer, through another replica than the one that installed them.
	deleted := map[int64]bool{}
	for k := range deployments / 2 {
		serves[(k+2)%3].must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", ids[k]), consumers[k%3].token, nil)
		deleted[ids[k]] = true
	}
	waitForCount(t, db, "uninstalled", deployments/2, 2*time.Minute)
	time.Sleep(3 * time.Second)

	// Each second once: the records of each deployment, against its events and the rule.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	records := usageRecords(t, conn)
	now := time.Now()
	for _, id := range ids {
		rs := records[id]
		wantRecords := 1
		if auto[id] {
			wantRecords = 2 // v1 until the upgrade, v2 after: one split, whichever reconciler asked
		}
		if len(rs) != wantRecords {
			t.Errorf("deployment %d has %d usage records, want %d", id, len(rs), wantRecords)
			continue
		}
		for i, r := range rs {
			if !r.started.Equal(r.openedAt) || (r.ended != nil && !r.ended.Equal(*r.closedAt)) {
				t.Errorf("deployment %d record %d: %v to %v, its events at %v and %v", id, r.id, r.started, r.ended, r.openedAt, r.closedAt)
			}
			if i > 0 && (rs[i-1].ended == nil || !rs[i-1].ended.Equal(r.started)) {
				t.Errorf("deployment %d: record %d starts at %v, the one before ends at %v: seconds billed twice or never", id, r.id, r.started, rs[i-1].ended)
			}
			if i < len(rs)-1 && r.ended == nil {
				t.Errorf("deployment %d: record %d is open with a later one", id, r.id)
			}
			wantRate := "0.36"
			if auto[id] && i == 1 {
				wantRate = "0.72"
			}
			if r.rate.String() != wantRate {
				t.Errorf("deployment %d record %d at %s an hour, want %s", id, r.id, r.rate, wantRate)
			}
			until := r.meteredAt
			if r.ended != nil {
				until = *r.ended
			} else if now.Sub(until) > 10*time.Second || !until.Equal(until.Truncate(time.Second)) {
				t.Errorf("deployment %d record %d: metered as of %v; the jobs meter every whole second", id, r.id, until)
			}
			if want := usageAmount(r.rate, r.started, until); !r.amount.Equal(want) {
				t.Errorf("deployment %d record %d: %s for %v to %v at %s, want %s", id, r.id, r.amount, r.started, until, r.rate, want)
			}
		}
		if last := rs[len(rs)-1]; (last.ended == nil) == deleted[id] {
			t.Errorf("deployment %d: last record ends at %v; want it open exactly while the deployment runs", id, last.ended)
		}
	}
	// All three billed, often in the same second: the numbers above are what three jobs left.
	var seconds, mostRuns, failed int
	query(t, db, `SELECT count(*), coalesce(max(n), 0), (SELECT count(*) FROM billing_runs WHERE error <> '')
FROM (SELECT count(*) AS n FROM billing_runs GROUP BY as_of) r`, nil, &seconds, &mostRuns, &failed)
	if mostRuns != 3 || failed != 0 {
		t.Errorf("billing runs: at most %d in one second over %d seconds, %d failed; want all three replicas' in one second at least, none failed", mostRuns, seconds, failed)
	}

	// Months close once. Each deleted deployment's usage moves to start in the last 1.5 seconds of March
	// 2025, its records as they were to the microsecond (the rest falls in April).
	var shifted int64
	query(t, db, `WITH d AS (SELECT deployment_id, '2025-03-31 23:59:58.5Z'::timestamptz - min(started_at) AS by FROM usage_records
  WHERE deployment_id IN (SELECT id FROM deployments WHERE status = 'uninstalled') GROUP BY deployment_id),
s AS (UPDATE usage_records r SET started_at = r.started_at + d.by, ended_at = r.ended_at + d.by,
  amount = usage_amount(r.hourly_rate, r.started_at + d.by, r.ended_at + d.by), metered_at = r.ended_at + d.by
FROM d WHERE r.deployment_id = d.deployment_id RETURNING 1)
SELECT count(*) FROM s`, nil, &shifted)
	if shifted != int64(deployments/2+2) {
		t.Fatalf("moved %d usage records, want %d", shifted, deployments/2+2)
	}
	months := 0
	for m := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC); m.Before(time.Date(now.UTC().Year(), now.UTC().Month(), 1, 0, 0, 0, 0, time.UTC)); m = m.AddDate(0, 1, 0) {
		months++
	}
	waitFor(t, 2*time.Minute, fmt.Sprintf("the %d months from March 2025 to close", months), func() bool {
		var n int
		query(t, db, `SELECT count(*) FROM billing_periods`, nil, &n)
		return n == months
	})
	time.Sleep(2 * time.Second) // more runs of all three, which must close nothing more
	var periods, closes, invoices, perUserMonth, linesPerRecordMonth int
	query(t, db, `SELECT (SELECT count(*) FROM billing_periods), (SELECT coalesce(sum(periods_closed), 0) FROM billing_runs),
  (SELECT count(*) FROM invoices),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM invoices GROUP BY user_id, period_start) i),
  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
     GROUP BY l.usage_record_id, i.period_start, l.kind) l)`, nil, &periods, &closes, &invoices, &perUserMonth, &linesPerRecordMonth)
	if periods != months || closes != months || perUserMonth != 1 || linesPerRecordMonth != 1 {
		t.Errorf("%d periods closed, %d closes counted by the runs, %d invoices (at most %d for a user and month), at most %d lines for a record and month; want %d, %d, 1, 1",
			periods, closes, invoices, perUserMonth, linesPerRecordMonth, months, months)
	}
	for id, rs := range usageRecords(t, conn) {
		if !deleted[id] {
			continue // this month's, not closed yet
		}
		for _, r := range rs {
			var invoicedText, linesText string
			var adjustments int
			query(t, db, `SELECT r.invoiced_amount::text, coalesce(sum(l.amount), 0)::text, count(*) FILTER (WHERE l.kind = 'adjustment')
FROM usage_records r LEFT JOIN invoice_lines l ON l.usage_record_id = r.id WHERE r.id = $1 GROUP BY r.invoiced_amount`, []any{r.id}, &invoicedText, &linesText, &adjustments)
			invoiced, lines := decimal.RequireFromString(invoicedText), decimal.RequireFromString(linesText)
			if want := usageAmount(r.rate, r.started, *r.ended); !invoiced.Equal(want) || !lines.Equal(want) || adjustments != 0 {
				t.Errorf("record %d (%v to %v at %s): invoiced %s in lines of %s (%d adjustments), want %s once",
					r.id, r.started, r.ended, r.rate, invoiced, lines, adjustments, want)
			}
		}
	}
	// What a consumer sees: one invoice a month its deployment ran in, through any replica (its
	// deleted deployment's usage spans the last seconds of March and April 2025).
	for i, c := range consumers {
		r := serves[(i+1)%3].must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", c.id), c.token, nil).JSON(t)
		if got := len(r["invoices"].([]any)); got != 2 {
			t.Errorf("consumer %d has %d invoices, want March and April 2025", c.id, got)
		}
	}
}

// usageRecord is a row of usage_records with the instants of the events that opened and closed it.
type usageRecord struct {
	id                 int64
	rate, amount       decimal.Decimal
	started, meteredAt time.Time
	ended              *time.Time
	openedAt           time.Time
	closedAt           *time.Time
}

// usageRecords reads every usage record, by deployment, in order.
func usageRecords(t *testing.T, conn *pgx.Conn) map[int64][]usageRecord {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT r.deployment_id, r.id, r.hourly_rate::text, r.amount::text, r.started_at, r.metered_at, r.ended_at, o.at, c.at
FROM usage_records r JOIN audit_events o ON o.id = r.opened_event_id LEFT JOIN audit_events c ON c.id = r.closed_event_id
ORDER BY r.deployment_id, r.started_at, r.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int64][]usageRecord{}
	for rows.Next() {
		var dep int64
		var r usageRecord
		var rate, amount string
		if err := rows.Scan(&dep, &r.id, &rate, &amount, &r.started, &r.meteredAt, &r.ended, &r.openedAt, &r.closedAt); err != nil {
			t.Fatal(err)
		}
		r.rate, r.amount = decimal.RequireFromString(rate), decimal.RequireFromString(amount)
		out[dep] = append(out[dep], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
