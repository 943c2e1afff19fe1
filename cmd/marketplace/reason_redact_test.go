package main

import (
	"strings"
	"testing"
	"time"
)

// TestFailureReasonsAreStoredRedacted fails an install whose chart repository URL carries credentials
// and names a chart the repository does not have: the reason names the URL, and neither the stored
// reason, the audit trail's copy nor any answer holds the password.
func TestFailureReasonsAreStoredRedacted(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1"})
	_, tok := mp.user(t, "consumer")
	repo := strings.Replace(tenv.ChartRepo, "http://", "http://reader:s3cret-pw@", 1)
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "private", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": repo, "chartName": "no-such-chart"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	failed := mp.waitForStatus(t, tok, 1, "failed", 2*time.Minute)
	if reason := failed["failure_reason"].(string); !strings.Contains(reason, "REDACTED@") {
		t.Fatalf("failure reason %q does not name the repository (redacted)", reason)
	}
	var stored string
	var audited int
	query(t, mp.DatabaseURL, `SELECT failure_reason FROM deployments WHERE id = 1`, nil, &stored)
	query(t, mp.DatabaseURL, `SELECT count(*) FROM audit_events WHERE detail::text LIKE '%s3cret-pw%'`, nil, &audited)
	if strings.Contains(stored, "s3cret-pw") || audited != 0 {
		t.Fatalf("the password is stored: reason %q, %d audit events", stored, audited)
	}
	audit := mp.must(t, 200, "GET", "/api/audit", tok, nil).Body
	if strings.Contains(string(audit), "s3cret-pw") {
		t.Fatalf("the audit trail shows the password: %s", audit)
	}
}
