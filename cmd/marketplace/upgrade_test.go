package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestUpgradeAndRollback installs v1, publishes v2 (more replicas, another rate), upgrades, rolls back,
// and checks at each step what the cluster runs, what the deployment says, and that the bill is split at
// each completed change with each part at its version's rate. An upgrade to a version whose pods never
// become ready fails with the previous revision still running and billed at its rate.
func TestUpgradeAndRollback(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1", "DEPLOY_TIMEOUT": "15s"})
	ctx := context.Background()
	cs := kube(t)
	_, pub := mp.user(t, "publisher")
	con, tok := mp.user(t, "consumer")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	d := mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	ns := d["placement"].(map[string]any)["namespace"].(string)
	replicas := func() int32 {
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, "deployment-1-hello-web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *dep.Spec.Replicas
	}
	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 2, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 3}}, "changelog": "three replicas"})
	if u := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)["update_available"]; u == nil {
		t.Fatal("no update_available after v2")
	}

	// The preview: what would change against what runs, and the new cost; nothing changes.
	before := snapshot(t, mp.DatabaseURL)
	preview := mp.must(t, 200, "POST", "/api/deployments/1/upgrade?dry_run=true", tok, map[string]any{"inputs": map[string]any{}}).
		JSON(t)["preview"].(map[string]any)
	diff := preview["diff"].(map[string]any)
	changed := fmt.Sprint(diff["changed"])
	if len(diff["added"].([]any)) != 0 || len(diff["removed"].([]any)) != 0 || len(diff["changed"].([]any)) != 1 ||
		!strings.Contains(changed, "deployment-1-hello-web") || !strings.Contains(changed, "Deployment") {
		t.Errorf("upgrade diff %v, want only the Deployment changed", diff)
	}
	if preview["cost_30_days"].(fmt.Stringer).String() != "1440" || num(t, preview["version"]) != 2 {
		t.Errorf("upgrade preview: version %v costing %v for 30 days, want v2 at 1440", preview["version"], preview["cost_30_days"])
	}
	if snapshot(t, mp.DatabaseURL) != before || replicas() != 1 {
		t.Fatal("an upgrade dry run changed something")
	}

	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"inputs": map[string]any{}})
	d = mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	if num(t, d["version"]) != 2 || d["hourly_rate"].(fmt.Stringer).String() != "2" || replicas() != 3 || d["update_available"] != nil {
		t.Fatalf("after the upgrade: version %v at %v, %d replicas, update %v; want v2 at 2 with 3 replicas", d["version"], d["hourly_rate"], replicas(), d["update_available"])
	}
	mp.must(t, 202, "POST", "/api/deployments/1/rollback", tok, map[string]any{})
	d = mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	if num(t, d["version"]) != 1 || d["hourly_rate"].(fmt.Stringer).String() != "1" || replicas() != 1 {
		t.Fatalf("after the rollback: version %v at %v, %d replicas; want v1 at 1 with 1 replica", d["version"], d["hourly_rate"], replicas())
	}
	revs := mp.must(t, 200, "GET", "/api/deployments/1/revisions", tok, nil).List(t)
	if len(revs) != 3 || num(t, revs[0]["version"]) != 1 || num(t, revs[1]["version"]) != 2 || num(t, revs[2]["version"]) != 1 {
		t.Fatalf("revisions: %v, want 3: v1, v2, v1", revs)
	}
	if h := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)["health"].(map[string]any); num(t, h["revision"]) != 3 {
		for _, r := range helmReleases(t, ns, "deployment-1") {
			t.Logf("release record %s: %v", r.Name, r.Labels)
		}
		t.Errorf("health: %v, want Helm revision 3", h)
	}

	// A version whose pods can never be scheduled: the upgrade fails, v1 keeps running at its rate.
	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 5, "deployment": spec,
		"inputs": []map[string]any{{"name": "nodeSelector.no-such-node", "default": testenv.Name("n")}}, "changelog": "broken"})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 3})
	waitFor(t, 2*time.Minute, "the failed upgrade to be recorded", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && d["failure_reason"] != nil
	})
	if num(t, d["version"]) != 1 || d["hourly_rate"].(fmt.Stringer).String() != "1" || replicas() != 1 {
		t.Errorf("after the failed upgrade: version %v at %v, %d replicas; want v1 at 1 with 1 replica (%v)", d["version"], d["hourly_rate"], replicas(), d["failure_reason"])
	}
	dep, _ := cs.AppsV1().Deployments(ns).Get(ctx, "deployment-1-hello-web", metav1.GetOptions{})
	if len(dep.Spec.Template.Spec.NodeSelector) != 0 {
		t.Errorf("the cluster runs the failed version's pod template: %v", dep.Spec.Template.Spec.NodeSelector)
	}

	// The bill: one record per completed revision, each at its version's rate, back to back.
	bill := mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/1", con), tok, nil).JSON(t)["records"].([]any)
	if len(bill) != 3 {
		t.Fatalf("usage records %v, want 3 (v1, v2, v1 again)", bill)
	}
	for i, rate := range []string{"1", "2", "1"} {
		r := bill[i].(map[string]any)
		if r["hourly_rate"].(fmt.Stringer).String() != rate {
			t.Errorf("record %d at %v, want %s", i, r["hourly_rate"], rate)
		}
		if i < 2 && (r["ended_at"] == nil || r["ended_at"] != bill[i+1].(map[string]any)["started_at"]) {
			t.Errorf("record %d ends at %v, the next starts at %v: want the split at one instant", i, r["ended_at"], bill[i+1].(map[string]any)["started_at"])
		}
	}
	if bill[2].(map[string]any)["ended_at"] != nil {
		t.Errorf("the running revision's record is closed: %v", bill[2])
	}

	// The audit trail tells the story, in order; another user reads none of it.
	var story []string
	for _, e := range mp.must(t, 200, "GET", "/api/audit?limit=500", tok, nil).List(t) {
		if a := e["action"].(string); strings.HasPrefix(a, "deployment.") || strings.Contains(a, "/api/deployments") {
			story = append(story, a)
		}
	}
	// serve's own worker may claim the install before the install request's event is written (after the
	// answer): either order of those two is the same story.
	if i := slices.Index(story, "POST /api/deployments/install"); i > 0 && story[i-1] == "deployment.installing" {
		story[i-1], story[i] = story[i], story[i-1]
	}
	want := []string{"deployment.pending", "POST /api/deployments/install", "deployment.installing", "deployment.installed",
		"deployment.upgrading", "POST /api/deployments/{id}/upgrade", "deployment.installed",
		"deployment.upgrading", "POST /api/deployments/{id}/rollback", "deployment.installed",
		"deployment.upgrading", "POST /api/deployments/{id}/upgrade", "deployment.installed"}
	if strings.Join(story, "\n") != strings.Join(want, "\n") {
		t.Errorf("the consumer's audit trail:\n%s\nwant:\n%s", strings.Join(story, "\n"), strings.Join(want, "\n"))
	}
	if l := mp.must(t, 200, "GET", "/api/audit", pub, nil).List(t); len(l) != 3 {
		t.Errorf("the publisher reads %d events, want its own 3 (the app and two versions): %v", len(l), l)
	}
}

// TestWorkerCrashMidUpgrade kills the worker with SIGKILL while Helm waits for an upgrade's pods; a new
// worker takes the upgrade over and it converges: installed at the new version, exactly one deployed
// release revision, the bill split once.
func TestWorkerCrashMidUpgrade(t *testing.T) {
	bin := buildMarketplace(t)
	mp := startMarketplace(t, "api", map[string]string{"DEPLOY_LEASE": "2s"})
	label, tok := publishWaitingApp(t, mp)
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	worker := startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-1.log"))
	labelNode(t, label) // v1 installs at once
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)

	// v2's pods need another label nobody has yet, so its upgrade waits in Helm until we say so.
	second := testenv.Name("w")
	mp.must(t, 201, "POST", "/api/apps/1/versions", tok, map[string]any{"hourly_rate": 4, "deployment": spec,
		"inputs": []map[string]any{{"name": "nodeSelector.fencing-test", "default": second}}})
	mp.must(t, 202, "POST", "/api/deployments/1/upgrade", tok, map[string]any{"version": 2, "inputs": map[string]any{}})
	ns := mp.Environ["K8S_NAMESPACE_PREFIX"] + "-deployment-1"
	waitFor(t, time.Minute, "Helm to record the upgrade as pending-upgrade", func() bool {
		for _, r := range helmReleases(t, ns, "deployment-1") {
			if r.Labels["status"] == "pending-upgrade" {
				return true
			}
		}
		return false
	})
	worker.Process.Signal(syscall.SIGKILL)
	worker.Wait()

	labelNode(t, second)
	startWorker(t, bin, mp.Environ, filepath.Join(t.TempDir(), "worker-2.log"))
	d := mp.waitForStatus(t, tok, 1, "installed", 3*time.Minute)
	waitFor(t, 3*time.Minute, "the upgrade to complete", func() bool {
		d = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return d["status"] == "installed" && num(t, d["version"]) == 2
	})
	deployed := 0
	for _, r := range helmReleases(t, ns, "deployment-1") {
		if r.Labels["status"] == "deployed" {
			deployed++
		}
	}
	if deployed != 1 {
		t.Errorf("%d release revisions deployed, want exactly 1", deployed)
	}
	var records, open int
	query(t, mp.DatabaseURL, `SELECT count(*), count(*) FILTER (WHERE ended_at IS NULL) FROM usage_records WHERE deployment_id = 1`, nil, &records, &open)
	if records != 2 || open != 1 {
		t.Errorf("%d usage records (%d open), want 2 with the second open", records, open)
	}
}

// TestAutomaticUpgrade installs the same application three times: once following its versions
// (upgrade_policy auto) up to a rate of 3 an hour, once following them at the rate it was installed at
// (auto, no max_hourly_rate), once by hand. When its publisher publishes v2 at a higher rate, the first
// moves to it by itself; the second waits for its consumer, saying why, until the consumer upgrades it;
// the third stays on v1 and shows the update.
func TestAutomaticUpgrade(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	_, pub := mp.user(t, "publisher")
	_, tok := mp.user(t, "consumer")
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "web", "hourly_rate": 1, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 1}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1, "upgrade_policy": "auto", "max_hourly_rate": 3})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1, "upgrade_policy": "auto"})
	for id := int64(1); id <= 3; id++ {
		mp.waitForStatus(t, tok, id, "installed", 2*time.Minute)
	}

	mp.must(t, 201, "POST", "/api/apps/1/versions", pub, map[string]any{"hourly_rate": 3, "deployment": spec,
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 2}}, "changelog": "two replicas"})
	var auto map[string]any
	waitFor(t, 2*time.Minute, "the auto deployment to move to v2", func() bool {
		auto = mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		return auto["status"] == "installed" && num(t, auto["version"]) == 2
	})
	if auto["upgrade_policy"] != "auto" || auto["hourly_rate"].(fmt.Stringer).String() != "3" {
		t.Errorf("the auto deployment: %v at %v", auto["upgrade_policy"], auto["hourly_rate"])
	}
	manual := mp.must(t, 200, "GET", "/api/deployments/2", tok, nil).JSON(t)
	if num(t, manual["version"]) != 1 || manual["update_available"] == nil || manual["upgrade_policy"] != "manual" {
		t.Errorf("the manual deployment: version %v, update %v, policy %v; want v1 with an update shown", manual["version"], manual["update_available"], manual["upgrade_policy"])
	}
	// The dearer version never reaches the deployment that did not accept its rate: several reconciler
	// passes (every 500 ms here) later it still runs v1, and says why.
	time.Sleep(3 * time.Second)
	waiting := mp.must(t, 200, "GET", "/api/deployments/3", tok, nil).JSON(t)
	update, _ := waiting["update_available"].(map[string]any)
	if waiting["status"] != "installed" || num(t, waiting["version"]) != 1 || update == nil ||
		!strings.Contains(fmt.Sprint(update["waiting"]), "above the 1 this deployment accepts") {
		t.Fatalf("the auto deployment without consent to the new rate: status %v, version %v, update %v; want v1 waiting, saying why",
			waiting["status"], waiting["version"], update)
	}
	mp.must(t, 202, "POST", "/api/deployments/3/upgrade", tok, map[string]any{"version": 2})
	if d := mp.waitForStatus(t, tok, 3, "installed", 2*time.Minute); num(t, d["version"]) != 2 || d["update_available"] != nil {
		t.Errorf("after its consumer upgraded it: version %v, update %v", d["version"], d["update_available"])
	}
}

// TestAutomaticUpgradeNeedsSight: a consumer's automatic upgrades of a private application stop when it
// no longer sees the application (its organization unshared): the new version does not reach the running
// deployment, which keeps running the version it has.
func TestAutomaticUpgradeNeedsSight(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	_, pub := mp.user(t, "publisher")
	_, admin := mp.user(t, "org admin")
	member, tok := mp.user(t, "org member")
	org := num(t, mp.must(t, 201, "POST", "/api/orgs/new", admin, map[string]any{"name": "sharing"}).JSON(t)["id"])
	mp.must(t, 201, "POST", fmt.Sprintf("/api/orgs/%d/members", org), admin, map[string]any{"user_id": member, "role": "deployer"})
	spec := map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}
	app := num(t, mp.must(t, 201, "POST", "/api/apps/new", pub, map[string]any{"name": "internal", "hourly_rate": 1, "deployment": spec,
		"visibility": "private", "shared_with": []int64{org}}).JSON(t)["id"])
	project := num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
	id := num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": app, "project_id": project,
		"upgrade_policy": "auto"}).JSON(t)["deploymentID"])
	mp.waitForStatus(t, tok, id, "installed", 2*time.Minute)

	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d/visibility", app), pub, map[string]any{"visibility": "private", "shared_with": []int64{}})
	mp.must(t, 201, "POST", fmt.Sprintf("/api/apps/%d/versions", app), pub, map[string]any{"hourly_rate": 1, "deployment": spec,
		"changelog": "for those who still see it"})
	time.Sleep(3 * time.Second) // several reconciler passes (every 500 ms here)
	if d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), tok, nil).JSON(t); d["status"] != "installed" || num(t, d["version"]) != 1 {
		t.Fatalf("the deployment of a consumer who no longer sees the application: status %v, version %v; want installed at v1", d["status"], d["version"])
	}
}
