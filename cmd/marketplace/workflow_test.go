package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSeedWorkflow drives SEED_API.md's workflow through HTTP against real PostgreSQL, Redis and the
// local cluster, and checks the cluster itself and the bill.
func TestSeedWorkflow(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	ctx := context.Background()
	cs := kube(t)

	// 1. Two users.
	u1, tok1 := mp.user(t, "User 1")
	u2, tok2 := mp.user(t, "User 2")
	if u1 != 1 || u2 != 2 {
		t.Fatalf("user ids %d, %d; want 1, 2", u1, u2)
	}

	// 2. User 1 publishes the bundled chart, the seed's body with this machine's repository.
	app := mp.must(t, 201, "POST", "/api/apps/new", tok1, map[string]any{
		"name": "Kubernetes App", "description": "This is a Kubernetes-based application",
		"publisher_id": 1, "hourly_rate": 1.1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web",
			"image": "", "cpu": "", "memory": ""},
		"inputs": []map[string]any{{"name": "replicaCount", "type": "integer", "default": 2}},
	}).JSON(t)
	if num(t, app["id"]) != 1 || app["hourly_rate"].(fmt.Stringer).String() != "1.1" {
		t.Fatalf("created app: %v", app)
	}

	// 3. User 2 creates a project.
	project := mp.must(t, 201, "POST", "/api/user/project/new", tok2, map[string]any{"name": "p1", "user_id": 2}).JSON(t)
	if num(t, project["id"]) != 1 || num(t, project["user_id"]) != 2 {
		t.Fatalf("created project: %v", project)
	}

	// 4. User 2 deploys application 1 into project 1.
	queued := mp.must(t, 202, "POST", "/api/deployments/install", tok2,
		map[string]any{"consumer_id": 2, "application_id": 1, "project_id": 1}).JSON(t)
	if queued["message"] != "Deployment request queued" || num(t, queued["deploymentID"]) != 1 {
		t.Fatalf("install answer: %v", queued)
	}
	d := mp.waitForStatus(t, tok2, 1, "installed", 2*time.Minute)
	placement := d["placement"].(map[string]any)
	ns, release := placement["namespace"].(string), placement["release_name"].(string)
	if !strings.HasPrefix(ns, mp.Environ["K8S_NAMESPACE_PREFIX"]+"-deployment-1") || release == "" || placement["chart_version"] != "0.1.0" {
		t.Fatalf("placement: %v", placement)
	}

	// The release's Deployment is Ready with the app's default of 2 replicas, and its Service exists.
	name := release + "-hello-web"
	dep, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment %s/%s: %v", ns, name, err)
	}
	if dep.Status.ReadyReplicas != 2 || *dep.Spec.Replicas != 2 {
		t.Fatalf("Deployment %s: %d of %d replicas ready, want 2 of 2", name, dep.Status.ReadyReplicas, *dep.Spec.Replicas)
	}
	svc, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP == "" {
		t.Fatalf("Service %s/%s: %v (cluster IP %q)", ns, name, err, svc.Spec.ClusterIP)
	}
	if rels := helmReleases(t, ns, release); len(rels) != 1 || rels[0].Labels["status"] != "deployed" {
		t.Fatalf("helm release records: %d, want 1 deployed", len(rels))
	}

	// 5. Billing: one open record at the application's rate, accruing; the job stores the amount.
	time.Sleep(2200 * time.Millisecond)
	bill := mp.must(t, 200, "GET", "/api/billing/user/2/deployment/1", tok2, nil).JSON(t)
	records := bill["records"].([]any)
	if len(records) != 1 {
		t.Fatalf("billing records: %v", bill)
	}
	rec := records[0].(map[string]any)
	if rec["hourly_rate"].(fmt.Stringer).String() != "1.1" || rec["ended_at"] != nil {
		t.Fatalf("open record: %v", rec)
	}
	if amount := decimal.RequireFromString(rec["amount"].(fmt.Stringer).String()); !amount.IsPositive() {
		t.Fatalf("amount after 2s at 1.1/h is %s, want > 0", amount)
	}
	var metered decimal.Decimal
	query(t, mp.DatabaseURL, `SELECT amount FROM usage_records WHERE deployment_id = 1`, nil, &metered)
	if !metered.IsPositive() {
		t.Fatalf("the billing job stored amount %s, want > 0", metered)
	}

	// The other read endpoints.
	if l := mp.must(t, 200, "GET", "/api/users/2/deployments?status=installed", tok2, nil).List(t); len(l) != 1 {
		t.Fatalf("user 2's installed deployments: %v", l)
	}
	if l := mp.must(t, 200, "GET", "/api/user/project/2", tok2, nil).List(t); len(l) != 1 || l[0]["name"] != "p1" {
		t.Fatalf("user 2's projects: %v", l)
	}
	withDeps := mp.must(t, 200, "GET", "/api/user/project/1/deployments", tok2, nil).JSON(t)
	if deps := withDeps["deployments"].([]any); len(deps) != 1 {
		t.Fatalf("project 1 with deployments: %v", withDeps)
	}
	if l := mp.must(t, 200, "GET", "/api/deployments", tok2, nil).List(t); len(l) != 1 {
		t.Fatalf("user 2's deployments: %v", l)
	}
	page := mp.must(t, 200, "GET", "/api/apps?page=1&limit=10&deploymentType=k8s&publisher=1", tok2, nil).JSON(t)
	if num(t, page["total_items"]) != 1 || num(t, page["total_pages"]) != 1 || len(page["data"].([]any)) != 1 {
		t.Fatalf("catalog page: %v", page)
	}
	mp.must(t, 409, "DELETE", "/api/user/project/1", tok2, nil)
	mp.must(t, 409, "DELETE", "/api/apps/1", tok1, nil)

	// 6. Delete: billing stops at the request, the release and its resources go.
	mp.must(t, 202, "DELETE", "/api/deployments/1", tok2, nil)
	closed := mp.must(t, 200, "GET", "/api/billing/user/2/deployment/1", tok2, nil).JSON(t)["records"].([]any)[0].(map[string]any)
	if closed["ended_at"] == nil {
		t.Fatalf("usage record still open right after DELETE: %v", closed)
	}
	mp.waitForStatus(t, tok2, 1, "uninstalled", 2*time.Minute)
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Deployment %s after uninstall: %v, want not found", name, err)
	}
	if _, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Service %s after uninstall: %v, want not found", name, err)
	}
	if rels := helmReleases(t, ns, release); len(rels) != 0 {
		t.Fatalf("%d helm release records after uninstall, want 0", len(rels))
	}

	// The closed record: an end after its start and an amount the formula reproduces exactly.
	final := mp.must(t, 200, "GET", "/api/billing/user/2", tok2, nil).JSON(t)
	rec = final["records"].([]any)[0].(map[string]any)
	started, _ := time.Parse(time.RFC3339Nano, rec["started_at"].(string))
	ended, _ := time.Parse(time.RFC3339Nano, rec["ended_at"].(string))
	if !ended.After(started) {
		t.Fatalf("record ends %v, not after its start %v", ended, started)
	}
	seconds := decimal.NewFromInt(int64(ended.Sub(started) / time.Second))
	want := decimal.RequireFromString("1.1").Mul(seconds).DivRound(decimal.NewFromInt(3600), 6)
	got := decimal.RequireFromString(rec["amount"].(fmt.Stringer).String())
	if !got.Equal(want) || got.IsNegative() {
		t.Fatalf("amount %s, want 1.1 × %s s / 3600 = %s", got, seconds, want)
	}
	if total := final["total_amount"].(fmt.Stringer).String(); !decimal.RequireFromString(total).Equal(got) {
		t.Fatalf("total_amount %s, want %s", total, got)
	}

	// An operator sees both attempts in the metrics.
	mp.must(t, 401, "GET", "/metrics", tok1, nil)
	metrics := string(mp.must(t, 200, "GET", "/metrics", mp.Environ["MARKETPLACE_ADMIN_TOKEN"], nil).Body)
	for _, want := range []string{`marketplace_deploy_attempts_total{op="install",outcome="done"} 1`,
		`marketplace_deploy_attempts_total{op="uninstall",outcome="done"} 1`,
		`marketplace_queue_tasks{queue="installer_queue",state="pending"} 0`, `marketplace_queue_up 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// With nothing live, the project and the application may go.
	mp.must(t, 204, "DELETE", "/api/user/project/1", tok2, nil)
	mp.must(t, 204, "DELETE", "/api/apps/1", tok1, nil)
	waitFor(t, time.Minute, "the uninstalled deployment's namespace to go", func() bool {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	mp.must(t, 404, "GET", "/api/apps/1", tok1, nil)
}
