package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAuditTrailTellsTheStory installs and deletes a deployment and reads the consumer's audit trail:
// every request that changed something and every status the deployment took, in order, with their
// actors; another user reads none of it, and the operator reads all of it.
func TestAuditTrailTellsTheStory(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	_, pub := mp.user(t, "publisher")
	con, tok := mp.user(t, "consumer")
	_, stranger := mp.user(t, "stranger")
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 200, "POST", "/api/deployments/install?dry_run=true", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.must(t, 422, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{"x": 1}})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	mp.must(t, 202, "DELETE", "/api/deployments/1", tok, nil)
	mp.waitForStatus(t, tok, 1, "uninstalled", 2*time.Minute)

	user := fmt.Sprintf("user:%d", con)
	installRequest, installing := user+" POST /api/deployments/install /api/deployments/install", "marketplace deployment.installing deployment:1"
	story := func(token string) []string {
		var lines []string
		for _, e := range mp.must(t, 200, "GET", "/api/audit?limit=500", token, nil).List(t) {
			lines = append(lines, fmt.Sprintf("%s %s %s", e["actor"], e["action"], e["resource"]))
		}
		// A request's event is written once it is answered; serve's own worker may claim the install
		// (installing) before that. Either order is the same story.
		for i := 0; i+1 < len(lines); i++ {
			if lines[i] == installing && lines[i+1] == installRequest {
				lines[i], lines[i+1] = lines[i+1], lines[i]
			}
		}
		return lines
	}
	want := []string{
		user + " POST /api/user/project/new /api/user/project/new",
		"marketplace deployment.pending deployment:1",
		installRequest,
		installing,
		"marketplace deployment.installed deployment:1",
		"marketplace deployment.uninstalling deployment:1",
		user + " DELETE /api/deployments/{id} /api/deployments/1",
		"marketplace deployment.uninstalled deployment:1",
	}
	if got := story(tok); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the consumer's audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := story(stranger); len(got) != 0 {
		t.Errorf("a stranger reads %d events of others: %v", len(got), got)
	}
	// The operator's: the three sign-ups, the publisher's application, then the consumer's story.
	all := story(mp.Environ["MARKETPLACE_ADMIN_TOKEN"])
	if len(all) != 4+len(want) || all[0] != "anonymous POST /api/users/new /api/users/new" ||
		!strings.HasSuffix(all[3], "POST /api/apps/new /api/apps/new") || strings.Join(all[4:], "\n") != strings.Join(want, "\n") {
		t.Errorf("the operator's audit trail:\n%s", strings.Join(all, "\n"))
	}
	events := mp.must(t, 200, "GET", "/api/audit?resource=deployment:1", tok, nil).List(t)
	if len(events) != 5 {
		t.Errorf("the events of deployment 1: %d, want its 5 statuses", len(events))
	}
	// The bill links to the events that opened and closed it.
	actionOf := map[string]any{}
	for _, e := range events {
		actionOf[e["id"].(fmt.Stringer).String()] = e["action"]
	}
	rec := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/1", con), tok, nil).JSON(t)["records"].([]any)[0].(map[string]any)
	opened, _ := rec["opened_event_id"].(fmt.Stringer)
	closed, _ := rec["closed_event_id"].(fmt.Stringer)
	if opened == nil || closed == nil || actionOf[opened.String()] != "deployment.installed" || actionOf[closed.String()] != "deployment.uninstalling" {
		t.Errorf("usage record events %v / %v, want the installed and uninstalling events (%v)", rec["opened_event_id"], rec["closed_event_id"], actionOf)
	}
}
