package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/webhook"
)

// TestCLIOrgs drives mpctl's organization commands against a real marketplace: an admin creates an
// organization, adds members by id and by name, changes a role, creates a project with --org, and a
// deployer is refused what its role does not allow (exit 3, the server's 403 detail); the last admin
// stays.
func TestCLIOrgs(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	cli := buildMpctl(t)
	_, tokAdmin := mp.user(t, "cli admin")
	deployer, tokDeployer := mp.user(t, "cli deployer")
	viewer, _ := mp.user(t, "cli viewer")
	as := func(token string) []string {
		return []string{"MARKETPLACE_URL=" + mp.URL, "MARKETPLACE_TOKEN=" + token}
	}
	run := func(token string, args ...string) result {
		t.Helper()
		r := cli.run(t, as(token), args...)
		if r.code != 0 {
			t.Fatalf("mpctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}

	if out := run(tokAdmin, "orgs", "create", "cli team").stdout; !strings.Contains(out, "Created organization 1 (cli team); you are its admin") {
		t.Fatalf("orgs create said %q", out)
	}
	run(tokAdmin, "orgs", "members", "add", "1", fmt.Sprint(deployer), "--role", "viewer")
	if out := run(tokAdmin, "orgs", "members", "add", "1", "cli viewer", "--role", "viewer").stdout; !strings.Contains(out, fmt.Sprintf("Added user %d (cli viewer)", viewer)) {
		t.Fatalf("members add by name said %q", out)
	}
	run(tokAdmin, "orgs", "members", "set-role", "1", "cli deployer", "deployer")
	members := run(tokAdmin, "orgs", "members", "list", "1").stdout
	for _, want := range []string{"cli admin", "admin", "cli deployer", "deployer", "cli viewer", "viewer"} {
		if !strings.Contains(members, want) {
			t.Fatalf("members list does not show %q:\n%s", want, members)
		}
	}
	if out := run(tokDeployer, "orgs", "list").stdout; !strings.Contains(out, "cli team") || !strings.Contains(out, "deployer") {
		t.Fatalf("the deployer's orgs list:\n%s", out)
	}
	if out := run(tokAdmin, "projects", "create", "team project", "--org", "1").stdout; !strings.Contains(out, "of organization 1") {
		t.Fatalf("projects create --org said %q", out)
	}
	// --org reads the organization's projects, deployments and bills, for its members.
	if out := run(tokDeployer, "projects", "list", "--org", "1").stdout; !strings.Contains(out, "team project") {
		t.Fatalf("projects list --org:\n%s", out)
	}
	if out := run(tokAdmin, "projects", "list").stdout; strings.Contains(out, "team project") {
		t.Fatalf("the admin's own projects list the organization's:\n%s", out)
	}
	if out := run(tokDeployer, "bills", "statement", "--org", "1").stdout; !strings.Contains(out, "Statement of organization 1") {
		t.Fatalf("bills statement --org:\n%s", out)
	}
	run(tokDeployer, "bills", "invoices", "--org", "1")
	appFile := filepath.Join(t.TempDir(), "app.yaml")
	writeFile(t, appFile, "name: team web\nhourly_rate: 1.25\ndeployment:\n  type: k8s\n  repoURL: "+tenv.ChartRepo+"\n  chartName: hello-web\n")
	run(tokAdmin, "apps", "publish", "-f", appFile, "--org", "1")
	orgApps := mp.must(t, 200, "GET", "/api/orgs/1/apps", tokDeployer, nil).List(t)
	if len(orgApps) != 1 || orgApps[0]["name"] != "team web" || num(t, orgApps[0]["organization_id"]) != 1 || fmt.Sprint(orgApps[0]["hourly_rate"]) != "1.25" {
		t.Fatalf("the organization's applications after apps publish --org: %v", orgApps)
	}
	if out := run(tokDeployer, "deployments", "list", "--org", "1", "-o", "json").stdout; strings.TrimSpace(out) != "[]" {
		t.Fatalf("deployments list --org of an organization without any:\n%s", out)
	}

	// Refused: the deployer manages no members and creates no project; the last admin stays.
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden", "deployer"}, "orgs", "members", "set-role", "1", fmt.Sprint(deployer), "admin")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden"}, "orgs", "members", "add", "1", "cli admin", "--role", "admin")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden"}, "projects", "create", "mine", "--org", "1")
	cli.expectFailure(t, as(tokAdmin), 1, []string{"last admin"}, "orgs", "members", "remove", "1", "cli admin")
	cli.expectFailure(t, as(tokAdmin), 2, []string{"owner"}, "orgs", "members", "set-role", "1", "cli viewer", "owner")

	// A removed member no longer finds the organization.
	run(tokAdmin, "orgs", "members", "remove", "1", "cli deployer")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Not Found"}, "orgs", "members", "list", "1")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Not Found"}, "projects", "list", "--org", "1")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Not Found"}, "bills", "statement", "--org", "1")
}

// TestCLIWebhooks drives mpctl's webhook commands against a real marketplace: create prints the secret
// once, list shows the webhook without it, deliveries shows the install request's event waiting in the
// outbox (no worker runs), delete removes it; a private address, an unknown event and another user's
// webhook are refused with the server's message and exit code.
func TestCLIWebhooks(t *testing.T) {
	recv := newReceiver(t)
	mp := startMarketplace(t, "api", map[string]string{"MARKETPLACE_FETCH_ALLOW": testRepositories() + "," + recv.addr})
	cli := buildMpctl(t)
	_, tok := mp.user(t, "hook owner")
	_, other := mp.user(t, "someone else")
	as := func(token string) []string {
		return []string{"MARKETPLACE_URL=" + mp.URL, "MARKETPLACE_TOKEN=" + token}
	}
	run := func(token string, args ...string) string {
		t.Helper()
		r := cli.run(t, as(token), args...)
		if r.code != 0 {
			t.Fatalf("mpctl %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}

	cli.expectFailure(t, as(tok), 2, []string{"--event"}, "webhooks", "create", recv.url())
	cli.expectFailure(t, as(tok), 1, []string{"private"}, "webhooks", "create", "http://10.1.2.3/hook", "--event", "invoice.closed")
	cli.expectFailure(t, as(tok), 1, []string{`"deployment.deleted" is not an event type`}, "webhooks", "create", recv.url(), "--event", "deployment.deleted")

	out := run(tok, "webhooks", "create", recv.url(), "--event", "deployment.status_changed", "--event", "invoice.closed")
	m := regexp.MustCompile(`Registered webhook (\d+) for deployment.status_changed, invoice.closed\nSigning secret \(shown only now\): (whsec_\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("webhooks create said %q", out)
	}
	if key, err := webhook.DecodeSecret(m[2]); err != nil || len(key) < 24 {
		t.Fatalf("the printed secret %q: %v", m[2], err)
	}
	hook := m[1]
	if list := run(tok, "webhooks", "list"); !strings.Contains(list, recv.url()) || !strings.Contains(list, "deployment.status_changed,invoice.closed") || strings.Contains(list, "whsec_") {
		t.Fatalf("webhooks list:\n%s", list)
	}
	if list := run(tok, "webhooks", "list", "-o", "json"); strings.Contains(list, "whsec_") || strings.Contains(list, "secret") {
		t.Fatalf("webhooks list -o json shows the secret:\n%s", list)
	}
	if list := run(other, "webhooks", "list"); strings.Contains(list, recv.url()) {
		t.Fatalf("another user lists the webhook:\n%s", list)
	}

	// An install request's event waits in the outbox: pending, no attempt yet.
	_, pub := mp.user(t, "publisher")
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project})
	deliveries := run(tok, "webhooks", "deliveries", hook)
	if lines := strings.Split(strings.TrimSpace(deliveries), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "deployment.status_changed") ||
		!strings.Contains(lines[1], "pending") || !strings.Contains(lines[1], "msg_") {
		t.Fatalf("webhooks deliveries:\n%s", deliveries)
	}
	cli.expectFailure(t, as(other), 3, []string{"Not Found"}, "webhooks", "deliveries", hook)
	cli.expectFailure(t, as(other), 3, []string{"Not Found"}, "webhooks", "delete", hook)
	cli.expectFailure(t, as(tok), 2, []string{"not a webhook id"}, "webhooks", "delete", "first")

	if out := run(tok, "webhooks", "delete", hook); !strings.Contains(out, "Deleted webhook "+hook) {
		t.Fatalf("webhooks delete said %q", out)
	}
	if list := run(tok, "webhooks", "list"); strings.Contains(list, recv.url()) {
		t.Fatalf("webhooks list after the delete:\n%s", list)
	}
	cli.expectFailure(t, as(tok), 3, []string{"Not Found"}, "webhooks", "deliveries", hook)
}
