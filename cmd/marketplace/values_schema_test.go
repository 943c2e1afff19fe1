package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// formWebApp publishes an application of the form-web test chart, whose values.schema.json has one of
// each constraint (an integer from 0 to 5, a required string with a pattern, an enum, a port), with
// inputs for them; service.port is declared without a type, so only the chart's schema knows it is an
// integer. It returns the application's id.
func formWebApp(t *testing.T, inst *instance, token string, rate float64) int64 {
	t.Helper()
	return num(t, inst.must(t, 201, "POST", "/api/apps/new", token, map[string]any{
		"name": "Form web", "description": "A web server whose chart has a values schema.", "hourly_rate": rate,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "form-web"},
		"inputs": []map[string]any{
			{"name": "replicaCount", "type": "integer"},
			{"name": "greeting", "type": "string"},
			{"name": "debug", "type": "boolean"},
			{"name": "service.type", "type": "string"},
			{"name": "service.port"},
		},
	}).JSON(t)["id"])
}

// TestValuesSchemaRefusedAtRequest: values the chart's values.schema.json refuses are refused by the API
// when the install (or its dry run, or an upgrade) is requested, 422 problem+json naming the input, and
// nothing is recorded; values it accepts install.
func TestValuesSchemaRefusedAtRequest(t *testing.T) {
	inst := startMarketplace(t, "serve", nil)
	_, pub := inst.user(t, "Publisher")
	app := formWebApp(t, inst, pub, 0.5)
	_, tok := inst.user(t, "Consumer")
	project := num(t, inst.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])

	before := snapshot(t, inst.DatabaseURL)
	for _, c := range []struct {
		name   string
		inputs map[string]any
		detail string
	}{
		{"required by the schema, left out", map[string]any{"replicaCount": 1}, "inputs.greeting: missing property 'greeting'"},
		{"above the maximum", map[string]any{"greeting": "Hi", "replicaCount": 9}, "inputs.replicaCount: maximum: got 9, want 5"},
		{"not in the enum", map[string]any{"greeting": "Hi", "service.type": "LoadBalancer"}, "inputs.service.type: value must be one of 'ClusterIP', 'NodePort'"},
		{"not matching the pattern", map[string]any{"greeting": "<script>"}, "inputs.greeting: '<script>' does not match pattern"},
		{"a string for the schema's integer", map[string]any{"greeting": "Hi", "service.port": "8080"}, "inputs.service.port: got string, want integer"},
		{"a string for the input's integer", map[string]any{"greeting": "Hi", "replicaCount": "three"}, "inputs.replicaCount: three is not a integer"},
	} {
		for _, dryRun := range []string{"", "?dry_run=true"} {
			r := inst.call(t, "POST", "/api/deployments/install"+dryRun, tok, map[string]any{"application_id": app, "project_id": project, "inputs": c.inputs})
			if r.Status != 422 || r.ContentType != "application/problem+json" {
				t.Errorf("%s%s: %d %s, want 422 problem+json: %s", c.name, dryRun, r.Status, r.ContentType, r.Body)
				continue
			}
			if detail, _ := r.JSON(t)["detail"].(string); !strings.HasPrefix(detail, c.detail) {
				t.Errorf("%s%s: detail %q, want it to start with %q", c.name, dryRun, detail, c.detail)
			}
		}
	}
	if after := snapshot(t, inst.DatabaseURL); after != before {
		t.Errorf("refused installs changed the database")
	}

	// What the schema accepts installs; an upgrade to values it refuses is refused when requested.
	preview := inst.must(t, 200, "POST", "/api/deployments/install?dry_run=true", tok, map[string]any{"application_id": app, "project_id": project,
		"inputs": map[string]any{"greeting": "Hello, world!", "replicaCount": 2, "service.type": "ClusterIP"}}).JSON(t)
	if !strings.Contains(fmt.Sprint(preview["preview"]), "ConfigMap") {
		t.Errorf("dry run: %v, want the chart's ConfigMap", preview)
	}
	dep := num(t, inst.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project,
		"inputs": map[string]any{"greeting": "Hello, world!", "replicaCount": 2, "service.type": "ClusterIP"}}).JSON(t)["deploymentID"])
	inst.waitForStatus(t, tok, dep, "installed", 3*time.Minute)
	for _, dryRun := range []string{"", "?dry_run=true"} {
		r := inst.call(t, "POST", fmt.Sprintf("/api/deployments/%d/upgrade%s", dep, dryRun), tok, map[string]any{"inputs": map[string]any{"greeting": "Hi", "replicaCount": 6}})
		if detail, _ := r.JSON(t)["detail"].(string); r.Status != 422 || !strings.HasPrefix(detail, "inputs.replicaCount: maximum: got 6, want 5") {
			t.Errorf("upgrade%s to replicaCount 6: %d %s", dryRun, r.Status, r.Body)
		}
	}
	if d := inst.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", dep), tok, nil).JSON(t); d["status"] != "installed" {
		t.Errorf("after refused upgrades the deployment is %v", d["status"])
	}
	inst.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", dep), tok, nil)
	inst.waitForStatus(t, tok, dep, "uninstalled", 3*time.Minute)
}
