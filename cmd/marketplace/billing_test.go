package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestBillingLedger installs the bundled chart on the local cluster and uninstalls it through the API,
// then moves the usage record's two instants back to 2025-03-31 22:00:00.25 and 2025-04-01 01:30:10.9
// by SQL: that is the time passing (the cluster adds nothing to it). The job (every second) or the
// operator closes March and April; the statement, the invoices (JSON and CSV), the publisher's revenue
// and payouts must all agree to the cent, at a 10 % fee in EUR.
//
// March: 7,199 whole seconds × 1.1/h = 2.199694 → charged 2.20. April: A(end) − A(edge) =
// 3.853056 − 2.199694 = 1.653362 → 1.65. Payouts: 2.20 − 0.22 = 1.98; 1.65 − 0.16 (0.165 half to
// even) = 1.49.
func TestBillingLedger(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FEE_PERCENT": "10", "BILLING_CURRENCY": "EUR"})
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	pub, tokPub := mp.user(t, "publisher")
	con, tokCon := mp.user(t, "consumer")
	_, tokOtherPub := mp.user(t, "another publisher")
	_, tokOther := mp.user(t, "another consumer")

	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokPub, map[string]any{"name": "hello", "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokCon, map[string]any{"name": "p"}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tokCon,
		map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	mp.waitForStatus(t, tokCon, dep, "installed", 2*time.Minute)

	// While it runs, every record shows the rule's fields.
	rec := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/%d", con, dep), tokCon, nil).JSON(t)["records"].([]any)[0].(map[string]any)
	for _, field := range []string{"hourly_rate", "started_at", "ended_at", "billed_seconds", "amount", "accrued_amount", "metered_amount", "metered_at"} {
		if _, ok := rec[field]; !ok {
			t.Fatalf("usage record without %s: %v", field, rec)
		}
	}
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), tokCon, nil)
	mp.waitForStatus(t, tokCon, dep, "uninstalled", 2*time.Minute)

	var shifted int64
	query(t, mp.DatabaseURL, `WITH s AS (UPDATE usage_records SET started_at = '2025-03-31 22:00:00.25Z', ended_at = '2025-04-01 01:30:10.9Z',
  amount = usage_amount(hourly_rate, '2025-03-31 22:00:00.25Z', '2025-04-01 01:30:10.9Z') WHERE deployment_id = $1 RETURNING 1)
SELECT count(*) FROM s`, []any{dep}, &shifted)
	if shifted != 1 {
		t.Fatalf("moved %d usage records, want 1", shifted)
	}

	// Months close in order and once ended: the current month cannot close.
	mp.must(t, 409, "POST", "/api/billing/periods/"+time.Now().UTC().Format("2006-01")+"/close", operator, nil)
	march := mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", operator, nil).JSON(t)
	april := mp.must(t, 200, "POST", "/api/billing/periods/2025-04/close", operator, nil).JSON(t)
	if march["total"] != "2.2" || april["total"] != "1.65" || march["currency"] != "EUR" {
		t.Fatalf("closed periods: %v, %v; want totals 2.2 and 1.65 EUR", march, april)
	}
	again := mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", operator, nil).JSON(t)
	if again["closed_at"] != march["closed_at"] || again["total"] != march["total"] {
		t.Fatalf("closing March again: %v, want it as closed: %v", again, march)
	}

	// The consumer's statement of March, its invoices and their CSV.
	st := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/statement?from=2025-03-01&to=2025-04-01", con), tokCon, nil).JSON(t)
	if st["total"] != "2.199694" || num(t, st["seconds"]) != 7199 || st["currency"] != "EUR" {
		t.Fatalf("March statement: %v", st)
	}
	stCSV := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/statement?from=2025-03-01&to=2025-05-01&format=csv", con), tokCon, nil)
	if !strings.HasPrefix(stCSV.ContentType, "text/csv") || !strings.Contains(string(stCSV.Body), ",total,,,,,,12610,3.853056,EUR") {
		t.Fatalf("statement CSV (%s):\n%s", stCSV.ContentType, stCSV.Body)
	}
	invoices := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", con), tokCon, nil).JSON(t)["invoices"].([]any)
	if len(invoices) != 2 {
		t.Fatalf("invoices: %v, want March and April", invoices)
	}
	wantLines := map[string][2]string{"2025-03": {"2.199694", "2.2"}, "2025-04": {"1.653362", "1.65"}}
	for _, i := range invoices {
		number := i.(map[string]any)["number"].(string)
		inv := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices/%s", con, number), tokCon, nil).JSON(t)
		want := wantLines[inv["period"].(string)]
		lines := inv["lines"].([]any)
		line := lines[0].(map[string]any)
		if len(lines) != 1 || line["kind"] != "usage" || line["amount"] != want[0] || line["charge"] != want[1] || inv["total"] != want[1] {
			t.Fatalf("invoice %s: %v, want one usage line of %s charged %s", number, inv, want[0], want[1])
		}
		invCSV := mp.call(t, "GET", fmt.Sprintf("/api/billing/user/%d/invoices/%s?format=csv", con, number), tokCon, nil)
		if !strings.Contains(string(invCSV.Body), fmt.Sprintf("%s,%s,total,,,,,,,%s,EUR", number, inv["period"], fixed2(want[1]))) {
			t.Fatalf("invoice %s as CSV:\n%s", number, invCSV.Body)
		}
	}
	csvByAccept := mp.callWith(t, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", con), tokCon, "text/csv")
	if !strings.HasPrefix(csvByAccept.ContentType, "text/csv") || strings.Count(string(csvByAccept.Body), "\n") != 3 {
		t.Fatalf("invoices with Accept: text/csv (%s):\n%s", csvByAccept.ContentType, csvByAccept.Body)
	}

	// The publisher's revenue over both months and the payouts of each.
	rev := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/publisher/%d?from=2025-03-01&to=2025-05-01", pub), tokPub, nil).JSON(t)
	if rev["gross"] != "3.853056" || rev["fee"] != "0.385306" || rev["net"] != "3.46775" || rev["currency"] != "EUR" {
		t.Fatalf("revenue: %v", rev)
	}
	for period, want := range map[string][3]string{"2025-03": {"2.2", "0.22", "1.98"}, "2025-04": {"1.65", "0.16", "1.49"}} {
		p := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/publisher/%d/payouts/%s", pub, period), tokPub, nil).JSON(t)
		if p["gross"] != want[0] || p["fee"] != want[1] || p["net"] != want[2] {
			t.Fatalf("payout of %s: %v, want gross/fee/net %v", period, p, want)
		}
	}

	// Runs and the metric are the operator's. The job runs every second; the test may get here first.
	waitFor(t, 10*time.Second, "a billing run recorded", func() bool {
		return len(mp.must(t, 200, "GET", "/api/billing/runs", operator, nil).JSON(t)["runs"].([]any)) > 0
	})
	if metrics := string(mp.must(t, 200, "GET", "/metrics", operator, nil).Body); !strings.Contains(metrics, "marketplace_billing_last_success_timestamp_seconds ") {
		t.Fatalf("no billing metric in /metrics")
	}

	// Tenancy: another consumer or publisher finds none of it.
	for _, c := range []struct{ token, method, path string }{
		{tokOther, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", con)},
		{tokOther, "GET", fmt.Sprintf("/api/billing/user/%d/invoices/%s", con, invoices[0].(map[string]any)["number"])},
		{tokOther, "GET", fmt.Sprintf("/api/billing/user/%d/statement", con)},
		{tokOther, "GET", fmt.Sprintf("/api/billing/user/%d/statement?format=csv", con)},
		{tokOtherPub, "GET", fmt.Sprintf("/api/billing/publisher/%d", pub)},
		{tokOtherPub, "GET", fmt.Sprintf("/api/billing/publisher/%d/payouts/2025-03", pub)},
		{tokCon, "GET", fmt.Sprintf("/api/billing/publisher/%d", pub)},
		{tokPub, "GET", fmt.Sprintf("/api/billing/user/%d/statement", con)},
		{tokCon, "GET", "/api/billing/runs"},
		{tokCon, "POST", "/api/billing/periods/2025-05/close"},
	} {
		if r := mp.call(t, c.method, c.path, c.token, nil); r.Status != 404 {
			t.Fatalf("%s %s by another user: %d %s, want 404", c.method, c.path, r.Status, r.Body)
		}
	}
	mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/statement", con), operator, nil)
	mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/publisher/%d", pub), operator, nil)
}

func fixed2(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i == 2 {
		return s + "0"
	}
	return s
}

// callWith sends a GET-like request with an Accept header.
func (inst *instance) callWith(t *testing.T, method, path, token, accept string) response {
	t.Helper()
	req, err := http.NewRequest(method, inst.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Body: b}
}
