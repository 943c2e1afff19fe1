package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestInstallsDuringRedisOutage stops a Redis of the test's own, requests installs (each accepted with
// 202), brings Redis back, and checks every one of them ends installed. The API and the worker are two
// processes, as when they scale out: in serve, an install also starts at once in a free slot of the
// process's own worker, Redis or not (internal/deploy/local.go), and this is about the queue's path.
func TestInstallsDuringRedisOutage(t *testing.T) {
	redis, err := testenv.StartRedis(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(redis.Stop)
	mp := startMarketplace(t, "api", map[string]string{"REDIS_URL": redis.URL(0)})
	startMarketplace(t, "worker", map[string]string{"REDIS_URL": redis.URL(0), "DATABASE_URL": mp.DatabaseURL,
		"K8S_NAMESPACE_PREFIX": mp.Environ["K8S_NAMESPACE_PREFIX"]})
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})

	redis.Stop()
	mp.must(t, 503, "GET", "/readyz", "", nil)
	var ids []int64
	for range 3 {
		r := mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
		ids = append(ids, num(t, r.JSON(t)["deploymentID"]))
	}
	time.Sleep(time.Second) // the reconciler tries, and fails, meanwhile
	for _, id := range ids {
		if d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), tok, nil).JSON(t); d["status"] != "pending" {
			t.Fatalf("deployment %d is %v during the outage, want pending", id, d["status"])
		}
	}

	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		mp.waitForStatus(t, tok, id, "installed", 3*time.Minute)
	}
	mp.must(t, 200, "GET", "/readyz", "", nil)
}
