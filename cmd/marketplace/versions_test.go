package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVersionsArePinned accepts an install, then lets its publisher change the application twice (an
// update and a new version) before any worker runs: the deployment installs the version it was accepted
// with, at that version's rate, and shows the newer version as an update with its changelog. Deprecated
// versions take no new installs; other users read versions but cannot add or deprecate them.
func TestVersionsArePinned(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", nil)
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	app := mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1.5, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 2}}}).JSON(t)
	if num(t, app["version"]) != 1 {
		t.Fatalf("a new application's version: %v, want 1", app["version"])
	}
	mp.must(t, 201, "POST", "/api/user/project/new", con, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", con, map[string]any{"application_id": 1, "project_id": 1})

	// The publisher changes the application after the 202, before any worker ran.
	updated := mp.must(t, 200, "PUT", "/api/apps/1", pub, map[string]any{"name": "web", "hourly_rate": 9, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 3}}}).JSON(t)
	if num(t, updated["version"]) != 2 {
		t.Fatalf("the application after a PUT that changes its inputs and rate: version %v, want 2", updated["version"])
	}
	v3 := mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 4.25, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}, "changelog": "one replica is enough"}).JSON(t)
	if num(t, v3["version"]) != 3 {
		t.Fatalf("the published version: %v", v3)
	}
	mp.must(t, 200, "POST", "/api/apps/1/versions/3/deprecate", pub, nil)
	mp.must(t, 404, "POST", "/api/apps/1/versions", con, map[string]any{"hourly_rate": 0, "deployment": spec})
	mp.must(t, 404, "POST", "/api/apps/1/versions/2/deprecate", con, nil)
	mp.must(t, 422, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 1,
		"deployment": map[string]any{"type": "vm", "image": "x.qcow2", "cpu": "1", "memory": "1Gi"}})
	versions := mp.must(t, 200, "GET", "/api/apps/1/versions", con, nil).List(t)
	if len(versions) != 3 || versions[2]["deprecated_at"] == nil || versions[0]["deprecated_at"] != nil {
		t.Fatalf("versions: %v, want 3 with only the third deprecated", versions)
	}

	startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker.log"))
	d := mp.waitForStatus(t, con, 1, "installed", 2*time.Minute)
	if num(t, d["version"]) != 1 || d["hourly_rate"].(fmt.Stringer).String() != "1.5" {
		t.Errorf("the accepted deployment: version %v at %v, want version 1 at 1.5", d["version"], d["hourly_rate"])
	}
	ns := d["placement"].(map[string]any)["namespace"].(string)
	dep, err := kube(t).AppsV1().Deployments(ns).Get(context.Background(), "deployment-1-hello-web", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 2 {
		t.Fatalf("the cluster runs %v replicas (%v), want version 1's 2", dep.Spec.Replicas, err)
	}
	update, _ := d["update_available"].(map[string]any)
	if update == nil || num(t, update["version"]) != 2 || len(update["changelogs"].([]any)) != 1 {
		t.Errorf("update_available: %v, want version 2 with its changelog (3 is deprecated)", d["update_available"])
	}
	if l := mp.must(t, 200, "GET", "/api/deployments?update_available=true", con, nil).List(t); len(l) != 1 {
		t.Errorf("deployments with updates: %d, want 1", len(l))
	}

	// New installs: a deprecated version or one that does not exist is refused; by default the latest
	// version not deprecated, at its rate.
	before := snapshot(t, mp.DatabaseURL)
	mustProblem(t, mp.call(t, "POST", "/api/deployments/install", con, map[string]any{"application_id": 1, "project_id": 1, "version": 3}), 409, "deprecated")
	mustProblem(t, mp.call(t, "POST", "/api/deployments/install", con, map[string]any{"application_id": 1, "project_id": 1, "version": 9}), 422, "no version 9")
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a refused install changed the database")
	}
	id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", con, map[string]any{"application_id": 1, "project_id": 1}).JSON(t)["deploymentID"])
	second := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), con, nil).JSON(t)
	if num(t, second["version"]) != 2 || second["hourly_rate"].(fmt.Stringer).String() != "9" || second["update_available"] != nil {
		t.Errorf("a new install: version %v at %v (update %v), want version 2 at 9 and no update", second["version"], second["hourly_rate"], second["update_available"])
	}
}

// TestInstallPreview asks for a dry run: it validates like an install, lists what the chart would create
// and what it would cost for 30 days, and records or creates nothing. The API is an `api` replica, so a
// worker renders the chart.
func TestInstallPreview(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	startMarketplace(t, "worker", sameMarketplace(mp))
	_, pub := mp.user(t, "publisher")
	_, con := mp.user(t, "consumer")
	_, other := mp.user(t, "another consumer")
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 2}}})
	mp.must(t, 201, "POST", "/api/user/project/new", con, map[string]any{"name": "p"})
	before := snapshot(t, mp.DatabaseURL)

	answer := mp.must(t, 200, "POST", "/api/deployments/install?dry_run=true", con,
		map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{"replicaCount": 3}}).JSON(t)
	preview := answer["preview"].(map[string]any)
	kinds := map[string]bool{}
	for _, r := range preview["resources"].([]any) {
		kinds[r.(map[string]any)["kind"].(string)] = true
	}
	if !kinds["Deployment"] || !kinds["Service"] || len(kinds) != 2 {
		t.Errorf("previewed resources %v, want the chart's Deployment and Service", preview["resources"])
	}
	if manifest, _ := preview["manifest"].(string); !strings.Contains(manifest, "replicas: 3") {
		t.Errorf("the previewed manifest does not carry the consumer's replicaCount: %q", manifest)
	}
	if preview["cost_30_days"].(fmt.Stringer).String() != "900" || preview["hourly_rate"].(fmt.Stringer).String() != "1.25" {
		t.Errorf("previewed cost %v per 30 days at %v an hour, want 900 at 1.25", preview["cost_30_days"], preview["hourly_rate"])
	}
	mustProblem(t, mp.call(t, "POST", "/api/deployments/install?dry_run=true", con,
		map[string]any{"application_id": 1, "project_id": 1, "inputs": map[string]any{"replicaCount": "many"}}), 422, "replicaCount")
	mustProblem(t, mp.call(t, "POST", "/api/deployments/install?dry_run=true", other,
		map[string]any{"application_id": 1, "project_id": 1}), 404)
	if snapshot(t, mp.DatabaseURL) != before {
		t.Fatal("a dry run changed the database")
	}
	nss, err := kube(t).CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nss.Items {
		if strings.HasPrefix(n.Name, mp.Environ["K8S_NAMESPACE_PREFIX"]+"-deployment-") {
			t.Errorf("a dry run made namespace %s", n.Name)
		}
	}
}
