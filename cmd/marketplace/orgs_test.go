package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestOrgTeamRoles is a team of four users, one per role, in one organization, and two outsiders (a
// stranger and the admin of another organization). Each does what its role allows; what it does not is
// refused with 403 (a member) or 404 (anyone else), and the database does not change.
func TestOrgTeamRoles(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	admin, tokAdmin := mp.user(t, "org admin")
	deployer, tokDeployer := mp.user(t, "org deployer")
	viewerName := "org viewer " + strings.ReplaceAll(t.Name(), "/", "-")
	viewer, tokViewer := mp.user(t, viewerName)
	publisher, tokPublisher := mp.user(t, "org publisher")
	stranger, tokStranger := mp.user(t, "stranger")
	_, tokOtherAdmin := mp.user(t, "another org's admin")

	org := num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokAdmin, map[string]any{"name": "team"}).JSON(t)["id"])
	otherOrg := num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokOtherAdmin, map[string]any{"name": "other team"}).JSON(t)["id"])
	otherProject := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokOtherAdmin, map[string]any{"name": "theirs", "organization_id": otherOrg}).JSON(t)["id"])
	members := fmt.Sprintf("/api/orgs/%d/members", org)
	mp.must(t, 201, "POST", members, tokAdmin, map[string]any{"user_id": deployer, "role": "deployer"})
	if m := mp.must(t, 201, "POST", members, tokAdmin, map[string]any{"name": viewerName, "role": "viewer"}).JSON(t); num(t, m["user_id"]) != viewer {
		t.Fatalf("member added by name: %v, want user %d", m, viewer)
	}
	mp.must(t, 201, "POST", members, tokAdmin, map[string]any{"user_id": publisher, "role": "publisher"})
	if l := mp.must(t, 200, "GET", members, tokViewer, nil).JSON(t)["members"].([]any); len(l) != 4 {
		t.Fatalf("members: %v, want 4", l)
	}

	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	orgApp := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokPublisher,
		map[string]any{"name": "team app", "hourly_rate": 1, "organization_id": org, "deployment": spec}).JSON(t)["id"])
	if a := mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", orgApp), tokStranger, nil).JSON(t); num(t, a["organization_id"]) != org {
		t.Fatalf("the organization's application: %v", a)
	}
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokAdmin, map[string]any{"name": "team project", "organization_id": org}).JSON(t)["id"])
	dep := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tokDeployer,
		map[string]any{"application_id": orgApp, "project_id": project}).JSON(t)["deploymentID"])
	if d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", dep), tokViewer, nil).JSON(t); num(t, d["consumer_id"]) != deployer || num(t, d["organization_id"]) != org {
		t.Fatalf("the team's deployment as its viewer sees it: %v", d)
	}
	// The seed's shape is unchanged: a project created with user_id is that user's.
	own := mp.must(t, 201, "POST", "/api/user/project/new", tokDeployer, map[string]any{"name": "mine", "user_id": deployer}).JSON(t)
	if num(t, own["user_id"]) != deployer || own["organization_id"] != nil {
		t.Fatalf("a personal project: %v", own)
	}

	app := map[string]any{"name": "renamed", "hourly_rate": 1, "deployment": spec}
	cases := []struct {
		name, token, method, path string
		body                      any
		status                    int
	}{
		{"viewer installs", tokViewer, "POST", "/api/deployments/install", map[string]any{"application_id": orgApp, "project_id": project}, 403},
		{"publisher installs", tokPublisher, "POST", "/api/deployments/install", map[string]any{"application_id": orgApp, "project_id": project}, 403},
		{"stranger installs", tokStranger, "POST", "/api/deployments/install", map[string]any{"application_id": orgApp, "project_id": project}, 404},
		{"viewer deletes the deployment", tokViewer, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), nil, 403},
		{"publisher reads the deployment", tokPublisher, "GET", fmt.Sprintf("/api/deployments/%d", dep), nil, 403},
		{"stranger reads the deployment", tokStranger, "GET", fmt.Sprintf("/api/deployments/%d", dep), nil, 404},
		{"publisher reads the project", tokPublisher, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), nil, 403},
		{"stranger reads the project", tokStranger, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), nil, 404},
		{"deployer deletes the project", tokDeployer, "DELETE", fmt.Sprintf("/api/user/project/%d", project), nil, 403},
		{"deployer creates a project", tokDeployer, "POST", "/api/user/project/new", map[string]any{"name": "x", "organization_id": org}, 403},
		{"stranger creates a project", tokStranger, "POST", "/api/user/project/new", map[string]any{"name": "x", "organization_id": org}, 404},
		{"deployer updates the app", tokDeployer, "PUT", fmt.Sprintf("/api/apps/%d", orgApp), app, 403},
		{"stranger updates the app", tokStranger, "PUT", fmt.Sprintf("/api/apps/%d", orgApp), app, 404},
		{"viewer deletes the app", tokViewer, "DELETE", fmt.Sprintf("/api/apps/%d", orgApp), nil, 403},
		{"deployer publishes for the team", tokDeployer, "POST", "/api/apps/new", map[string]any{"name": "x", "hourly_rate": 1, "organization_id": org, "deployment": spec}, 403},
		{"publisher reads the bills", tokPublisher, "GET", fmt.Sprintf("/api/billing/org/%d/invoices", org), nil, 403},
		{"stranger reads the bills", tokStranger, "GET", fmt.Sprintf("/api/billing/org/%d/statement", org), nil, 404},
		{"viewer reads the revenue", tokViewer, "GET", fmt.Sprintf("/api/billing/org/%d/revenue", org), nil, 403},
		// Attacks on membership: a deployer adds nobody and raises nothing; the last admin stays.
		{"deployer adds a member", tokDeployer, "POST", members, map[string]any{"user_id": stranger, "role": "admin"}, 403},
		{"deployer raises its own role", tokDeployer, "PUT", fmt.Sprintf("%s/%d", members, deployer), map[string]any{"role": "admin"}, 403},
		{"viewer removes the admin", tokViewer, "DELETE", fmt.Sprintf("%s/%d", members, admin), nil, 403},
		{"stranger adds itself", tokStranger, "POST", members, map[string]any{"user_id": stranger, "role": "admin"}, 404},
		{"last admin demotes itself", tokAdmin, "PUT", fmt.Sprintf("%s/%d", members, admin), map[string]any{"role": "viewer"}, 409},
		{"last admin leaves", tokAdmin, "DELETE", fmt.Sprintf("%s/%d", members, admin), nil, 409},
		{"a role that is none", tokAdmin, "POST", members, map[string]any{"user_id": stranger, "role": "owner"}, 422},
		{"a member twice", tokAdmin, "POST", members, map[string]any{"user_id": deployer, "role": "viewer"}, 409},
		// The admin of another organization reaches nothing of this one.
		{"other admin reads the org", tokOtherAdmin, "GET", fmt.Sprintf("/api/orgs/%d", org), nil, 404},
		{"other admin reads members", tokOtherAdmin, "GET", members, nil, 404},
		{"other admin adds itself", tokOtherAdmin, "POST", members, map[string]any{"user_id": admin, "role": "viewer"}, 404},
		{"other admin changes a role", tokOtherAdmin, "PUT", fmt.Sprintf("%s/%d", members, deployer), map[string]any{"role": "viewer"}, 404},
		{"other admin reads the project", tokOtherAdmin, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), nil, 404},
		{"other admin deletes the deployment", tokOtherAdmin, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), nil, 404},
		{"other admin reads the invoices", tokOtherAdmin, "GET", fmt.Sprintf("/api/billing/org/%d/invoices", org), nil, 404},
		{"other admin updates the app", tokOtherAdmin, "PUT", fmt.Sprintf("/api/apps/%d", orgApp), app, 404},
		{"admin installs into the other org", tokAdmin, "POST", "/api/deployments/install", map[string]any{"application_id": orgApp, "project_id": otherProject}, 404},
		{"admin adds to the other org", tokAdmin, "POST", fmt.Sprintf("/api/orgs/%d/members", otherOrg), map[string]any{"user_id": admin, "role": "admin"}, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, mp.DatabaseURL)
			r := mp.call(t, tc.method, tc.path, tc.token, tc.body)
			if r.Status != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.Status, tc.status, r.Body)
			}
			if after := snapshot(t, mp.DatabaseURL); after != before {
				t.Fatal("the database changed")
			}
		})
	}

	// What each role may do.
	mp.must(t, 200, "GET", fmt.Sprintf("/api/user/project/%d/deployments", project), tokViewer, nil)
	mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/org/%d/statement", org), tokViewer, nil)
	mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/org/%d/revenue", org), tokPublisher, nil)
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", orgApp), tokPublisher, app)
	if l := mp.must(t, 200, "GET", fmt.Sprintf("/api/orgs/%d/projects", org), tokDeployer, nil).List(t); len(l) != 1 || num(t, l[0]["id"]) != project {
		t.Fatalf("the organization's projects: %v", l)
	}
	if l := mp.must(t, 200, "GET", "/api/deployments", tokViewer, nil).List(t); len(l) != 1 || num(t, l[0]["id"]) != dep {
		t.Fatalf("deployments the viewer sees: %v", l)
	}
	if l := mp.must(t, 200, "GET", "/api/orgs", tokViewer, nil).JSON(t)["organizations"].([]any); len(l) != 1 || l[0].(map[string]any)["role"] != "viewer" {
		t.Fatalf("the viewer's organizations: %v", l)
	}
	// A second admin; then the first may step down, and the roles move.
	mp.must(t, 200, "PUT", fmt.Sprintf("%s/%d", members, viewer), tokAdmin, map[string]any{"role": "admin"})
	mp.must(t, 200, "PUT", fmt.Sprintf("%s/%d", members, viewer), tokViewer, map[string]any{"role": "viewer"})
	mp.must(t, 409, "PUT", fmt.Sprintf("%s/%d", members, admin), tokAdmin, map[string]any{"role": "viewer"})

	// A removed member's tokens lose access at once: its deployment is the organization's, not its own.
	mp.must(t, 204, "DELETE", fmt.Sprintf("%s/%d", members, deployer), tokAdmin, nil)
	before := snapshot(t, mp.DatabaseURL)
	for _, c := range []struct{ method, path string }{
		{"GET", fmt.Sprintf("/api/deployments/%d", dep)},
		{"DELETE", fmt.Sprintf("/api/deployments/%d", dep)},
		{"GET", fmt.Sprintf("/api/user/project/%d/deployments", project)},
		{"GET", members},
		{"GET", fmt.Sprintf("/api/billing/org/%d/invoices", org)},
	} {
		if r := mp.call(t, c.method, c.path, tokDeployer, nil); r.Status != 404 {
			t.Fatalf("%s %s by a removed member: %d %s, want 404", c.method, c.path, r.Status, r.Body)
		}
	}
	if r := mp.call(t, "POST", "/api/deployments/install", tokDeployer, map[string]any{"application_id": orgApp, "project_id": project}); r.Status != 404 {
		t.Fatalf("install by a removed member: %d %s", r.Status, r.Body)
	}
	if l := mp.must(t, 200, "GET", "/api/deployments", tokDeployer, nil).List(t); len(l) != 0 {
		t.Fatalf("a removed member still lists %v", l)
	}
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a removed member changed the database")
	}
	// The admin deletes it.
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), tokAdmin, nil)

	// The audit trail: membership changes and every member's change, with the acting user and the
	// organization; the organization's readers see them, the other organization's admin does not.
	events := mp.must(t, 200, "GET", "/api/audit?limit=500", tokViewer, nil).List(t)
	want := map[string]bool{
		fmt.Sprintf("user:%d POST /api/orgs/{id}/members %d", admin, deployer):            false,
		fmt.Sprintf("user:%d PUT /api/orgs/{id}/members/{userID} %d", admin, viewer):      false,
		fmt.Sprintf("user:%d DELETE /api/orgs/{id}/members/{userID} %d", admin, deployer): false,
		fmt.Sprintf("user:%d POST /api/deployments/install 0", deployer):                  false,
		fmt.Sprintf("user:%d POST /api/apps/new 0", publisher):                            false,
		fmt.Sprintf("user:%d PUT /api/apps/{id} 0", publisher):                            false,
		fmt.Sprintf("user:%d DELETE /api/deployments/{id} 0", admin):                      false,
		fmt.Sprintf("user:%d POST /api/user/project/new 0", admin):                        false,
	}
	for _, e := range events {
		if e["organization_id"] == nil || num(t, e["organization_id"]) != org {
			if e["actor"] != "marketplace" {
				t.Fatalf("an event the viewer reads outside its organization: %v", e)
			}
			continue
		}
		var member int64
		if d, ok := e["detail"].(map[string]any); ok && d["user_id"] != nil {
			member = num(t, d["user_id"])
		}
		key := fmt.Sprintf("%s %s %d", e["actor"], e["action"], member)
		if _, ok := want[key]; ok {
			want[key] = true
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("no audit event %q among %v", k, events)
		}
	}
	for _, e := range mp.must(t, 200, "GET", "/api/audit?limit=500", tokOtherAdmin, nil).List(t) {
		if e["organization_id"] != nil && num(t, e["organization_id"]) == org {
			t.Fatalf("another organization's admin reads %v", e)
		}
	}
}

// TestOrgInvoice bills a team's deployments to the organization: two members deploy into its project,
// one also into a project of its own. The organization's invoice is the sum of its members' deployments,
// each line naming who asked for it; the member's own invoice has only its own project's.
//
// Usage is made by SQL (the api role runs no worker): 2h at 1.1/h = 2.20 by the deployer, 1.5h at 2/h =
// 3.00 by the admin, so the organization owes 5.20; the deployer's own 1h at 1.1/h = 1.10.
func TestOrgInvoice(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	_, tokPub := mp.user(t, "publisher")
	admin, tokAdmin := mp.user(t, "admin")
	deployer, tokDeployer := mp.user(t, "deployer")
	viewer, tokViewer := mp.user(t, "viewer")

	org := num(t, mp.must(t, 201, "POST", "/api/orgs/new", tokAdmin, map[string]any{"name": "team"}).JSON(t)["id"])
	mp.must(t, 201, "POST", fmt.Sprintf("/api/orgs/%d/members", org), tokAdmin, map[string]any{"user_id": deployer, "role": "deployer"})
	mp.must(t, 201, "POST", fmt.Sprintf("/api/orgs/%d/members", org), tokAdmin, map[string]any{"user_id": viewer, "role": "viewer"})
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	cheap := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokPub, map[string]any{"name": "cheap", "hourly_rate": 1.1, "deployment": spec}).JSON(t)["id"])
	dear := num(t, mp.must(t, 201, "POST", "/api/apps/new", tokPub, map[string]any{"name": "dear", "hourly_rate": 2, "deployment": spec}).JSON(t)["id"])
	teamProject := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokAdmin, map[string]any{"name": "p", "organization_id": org}).JSON(t)["id"])
	ownProject := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tokDeployer, map[string]any{"name": "mine"}).JSON(t)["id"])
	install := func(tok string, app, project int64) int64 {
		return num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
	}
	byDeployer, byAdmin, own := install(tokDeployer, cheap, teamProject), install(tokAdmin, dear, teamProject), install(tokDeployer, cheap, ownProject)
	for dep, span := range map[int64][2]string{
		byDeployer: {"2025-03-10 00:00:00Z", "2025-03-10 02:00:00Z"},
		byAdmin:    {"2025-03-11 00:00:00Z", "2025-03-11 01:30:00Z"},
		own:        {"2025-03-12 00:00:00Z", "2025-03-12 01:00:00Z"},
	} {
		var n int64
		query(t, mp.DatabaseURL, `WITH d AS (UPDATE deployments SET status = 'uninstalled' WHERE id = $1 RETURNING id, consumer_id, application_id, hourly_rate),
r AS (INSERT INTO usage_records (deployment_id, user_id, application_id, hourly_rate, started_at, ended_at, amount)
  SELECT id, consumer_id, application_id, hourly_rate, $2, $3, usage_amount(hourly_rate, $2, $3) FROM d RETURNING 1)
SELECT count(*) FROM r`, []any{dep, span[0], span[1]}, &n)
		if n != 1 {
			t.Fatalf("usage of deployment %d: %d records", dep, n)
		}
	}
	mp.must(t, 200, "POST", "/api/billing/periods/2025-03/close", operator, nil)

	invoices := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/org/%d/invoices", org), tokViewer, nil).JSON(t)["invoices"].([]any)
	if len(invoices) != 1 {
		t.Fatalf("the organization's invoices: %v", invoices)
	}
	number := invoices[0].(map[string]any)["number"].(string)
	inv := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/org/%d/invoices/%s", org, number), tokAdmin, nil).JSON(t)
	if inv["total"] != "5.2" || num(t, inv["organization_id"]) != org {
		t.Fatalf("the organization's invoice: %v, want a total of 5.2", inv)
	}
	charged := map[int64]string{}
	for _, l := range inv["lines"].([]any) {
		line := l.(map[string]any)
		charged[num(t, line["requested_by"])] = line["charge"].(string)
	}
	if len(charged) != 2 || charged[deployer] != "2.2" || charged[admin] != "3" {
		t.Fatalf("the invoice's lines by member: %v, want the deployer's 2.2 and the admin's 3", charged)
	}
	csv := mp.call(t, "GET", fmt.Sprintf("/api/billing/org/%d/invoices/%s?format=csv", org, number), tokViewer, nil)
	if !strings.Contains(string(csv.Body), ",requested_by\n") || !strings.Contains(string(csv.Body), fmt.Sprintf(",2.20,USD,%d\n", deployer)) {
		t.Fatalf("the organization's invoice as CSV:\n%s", csv.Body)
	}
	st := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/org/%d/statement?from=2025-03-01&to=2025-04-01", org), tokViewer, nil).JSON(t)
	if st["total"] != "5.2" || num(t, st["line_count"]) != 2 {
		t.Fatalf("the organization's statement: %v", st)
	}
	// The deployer's own bill has only its own project's deployment.
	mine := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", deployer), tokDeployer, nil).JSON(t)["invoices"].([]any)
	if len(mine) != 1 || mine[0].(map[string]any)["total"] != "1.1" {
		t.Fatalf("the deployer's own invoices: %v, want one of 1.1", mine)
	}
	if l := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/invoices", admin), tokAdmin, nil).JSON(t)["invoices"].([]any); len(l) != 0 {
		t.Fatalf("the admin's own invoices: %v, want none (its deployment is the organization's)", l)
	}
	if st := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/statement?from=2025-03-01&to=2025-04-01", deployer), tokDeployer, nil).JSON(t); st["total"] != "1.1" {
		t.Fatalf("the deployer's own statement: %v", st)
	}
}
