package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

// TestNoBillingBySlivers loops upgrades of one deployment: an upgrade that changes nothing is refused
// and changes nothing; an upgrade to a version of the same rate keeps the usage record open; one to
// another rate splits it; past UPGRADES_PER_HOUR the next is refused with 429. Then the records are
// moved into a closed month as pieces of 13 seconds each, too small to cost a cent on their own: the
// invoice charges the deployment its exact usage rounded once, not each piece rounded down.
func TestNoBillingBySlivers(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"UPGRADES_PER_HOUR": "6"})
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	_, pub := mp.user(t, "publisher")
	con, tok := mp.user(t, "consumer")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	inputs := []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1.1, "deployment": spec, "inputs": inputs})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 1.1, "deployment": spec, "inputs": inputs, "changelog": "same price"})
	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 2.2, "deployment": spec, "inputs": inputs, "changelog": "dearer"})

	records := func() int {
		var n int
		query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = 1`, nil, &n)
		return n
	}
	upgrade := func(version int, want int) {
		t.Helper()
		mp.must(t, want, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": version, "inputs": map[string]any{}})
		if want == 202 {
			if d := mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute); num(t, d["version"]) != int64(version) {
				t.Fatalf("after the upgrade to v%d: %v", version, d)
			}
		}
	}

	// Nothing to change: refused, and nothing changed.
	before := snapshot(t, mp.DatabaseURL)
	upgrade(1, 409)
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a refused no-op upgrade changed something")
	}
	upgrade(2, 202) // the same rate: the record stays open
	if n := records(); n != 1 {
		t.Fatalf("%d usage records after an upgrade at the same rate, want 1", n)
	}
	upgrade(2, 409)
	upgrade(3, 202) // another rate: the bill splits
	upgrade(1, 202)
	upgrade(3, 202)
	if n := records(); n != 4 {
		t.Fatalf("%d usage records after three changes of rate, want 4", n)
	}
	var revisions int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM deployment_revisions WHERE deployment_id = 1`, nil, &revisions)
	for current := 3; revisions < 6; revisions++ {
		current = 4 - current // 3, 1, 3...: each a change
		upgrade(current, 202)
	}
	before = snapshot(t, mp.DatabaseURL)
	if r := mp.call(t, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 2, "inputs": map[string]any{}}); r.Status != 429 {
		t.Fatalf("an upgrade past UPGRADES_PER_HOUR: %d %s, want 429", r.Status, r.Body)
	}
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a refused upgrade changed something")
	}
	mp.must(t, 202, "DELETE", "/api/deployments/1", tok, nil)
	mp.waitForStatus(t, tok, 1, "uninstalled", 2*time.Minute)

	// Each record becomes 13 seconds of March 2025: 0.003972 at 1.1/h, 0.007944 at 2.2/h.
	var moved int
	query(t, mp.DatabaseURL, `WITH r AS (SELECT id, '2025-03-10 00:00:00Z'::timestamptz + (row_number() OVER (ORDER BY id) - 1) * interval '13 seconds' AS s
  FROM usage_records WHERE deployment_id = 1)
UPDATE usage_records u SET started_at = r.s, ended_at = r.s + interval '13 seconds', metered_at = r.s + interval '13 seconds',
  amount = usage_amount(u.hourly_rate, r.s, r.s + interval '13 seconds')
FROM r WHERE u.id = r.id RETURNING 1`, nil, &moved)
	var amounts []string
	query(t, mp.DatabaseURL, `SELECT array_agg(amount::text ORDER BY id) FROM usage_records WHERE deployment_id = 1`, nil, &amounts)
	exact, piecewise := decimal.Zero, decimal.Zero
	for _, a := range amounts {
		d := decimal.RequireFromString(a)
		exact = exact.Add(d)
		piecewise = piecewise.Add(d.RoundBank(2))
	}
	want := exact.RoundBank(2)
	if want.Equal(piecewise) {
		t.Fatalf("the pieces %v cost the same rounded one by one (%s) as together (%s): the test shows nothing", amounts, piecewise, want)
	}

	mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", operator, nil)
	invoices := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", con), tok, nil).JSON(t)["invoices"].([]any)
	if len(invoices) != 1 {
		t.Fatalf("invoices: %v, want one for March", invoices)
	}
	inv := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices/%s", con, invoices[0].(map[string]any)["number"]), tok, nil).JSON(t)
	charged := decimal.Zero
	for _, l := range inv["lines"].([]any) {
		charged = charged.Add(decimal.RequireFromString(l.(map[string]any)["charge"].(string)))
	}
	if total := decimal.RequireFromString(inv["total"].(string)); !total.Equal(want) || !charged.Equal(want) {
		t.Fatalf("invoice total %s, lines charging %s for usage of exactly %s (pieces %v): want %s, the exact usage rounded once", total, charged, exact, amounts, want)
	}
}
