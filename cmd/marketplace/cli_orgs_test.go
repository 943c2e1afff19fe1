package main

import (
	"fmt"
	"strings"
	"testing"
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

	// Refused: the deployer manages no members and creates no project; the last admin stays.
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden", "deployer"}, "orgs", "members", "set-role", "1", fmt.Sprint(deployer), "admin")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden"}, "orgs", "members", "add", "1", "cli admin", "--role", "admin")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Forbidden"}, "projects", "create", "mine", "--org", "1")
	cli.expectFailure(t, as(tokAdmin), 1, []string{"last admin"}, "orgs", "members", "remove", "1", "cli admin")
	cli.expectFailure(t, as(tokAdmin), 2, []string{"owner"}, "orgs", "members", "set-role", "1", "cli viewer", "owner")

	// A removed member no longer finds the organization.
	run(tokAdmin, "orgs", "members", "remove", "1", "cli deployer")
	cli.expectFailure(t, as(tokDeployer), 3, []string{"Not Found"}, "orgs", "members", "list", "1")
}
