package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/marketplace/marketplace/internal/webhook"
)

// TestStorefrontOrganizations is a team in Chromium: an admin creates an organization and a project in
// it, adds a member by name as a viewer and registers a webhook (its secret shown once); a deployment in
// the organization's project is installed; the admin switches to the organization and sees its
// projects, deployments and bill, and the webhook's deliveries delivered. The viewer sees the same pages
// but its changes (adding a member, creating a project) are refused with the store's message shown, and
// nothing changes; the last admin cannot be removed. Every page passes axe-core.
func TestStorefrontOrganizations(t *testing.T) {
	recv := newReceiver(t)
	recv.start()
	inst := startMarketplace(t, "serve", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + recv.addr})
	_, pub := inst.user(t, "Publisher")
	app := num(t, inst.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 3,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	adminID, admin := inst.user(t, "Team admin")
	viewerID, viewer := inst.user(t, "Team viewer")

	ctx := browserContext(t)
	step := 0
	shot := func(name string) { step++; screenshot(t, ctx, step, name) }
	signInBrowser(t, ctx, inst, admin)

	// An organization and a project of it, from the storefront's forms.
	browse(t, ctx, "create an organization",
		chromedp.Navigate(inst.URL+"/orgs"),
		chromedp.WaitVisible(`#org-name`, chromedp.ByID),
		chromedp.SendKeys(`#org-name`, "Platform", chromedp.ByID),
		chromedp.Submit(`#org-name`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=org-role]`, chromedp.ByQuery),
		chromedp.SendKeys(`#new-project`, "team apps", chromedp.ByID),
		chromedp.Submit(`#new-project`, chromedp.ByID),
		chromedp.WaitVisible(`//ul[@data-testid="org-projects"]/li[contains(., "team apps")]`, chromedp.BySearch))
	shot("organization")
	checkAccessibility(t, ctx, "an organization's page")
	projects := inst.must(t, 200, "GET", "/api/orgs/1/projects", admin, nil).List(t)
	if len(projects) != 1 || projects[0]["name"] != "team apps" {
		t.Fatalf("the organization's projects: %v", projects)
	}
	project := num(t, projects[0]["id"])

	// A member added by name with a role.
	var role string
	browse(t, ctx, "add a viewer",
		chromedp.Navigate(inst.URL+"/orgs/1/members"),
		chromedp.WaitVisible(`#member-user`, chromedp.ByID),
		chromedp.SendKeys(`#member-user`, "Team viewer", chromedp.ByID),
		chromedp.SetValue(`#member-role`, "viewer", chromedp.ByID),
		chromedp.Click(`#add-member`, chromedp.ByID),
		chromedp.WaitVisible(fmt.Sprintf(`[data-testid=role-%d]`, viewerID), chromedp.ByQuery),
		chromedp.Text(fmt.Sprintf(`[data-testid=role-%d]`, viewerID), &role, chromedp.ByQuery))
	shot("members")
	checkAccessibility(t, ctx, "the members page")
	if role != "viewer" {
		t.Fatalf("the new member's role is %q, want viewer", role)
	}

	// The last admin stays: the store's refusal is shown.
	var refusal string
	browse(t, ctx, "remove the last admin",
		chromedp.Click(fmt.Sprintf(`#remove-%d`, adminID), chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=refusal]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=refusal]`, &refusal, chromedp.ByQuery))
	if !strings.Contains(refusal, "last admin") {
		t.Errorf("removing the last admin: the page says %q", refusal)
	}

	// A webhook registered in the browser; its secret is on the page once.
	var secret string
	browse(t, ctx, "register a webhook",
		chromedp.Navigate(inst.URL+"/webhooks"),
		chromedp.WaitVisible(`#hook-url`, chromedp.ByID),
		chromedp.SendKeys(`#hook-url`, recv.url(), chromedp.ByID),
		chromedp.Click(`#event-deployment\.status_changed`, chromedp.ByQuery),
		chromedp.Click(`#register-webhook`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=secret]`, chromedp.ByQuery),
		chromedp.Value(`[data-testid=secret]`, &secret, chromedp.ByQuery))
	shot("webhook-registered")
	checkAccessibility(t, ctx, "the webhooks page with a new secret")
	key, err := webhook.DecodeSecret(secret)
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("the page's secret %q: %v", secret, err)
	}
	recv.mu.Lock()
	recv.key = key
	recv.mu.Unlock()
	hooks := inst.must(t, 200, "GET", "/api/webhooks", admin, nil).List(t)
	if len(hooks) != 1 || hooks[0]["url"] != recv.url() {
		t.Fatalf("the admin's webhooks: %v", hooks)
	}
	hook := num(t, hooks[0]["id"])
	var again string
	browse(t, ctx, "the secret is not shown again", chromedp.Navigate(inst.URL+"/webhooks"),
		chromedp.WaitVisible(`[data-testid=webhooks]`, chromedp.ByQuery), chromedp.OuterHTML(`main`, &again, chromedp.ByQuery))
	if strings.Contains(again, secret) || strings.Contains(again, "whsec_") {
		t.Errorf("the webhooks page shows the secret again")
	}

	// A deployment in the organization's project, billed to it.
	dep := num(t, inst.must(t, 202, "POST", "/api/deployments/install", admin, map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	inst.waitForStatus(t, admin, dep, "installed", 2*time.Minute)

	// The admin switches from its personal account to the organization.
	var location, deployments string
	browse(t, ctx, "switch to the organization",
		chromedp.Navigate(inst.URL+"/deployments"),
		chromedp.WaitVisible(`#switch-to`, chromedp.ByID),
		chromedp.SetValue(`#switch-to`, "1", chromedp.ByID),
		chromedp.Submit(`#switch-to`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=org-deployments]`, chromedp.ByQuery),
		chromedp.Location(&location),
		chromedp.Text(`[data-testid=org-deployments]`, &deployments, chromedp.ByQuery))
	shot("switched")
	if !strings.HasSuffix(location, "/orgs/1") || !strings.Contains(deployments, fmt.Sprintf("#%d", dep)) || !strings.Contains(deployments, "installed") {
		t.Fatalf("after switching, at %s the organization's deployments are %q", location, deployments)
	}
	bill := func(ctx context.Context, who string) string {
		var statement string
		browse(t, ctx, who+"'s view of the bill",
			chromedp.Navigate(inst.URL+"/orgs/1/bills"),
			chromedp.WaitVisible(`[data-testid=org-statement]`, chromedp.ByQuery),
			chromedp.Text(`[data-testid=org-statement]`, &statement, chromedp.ByQuery))
		return statement
	}
	if s := bill(ctx, "the admin"); !strings.Contains(s, fmt.Sprintf("#%d", dep)) || !strings.Contains(s, fmt.Sprintf("user %d", adminID)) {
		t.Errorf("the organization's statement does not bill deployment %d requested by user %d: %q", dep, adminID, s)
	}
	shot("bill")
	checkAccessibility(t, ctx, "an organization's bill")

	// The webhook's deliveries: the deployment's statuses, signed with the secret the page showed, and
	// delivered.
	waitFor(t, time.Minute, "the signed 'installed' event at the receiver", func() bool {
		return len(recv.find("deployment.status_changed", map[string]any{"deployment_id": dep, "to": "installed"})) == 1
	})
	var outcomes []string
	browse(t, ctx, "the webhook's deliveries", chromedp.Navigate(fmt.Sprintf("%s/webhooks/%d", inst.URL, hook)),
		chromedp.WaitVisible(`[data-testid=deliveries]`, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("[data-testid=outcome]")].map(e => e.textContent)`, &outcomes))
	shot("deliveries")
	checkAccessibility(t, ctx, "a webhook's deliveries")
	if !slices.Contains(outcomes, "delivered") {
		t.Errorf("the deliveries page shows the outcomes %v, want the installed event's delivered", outcomes)
	}
	recv.mu.Lock()
	refused := recv.refused
	recv.mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("deliveries whose signature did not verify with the page's secret: %v", refused)
	}

	// The viewer reads everything, and its changes are refused with the store's message; nothing changes.
	vctx := browserContext(t)
	signInBrowser(t, vctx, inst, viewer)
	var overview string
	browse(t, vctx, "the viewer's organization page",
		chromedp.Navigate(inst.URL+"/orgs"),
		chromedp.WaitVisible(`[data-testid=orgs]`, chromedp.ByQuery),
		chromedp.Click(`//a[text()="Platform"]`, chromedp.BySearch),
		chromedp.WaitVisible(`[data-testid=org-deployments]`, chromedp.ByQuery),
		chromedp.Text(`main`, &overview, chromedp.ByQuery))
	if !strings.Contains(overview, "team apps") || !strings.Contains(overview, fmt.Sprintf("#%d", dep)) || !strings.Contains(overview, "viewer") {
		t.Errorf("the viewer's organization page: %q", overview)
	}
	if s := bill(vctx, "the viewer"); !strings.Contains(s, fmt.Sprintf("#%d", dep)) {
		t.Errorf("the viewer does not see the bill: %q", s)
	}
	// What the viewer's attempts could change: the members and roles, the projects (the deployment's row
	// moves by itself, with its health and billing).
	orgState := func() string {
		var digest string
		query(t, inst.DatabaseURL, `SELECT concat_ws('|',
  (SELECT string_agg(concat_ws(':', organization_id, user_id, role, added_at), ',' ORDER BY organization_id, user_id) FROM organization_members),
  (SELECT string_agg(t::text, ',' ORDER BY id) FROM projects t), (SELECT string_agg(t::text, ',' ORDER BY id) FROM organizations t))`, nil, &digest)
		return digest
	}
	before := orgState()
	browse(t, vctx, "the viewer adds a member",
		chromedp.Navigate(inst.URL+"/orgs/1/members"),
		chromedp.WaitVisible(`#member-user`, chromedp.ByID),
		chromedp.SendKeys(`#member-user`, "Publisher", chromedp.ByID),
		chromedp.SetValue(`#member-role`, "admin", chromedp.ByID),
		chromedp.Click(`#add-member`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=refusal]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=refusal]`, &refusal, chromedp.ByQuery))
	shot("viewer-refused")
	checkAccessibility(t, vctx, "a refused change")
	if !strings.Contains(refusal, "(viewer) may not add members") {
		t.Errorf("the viewer's refused add says %q, want the store's message", refusal)
	}
	browse(t, vctx, "the viewer raises its own role",
		// The members page anew: the refusal above must not be read as this one's.
		chromedp.Navigate(inst.URL+"/orgs/1/members"),
		chromedp.WaitVisible(fmt.Sprintf(`#role-of-%d`, viewerID), chromedp.ByID),
		chromedp.SetValue(fmt.Sprintf(`#role-of-%d`, viewerID), "admin", chromedp.ByID),
		chromedp.Click(fmt.Sprintf(`#set-role-%d`, viewerID), chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=refusal]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=refusal]`, &refusal, chromedp.ByQuery))
	if !strings.Contains(refusal, "(viewer) may not change roles") {
		t.Errorf("the viewer's refused role change says %q", refusal)
	}
	browse(t, vctx, "the viewer creates a project",
		chromedp.Navigate(inst.URL+"/orgs/1"),
		chromedp.WaitVisible(`#new-project`, chromedp.ByID),
		chromedp.SendKeys(`#new-project`, "mine", chromedp.ByID),
		chromedp.Submit(`#new-project`, chromedp.ByID),
		chromedp.WaitVisible(`[data-testid=refusal]`, chromedp.ByQuery),
		chromedp.Text(`[data-testid=refusal]`, &refusal, chromedp.ByQuery))
	if !strings.Contains(refusal, "viewer") {
		t.Errorf("the viewer's refused project says %q", refusal)
	}
	var status float64
	browse(t, vctx, "the refusal's status", chromedp.Evaluate(fmt.Sprintf(`fetch("/orgs/1/members", {method: "POST",
  headers: {"X-CSRF-Token": document.querySelector("input[name=csrf]").value, "Content-Type": "application/x-www-form-urlencoded"},
  body: "user=%d&role=admin"}).then(r => r.status)`, viewerID), &status, awaitPromise))
	if status != 403 {
		t.Errorf("the viewer's add answered %v, want 403", status)
	}
	if after := orgState(); after != before {
		t.Errorf("the viewer's refused changes changed the database:\nbefore %s\nafter  %s", before, after)
	}
	members := inst.must(t, 200, "GET", "/api/orgs/1/members", admin, nil).JSON(t)["members"].([]any)
	if len(members) != 2 {
		t.Errorf("members after the viewer's attempts: %v", members)
	}

	// The admin's changes are in the audit trail with the organization and what changed; the viewer's
	// refused ones are not.
	var added, registered int
	for _, e := range inst.must(t, 200, "GET", "/api/audit?limit=500", admin, nil).List(t) {
		detail, _ := e["detail"].(map[string]any)
		switch e["action"] {
		case "POST /orgs/{org}/members":
			if e["actor"] != fmt.Sprintf("user:%d", adminID) || fmt.Sprint(e["organization_id"]) != "1" || detail["role"] != "viewer" ||
				fmt.Sprint(detail["user_id"]) != fmt.Sprint(viewerID) || detail["via"] != "storefront" {
				t.Errorf("the audit event of a member added: %v", e)
			}
			added++
		case "POST /webhooks":
			registered++
		}
	}
	if added != 1 || registered != 1 {
		t.Errorf("the audit trail has %d members added and %d webhooks registered from the storefront, want 1 each", added, registered)
	}

	// A stranger finds no organization.
	_, stranger := inst.user(t, "Stranger")
	sctx := browserContext(t)
	signInBrowser(t, sctx, inst, stranger)
	browse(t, sctx, "a stranger's view", chromedp.Navigate(inst.URL+"/orgs/1/bills"),
		chromedp.Evaluate(`fetch("/orgs/1/members").then(r => r.status)`, &status, awaitPromise))
	if status != 404 {
		t.Errorf("a stranger reading the members: %v, want 404", status)
	}
}
