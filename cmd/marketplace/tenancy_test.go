package main

import (
	"fmt"
	"testing"
)

// TestTenancy gives two publishers and two consumers resources of their own and tries every endpoint on
// the other's: a 404 (or a 422 for an id in a body that is not the caller), never a 200 or a 403, and
// nothing changes. The operator sees and may do everything.
func TestTenancy(t *testing.T) {
	mp := startMarketplace(t, "api", nil)
	operator := mp.Environ["MARKETPLACE_ADMIN_TOKEN"]
	pubA, tokPubA := mp.user(t, "publisher A")
	_, tokPubB := mp.user(t, "publisher B")
	conA, tokConA := mp.user(t, "consumer A")
	conB, tokConB := mp.user(t, "consumer B")

	newApp := func(tok string) int64 {
		return num(t, mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "app", "hourly_rate": 2,
			"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}).JSON(t)["id"])
	}
	appA := newApp(tokPubA)
	newApp(tokPubB)
	newDeployment := func(tok string, app int64) (project, deployment int64) {
		project = num(t, mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"}).JSON(t)["id"])
		deployment = num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": app, "project_id": project}).JSON(t)["deploymentID"])
		return project, deployment
	}
	projA, depA := newDeployment(tokConA, appA)
	projB, depB := newDeployment(tokConB, appA)

	app := map[string]any{"name": "mine now", "hourly_rate": 0,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}
	cases := []struct {
		name, token, method, path string
		body                      any
		status                    int
	}{
		{"read A's projects", tokConB, "GET", fmt.Sprintf("/api/user/project/%d", conA), nil, 404},
		{"read A's project", tokConB, "GET", fmt.Sprintf("/api/user/project/%d/deployments", projA), nil, 404},
		{"delete A's project", tokConB, "DELETE", fmt.Sprintf("/api/user/project/%d", projA), nil, 404},
		{"create a project for A", tokConB, "POST", "/api/user/project/new", map[string]any{"name": "x", "user_id": conA}, 422},
		{"install into A's project", tokConB, "POST", "/api/deployments/install", map[string]any{"application_id": appA, "project_id": projA}, 404},
		{"install as A", tokConB, "POST", "/api/deployments/install", map[string]any{"consumer_id": conA, "application_id": appA, "project_id": projB}, 422},
		{"read A's deployment", tokConB, "GET", fmt.Sprintf("/api/deployments/%d", depA), nil, 404},
		{"delete A's deployment", tokConB, "DELETE", fmt.Sprintf("/api/deployments/%d", depA), nil, 404},
		{"read A's deployments", tokConB, "GET", fmt.Sprintf("/api/users/%d/deployments", conA), nil, 404},
		{"read A's bills", tokConB, "GET", fmt.Sprintf("/api/billing/user/%d", conA), nil, 404},
		{"read A's deployment bill", tokConB, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/%d", conA, depA), nil, 404},
		{"read A's deployment bill as oneself", tokConB, "GET", fmt.Sprintf("/api/billing/user/%d/deployment/%d", conB, depA), nil, 404},
		{"publisher reads a consumer's deployment", tokPubA, "GET", fmt.Sprintf("/api/deployments/%d", depA), nil, 404},
		{"update A's app", tokPubB, "PUT", fmt.Sprintf("/api/apps/%d", appA), app, 404},
		{"delete A's app", tokPubB, "DELETE", fmt.Sprintf("/api/apps/%d", appA), nil, 404},
		{"publish as A", tokPubB, "POST", "/api/apps/new", map[string]any{"name": "x", "hourly_rate": 1, "publisher_id": pubA,
			"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}}, 422},
		{"read a user that does not exist", tokConB, "GET", "/api/user/project/999", nil, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, mp.DatabaseURL)
			r := mp.call(t, tc.method, tc.path, tc.token, tc.body)
			if r.Status != tc.status {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.Status, tc.status, r.Body)
			}
			if after := snapshot(t, mp.DatabaseURL); after != before {
				t.Fatal("the database changed")
			}
		})
	}

	// Lists show only the caller's own.
	if l := mp.must(t, 200, "GET", "/api/deployments", tokConB, nil).List(t); len(l) != 1 || num(t, l[0]["id"]) != depB {
		t.Fatalf("consumer B's deployments: %v", l)
	}
	if l := mp.must(t, 200, "GET", "/api/users", tokConB, nil).List(t); len(l) != 1 || num(t, l[0]["id"]) != conB {
		t.Fatalf("users consumer B sees: %v", l)
	}
	// The catalog is public to every signed-in user.
	mp.must(t, 200, "GET", fmt.Sprintf("/api/apps/%d", appA), tokConB, nil)

	// The operator sees everything and acts for anyone.
	if l := mp.must(t, 200, "GET", "/api/users", operator, nil).List(t); len(l) != 4 {
		t.Fatalf("users the operator sees: %d, want 4", len(l))
	}
	if l := mp.must(t, 200, "GET", "/api/deployments", operator, nil).List(t); len(l) != 2 {
		t.Fatalf("deployments the operator sees: %d, want 2", len(l))
	}
	mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", depA), operator, nil)
	mp.must(t, 200, "GET", fmt.Sprintf("/api/billing/user/%d", conA), operator, nil)
	mp.must(t, 201, "POST", "/api/user/project/new", operator, map[string]any{"name": "for A", "user_id": conA})
	mp.must(t, 422, "POST", "/api/user/project/new", operator, map[string]any{"name": "for nobody"})
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", appA), operator, app)
	// The owner still may.
	mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", depA), tokConA, nil)
	mp.must(t, 200, "PUT", fmt.Sprintf("/api/apps/%d", appA), tokPubA, app)
}
