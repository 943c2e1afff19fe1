package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/shopspring/decimal"
)

// signInBrowser signs token in, in the browser context ctx, and waits for the catalog.
func signInBrowser(t *testing.T, ctx context.Context, inst *instance, token string) {
	t.Helper()
	browse(t, ctx, "sign in",
		chromedp.Navigate(inst.URL+"/signin"),
		chromedp.WaitVisible(`#token`, chromedp.ByID),
		chromedp.SendKeys(`#token`, token, chromedp.ByID),
		chromedp.Submit(`#token`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=count]`, chromedp.ByQuery))
}

// waitForDeployment waits, on a deployment's page and without reloading it, until its status is
// installed at version.
func waitForDeployment(t *testing.T, ctx context.Context, step string, version int) {
	t.Helper()
	browse(t, ctx, step, chromedp.Poll(fmt.Sprintf(`document.querySelector("[data-testid=status] .status-installed") !== null &&
  document.querySelector("[data-testid=version]").textContent.trim() === "%d"`, version), nil, chromedp.WithPollingTimeout(stepTimeout-10*time.Second)))
}

// TestStorefrontDayTwo is a consumer's second day, in Chromium: the install form generated from the
// chart's values.schema.json (a select for an enum, bounds, a required value, descriptions; the page
// refuses a required value left empty and a number out of bounds, the API a value of the wrong type,
// shown next to its field), then, once installed, the bill accruing, an upgrade to a new version and a
// rollback, each confirmed, with the revisions shown; a delete; and the invoice of a closed month with
// its lines and its CSV. Every new page passes axe-core; screenshots go to .local/screenshots.
func TestStorefrontDayTwo(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	_, pub := inst.user(t, "Publisher")
	appID := formWebApp(t, inst, pub, 0.5)
	consumerID, token := inst.user(t, "Consumer")
	inst.must(t, 201, "POST", "/api/user/project/new", token, map[string]any{"name": "web"})

	ctx := browserContext(t)
	step := 0
	shot := func(name string) { step++; screenshot(t, ctx, step, name) }
	signInBrowser(t, ctx, inst, token)

	// The form is the application's inputs with what the chart's schema says of each.
	var form map[string]any
	browse(t, ctx, "the generated form",
		chromedp.Navigate(fmt.Sprintf("%s/apps/%d", inst.URL, appID)),
		chromedp.WaitVisible(`[data-testid=install-form]`, chromedp.ByQuery),
		chromedp.Evaluate(`(() => { const el = id => document.getElementById(id); return {
  rcType: el("input-0").type, rcMin: el("input-0").min, rcMax: el("input-0").max, rcPlaceholder: el("input-0").placeholder,
  rcHelp: el("input-0-help").textContent,
  greetingRequired: el("input-1").required, greetingPattern: el("input-1").pattern, greetingHelp: el("input-1-help").textContent,
  debugType: el("input-2").type, debugChecked: el("input-2").checked,
  svcTag: el("input-3").tagName, svcOptions: [...el("input-3").options].map(o => o.value).join(","),
  portType: el("input-4").type, portPlaceholder: el("input-4").placeholder}; })()`, &form))
	shot("generated-form")
	checkAccessibility(t, ctx, "the generated install form")
	want := map[string]any{"rcType": "number", "rcMin": "0", "rcMax": "5", "rcPlaceholder": "1",
		"greetingRequired": true, "greetingPattern": "^[A-Za-z ,!]+$", "debugType": "checkbox", "debugChecked": false,
		"svcTag": "SELECT", "svcOptions": ",ClusterIP,NodePort", "portType": "text", "portPlaceholder": "80"}
	for k, v := range want {
		if form[k] != v {
			t.Errorf("form %s = %v, want %v", k, form[k], v)
		}
	}
	if !strings.Contains(fmt.Sprint(form["rcHelp"]), "How many pods serve the page") || !strings.Contains(fmt.Sprint(form["greetingHelp"]), "letters, spaces") {
		t.Errorf("the schema's descriptions are not shown: %q, %q", form["rcHelp"], form["greetingHelp"])
	}

	// The page refuses a required value left empty and a number above the schema's maximum.
	var missing, overflow bool
	var location string
	browse(t, ctx, "submit without the required greeting",
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.getElementById("input-1").validity.valueMissing`, &missing),
		chromedp.SendKeys(`#input-0`, "9", chromedp.ByID),
		chromedp.SendKeys(`#input-1`, "Hello", chromedp.ByID),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.getElementById("input-0").validity.rangeOverflow`, &overflow),
		chromedp.Location(&location))
	shot("refused-in-page")
	if !missing || !overflow || !strings.HasSuffix(location, fmt.Sprintf("/apps/%d", appID)) {
		t.Fatalf("the page let through an empty required value (%v) or 9 above a maximum of 5 (%v); at %s", missing, overflow, location)
	}

	// A port written as words: the input takes text, the chart's schema an integer; the API refuses it
	// and the page shows why next to the field.
	var fieldError string
	browse(t, ctx, "submit a wrong type",
		chromedp.SetValue(`#input-0`, "1", chromedp.ByID),
		chromedp.SendKeys(`#input-4`, "eighty", chromedp.ByID),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#input-4-error`, chromedp.ByID),
		chromedp.Text(`#input-4-error`, &fieldError, chromedp.ByID))
	shot("wrong-type-refused-by-api")
	checkAccessibility(t, ctx, "the install form with the API's refusal")
	if !strings.Contains(fieldError, "inputs.service.port") || !strings.Contains(fieldError, "want integer") {
		t.Errorf("next to service.port: %q, want the schema's refusal naming the input", fieldError)
	}

	// Preview, confirm, installed.
	browse(t, ctx, "preview and install",
		chromedp.Evaluate(`document.getElementById("input-4").value = ""; true`, nil),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=cost]`, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Confirm and install"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status]`, chromedp.ByQuery),
		chromedp.Location(&location))
	m := regexp.MustCompile(`/deployments/(\d+)$`).FindStringSubmatch(location)
	if m == nil {
		t.Fatalf("after confirming, the browser is at %s", location)
	}
	deploymentPath := m[0]
	waitForDeployment(t, ctx, "installed", 1)
	shot("installed")

	// The bill accrues in the page.
	var firstAccrued, accrued string
	browse(t, ctx, "the bill accrues",
		chromedp.Text(`[data-testid=accrued]`, &firstAccrued, chromedp.ByQuery),
		// Accruing: the amount changes in place and is above zero (at 0.5 an hour, a cent takes 72 s).
		chromedp.Poll(fmt.Sprintf(`(t => t !== %q && Number(t) > 0)(document.querySelector("[data-testid=accrued]").textContent)`, firstAccrued), nil, chromedp.WithPollingTimeout(30*time.Second)),
		chromedp.Text(`[data-testid=accrued]`, &accrued, chromedp.ByQuery))
	if a, err := decimal.NewFromString(accrued); err != nil || !a.IsPositive() {
		t.Errorf("accrued %q, want a positive amount", accrued)
	}
	shot("accruing")

	// Its publisher publishes version 2; the consumer upgrades to it, confirming first.
	inst.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", appID), pub, map[string]any{"hourly_rate": 0.75, "changelog": "Three replicas by default.",
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "form-web"},
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 3}, {"name": "greeting", "type": "string"},
			{"name": "debug", "type": "boolean"}, {"name": "service.type", "type": "string"}, {"name": "service.port"}}})
	var consequence string
	browse(t, ctx, "upgrade",
		chromedp.Navigate(inst.URL+deploymentPath),
		chromedp.WaitVisible(`#version`, chromedp.ByID),
		chromedp.SetValue(`#version`, "2", chromedp.ByID),
		chromedp.Click(`#upgrade`, chromedp.ByID),
		chromedp.WaitVisible(`//button[text()="Yes, upgrade"]`, chromedp.BySearch),
		chromedp.Text(`main`, &consequence, chromedp.ByQuery))
	shot("confirm-upgrade")
	checkAccessibility(t, ctx, "the upgrade confirmation")
	if !strings.Contains(consequence, "to version 2") {
		t.Errorf("the confirmation says %q, want the version it upgrades to", consequence)
	}
	browse(t, ctx, "confirm the upgrade", chromedp.Click(`//button[text()="Yes, upgrade"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#live`, chromedp.ByID))
	waitForDeployment(t, ctx, "upgraded", 2)
	revisions := func(name string) []string {
		var rows []string
		browse(t, ctx, name,
			chromedp.Navigate(inst.URL+deploymentPath),
			chromedp.WaitVisible(`[data-testid=revisions]`, chromedp.ByQuery),
			chromedp.Evaluate(`[...document.querySelectorAll("[data-testid=revisions] tbody tr")].map(r => r.cells[0].textContent + ":" + r.cells[1].textContent)`, &rows))
		return rows
	}
	// The latest revision first: a long history shows its newest page.
	if rows := revisions("revisions after the upgrade"); strings.Join(rows, " ") != "2:2 1:1" {
		t.Errorf("revisions after the upgrade: %v, want 2:2 1:1 (revision:version)", rows)
	}
	shot("upgraded")

	// Roll back, confirming first: a third revision, of version 1.
	browse(t, ctx, "roll back",
		chromedp.Click(`#rollback`, chromedp.ByID),
		chromedp.WaitVisible(`//button[text()="Yes, rollback"]`, chromedp.BySearch))
	shot("confirm-rollback")
	checkAccessibility(t, ctx, "the rollback confirmation")
	browse(t, ctx, "confirm the rollback", chromedp.Click(`//button[text()="Yes, rollback"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#live`, chromedp.ByID))
	waitForDeployment(t, ctx, "rolled back", 1)
	if rows := revisions("revisions after the rollback"); strings.Join(rows, " ") != "3:1 2:2 1:1" {
		t.Errorf("revisions after the rollback: %v, want 3:1 2:2 1:1", rows)
	}
	shot("rolled-back")
	checkAccessibility(t, ctx, "the deployment page with its revisions")

	// Delete, confirming first.
	browse(t, ctx, "delete",
		chromedp.Click(`#delete`, chromedp.ByID),
		chromedp.WaitVisible(`//button[text()="Yes, delete"]`, chromedp.BySearch),
		chromedp.Click(`//button[text()="Yes, delete"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status] .status-uninstalled`, chromedp.ByQuery))
	shot("deleted")

	// Its usage, moved into March 2025, is invoiced when the operator closes that month.
	dep, _ := strconv.ParseInt(m[1], 10, 64)
	var moved int
	query(t, inst.DatabaseURL, `WITH s AS (UPDATE usage_records SET started_at = '2025-03-10 10:00:00Z'::timestamptz + (id % 10) * interval '2 hours',
  ended_at = '2025-03-10 11:00:00Z'::timestamptz + (id % 10) * interval '2 hours',
  amount = usage_amount(hourly_rate, '2025-03-10 10:00:00Z'::timestamptz + (id % 10) * interval '2 hours', '2025-03-10 11:00:00Z'::timestamptz + (id % 10) * interval '2 hours')
  WHERE deployment_id = $1 RETURNING 1) SELECT count(*) FROM s`, []any{dep}, &moved)
	if moved < 2 {
		t.Fatalf("moved %d usage records, want one per rate at least (0.5 and 0.75)", moved)
	}
	inst.must(t, 200, "POST", "/api/billing/periods/2025-03/close", inst.Environ["MARKETPLACE_ADMIN_TOKEN"], nil)
	apiInvoice := inst.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", consumerID), token, nil).JSON(t)["invoices"].([]any)[0].(map[string]any)
	number := apiInvoice["number"].(string)

	var lines int
	var total, csvText string
	browse(t, ctx, "invoices",
		chromedp.Navigate(inst.URL+"/bills"),
		chromedp.Click(`//a[text()="All invoices"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=invoices]`, chromedp.ByQuery))
	shot("invoices")
	checkAccessibility(t, ctx, "the invoices page")
	browse(t, ctx, "one invoice",
		chromedp.Click(fmt.Sprintf(`//a[text()=%q]`, number), chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=invoice-lines]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("[data-testid=invoice-lines] tbody tr").length`, &lines),
		chromedp.Text(`[data-testid=invoice-total]`, &total, chromedp.ByQuery),
		chromedp.Evaluate(`fetch(document.querySelector("[data-testid=invoice-csv]").href).then(r => r.text())`, &csvText, awaitPromise))
	shot("invoice")
	checkAccessibility(t, ctx, "an invoice")
	wantTotal, _ := decimal.NewFromString(fmt.Sprint(apiInvoice["total"]))
	if lines != moved || total != wantTotal.StringFixed(2)+" USD" {
		t.Errorf("the invoice shows %d lines and %q, want %d lines and %s USD as the API says", lines, total, moved, wantTotal.StringFixed(2))
	}
	csvLines := strings.Split(strings.TrimSpace(csvText), "\n")
	if len(csvLines) != moved+2 || !strings.HasPrefix(csvLines[0], "invoice,period,kind") || !strings.HasSuffix(csvLines[len(csvLines)-1], wantTotal.StringFixed(2)+",USD") {
		t.Errorf("the invoice's CSV:\n%s", csvText)
	}

	// Another user finds neither the invoice nor its CSV.
	_, otherToken := inst.user(t, "Other consumer")
	other := browserContext(t)
	signInBrowser(t, other, inst, otherToken)
	var status float64
	browse(t, other, "another user's invoice",
		chromedp.Evaluate(fmt.Sprintf(`fetch("/bills/invoices/%s/csv").then(r => r.status)`, number), &status, awaitPromise))
	if status != 404 {
		t.Errorf("another user fetching the invoice's CSV: status %v, want 404", status)
	}
}

// TestStorefrontVM installs one vm application through the storefront: its page shows the guest's IP
// address and the tail of its serial console, live.
func TestStorefrontVM(t *testing.T) {
	inst := startMarketplace(t, "serve", vmEnv(nil))
	token := publishVM(t, inst, "test-guest.qcow2")
	ctx := browserContext(t)
	step := 0
	shot := func(name string) { step++; screenshot(t, ctx, step, name) }
	signInBrowser(t, ctx, inst, token)

	var ip, console string
	browse(t, ctx, "install the vm",
		chromedp.Navigate(inst.URL+"/apps/1"),
		chromedp.WaitVisible(`[data-testid=install-form]`, chromedp.ByQuery),
		chromedp.SendKeys(`textarea[name="in.ssh_authorized_keys"]`, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDmp consumer@laptop", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Review cost and preview"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=cost]`, chromedp.ByQuery))
	shot("vm-preview")
	browse(t, ctx, "watch it boot",
		chromedp.Click(`//button[text()="Confirm and install"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status] .status-installed`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=ip]`, &ip, chromedp.ByQuery),
		chromedp.Poll(`(document.querySelector("pre.console") || {textContent: ""}).textContent.includes("MARKETPLACE-SEED")`, nil, chromedp.WithPollingTimeout(60*time.Second)),
		chromedp.Text(`pre.console`, &console, chromedp.ByQuery))
	shot("vm-installed")
	checkAccessibility(t, ctx, "a vm deployment's page")
	if !regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`).MatchString(strings.TrimSpace(ip)) {
		t.Errorf("the page shows the IP address %q", ip)
	}
	if !strings.Contains(console, "keys=1") {
		t.Errorf("the console tail does not show the seed with the consumer's key: %q", console)
	}
	browse(t, ctx, "delete the vm",
		chromedp.Click(`#delete`, chromedp.ByID),
		chromedp.WaitVisible(`//button[text()="Yes, delete"]`, chromedp.BySearch),
		chromedp.Click(`//button[text()="Yes, delete"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=status] .status-uninstalled`, chromedp.ByQuery))
	shot("vm-deleted")
}
