package main

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestChartCannotLeaveItsNamespace installs a hostile chart that writes into another namespace (another
// tenant's, then default) and checks Helm, impersonating the project's deployer account, is refused: the
// deployment fails saying so, and nothing was written outside the project's namespace. The same chart's
// privileged hostPath pod is refused by Pod Security.
func TestChartCannotLeaveItsNamespace(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1"})
	ctx := context.Background()
	cs := kube(t)
	_, tokA := mp.user(t, "tenant A")
	_, tokB := mp.user(t, "tenant B")
	mp.must(t, 201, "POST", "/api/apps/new", tokA, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/apps/new", tokB, map[string]any{"name": "escape", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "escape"},
		"inputs": []map[string]any{{"name": "target", "default": "default"},
			{"name": "privileged", "type": "boolean", "default": false}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tokA, map[string]any{"name": "a"})
	mp.must(t, 201, "POST", "/api/user/project/new", tokB, map[string]any{"name": "b"})

	// Tenant A's namespace exists with a release in it.
	mp.must(t, 202, "POST", "/api/deployments/install", tokA, map[string]any{"application_id": 1, "project_id": 1})
	a := mp.waitForStatus(t, tokA, 1, "installed", 2*time.Minute)
	nsA := a["placement"].(map[string]any)["namespace"].(string)

	for i, target := range []string{nsA, "default"} {
		id := int64(i + 2)
		mp.must(t, 202, "POST", "/api/deployments/install", tokB,
			map[string]any{"application_id": 2, "project_id": 2, "inputs": map[string]any{"target": target}})
		d := mp.waitForStatus(t, tokB, id, "failed", 2*time.Minute)
		if reason, _ := d["failure_reason"].(string); !strings.Contains(reason, "forbidden") || !strings.Contains(reason, target) {
			t.Errorf("writing into %s: failure reason %q does not say it is forbidden there", target, reason)
		}
		name := "deployment-" + d["id"].(interface{ String() string }).String() + "-escaped"
		if _, err := cs.CoreV1().ConfigMaps(target).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("ConfigMap %s/%s: %v, want not found", target, name, err)
		}
	}

	// Nor through the node: a privileged pod with the host's filesystem is refused by Pod Security.
	nsB := mp.Environ["K8S_NAMESPACE_PREFIX"] + "-deployment-4"
	mp.must(t, 202, "POST", "/api/deployments/install", tokB, map[string]any{"application_id": 2, "project_id": 2,
		"inputs": map[string]any{"target": nsB, "privileged": true}})
	d := mp.waitForStatus(t, tokB, 4, "failed", 2*time.Minute)
	if reason, _ := d["failure_reason"].(string); !strings.Contains(reason, "violates PodSecurity") {
		t.Errorf("privileged pod: failure reason %q does not say it violates Pod Security", reason)
	}
	if _, err := cs.CoreV1().Pods(nsB).Get(ctx, "deployment-4-root", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("privileged pod: %v, want not found", err)
	}
}
