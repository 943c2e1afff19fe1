package main

import (
	"strings"
	"testing"
	"time"
)

// TestFailedInstallSaysWhy checks that an install that cannot succeed is retried, ends failed with a
// reason a person can act on, opens no bill, and can still be deleted.
func TestFailedInstallSaysWhy(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "2", "DEPLOY_RETRY_BACKOFF": "200ms"})
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "missing chart", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "no-such-chart"}})
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "more than its namespace's quota", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "service.type", "type": "string", "default": "NodePort"}}})
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "values the chart refuses", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 50}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})

	// Values the chart's values.schema.json refuses are refused when the install is requested: no attempt
	// is made.
	refused := mp.must(t, 422, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 3, "project_id": 1}).JSON(t)
	if detail, _ := refused["detail"].(string); !strings.HasPrefix(detail, "inputs.replicaCount: maximum: got 50, want 20") {
		t.Errorf("values the chart refuses: %q, want the schema's refusal naming the input", detail)
	}

	for _, tc := range []struct {
		app    int64
		reason []string
	}{
		{1, []string{"attempt 2 of 2", `chart "no-such-chart"`, "is not in repository " + tenv.ChartRepo}},
		{2, []string{"attempt 2 of 2", "exceeded quota", "services.nodeports"}},
	} {
		id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": tc.app, "project_id": 1}).JSON(t)["deploymentID"])
		d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
		reason, _ := d["failure_reason"].(string)
		for _, want := range tc.reason {
			if !strings.Contains(reason, want) {
				t.Errorf("deployment %d failure reason %q does not say %q", id, reason, want)
			}
		}
		if num(t, d["attempts"]) != 2 {
			t.Errorf("deployment %d: %v attempts, want 2", id, d["attempts"])
		}
		if recs := mp.must(t, 200, "GET", "/api/billing/user/1", tok, nil).JSON(t)["records"].([]any); len(recs) != 0 {
			t.Fatalf("a failed install was billed: %v", recs)
		}
		mp.must(t, 202, "DELETE", "/api/deployments/"+d["id"].(interface{ String() string }).String(), tok, nil)
		mp.waitForStatus(t, tok, id, "uninstalled", time.Minute)
	}
}
