package main

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestHealthFollowsTheCluster installs a chart, then scales its workload to zero behind the
// marketplace's back: the deployment's health says so within seconds, and recovers when it is scaled
// back, while its recorded status stays installed.
func TestHealthFollowsTheCluster(t *testing.T) {
	mp := startMarketplace(t, "serve", nil)
	cs := kube(t)
	ctx := context.Background()
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "replicaCount", "type": "integer", "default": 2}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	d := mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	ns := d["placement"].(map[string]any)["namespace"].(string)

	health := func() map[string]any {
		d := mp.must(t, 200, "GET", "/api/deployments/1", tok, nil).JSON(t)
		if d["status"] != "installed" {
			t.Fatalf("recorded status %v, want installed throughout", d["status"])
		}
		h, _ := d["health"].(map[string]any)
		return h
	}
	waitHealth := func(want string, ready int64) {
		t.Helper()
		var h map[string]any
		waitFor(t, 15*time.Second, "health "+want, func() bool {
			h = health()
			w, _ := h["workloads"].([]any)
			return h["status"] == want && len(w) == 1 && num(t, w[0].(map[string]any)["ready"]) == ready
		})
		if num(t, h["revision"]) != 1 {
			t.Errorf("health %v: want release revision 1", h)
		}
	}
	waitHealth("healthy", 2)

	scale := func(replicas string) {
		_, err := cs.AppsV1().Deployments(ns).Patch(ctx, "deployment-1-hello-web", types.MergePatchType,
			[]byte(`{"spec":{"replicas":`+replicas+`}}`), metav1.PatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	scale("0")
	waitHealth("unhealthy", 0)
	scale("2")
	waitHealth("healthy", 2)

	// Lists carry no health (one cluster read per listed deployment would be too many).
	if l := mp.must(t, 200, "GET", "/api/deployments", tok, nil).List(t); l[0]["health"] != nil {
		t.Errorf("a listed deployment carries health: %v", l[0]["health"])
	}
}
