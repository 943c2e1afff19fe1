package main

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestOCIChart installs an application whose chart lives in a real OCI registry (oci:// reference,
// newest version picked from the registry's tags), then removes it; a version the registry does not
// have ends failed saying which versions it has.
func TestOCIChart(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1"})
	ctx := context.Background()
	cs := kube(t)
	_, tok := mp.user(t, "user")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web from a registry", "hourly_rate": 0.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.OCIRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "a version nobody pushed", "hourly_rate": 0.25,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.OCIRepo + "/hello-web", "chartVersion": "9.9.9"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})

	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	d := mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	placement := d["placement"].(map[string]any)
	ns := placement["namespace"].(string)
	if placement["chart_version"] != "0.1.0" {
		t.Fatalf("chart version %v, want 0.1.0", placement["chart_version"])
	}
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "deployment-1-hello-web", metav1.GetOptions{}); err != nil {
		t.Fatalf("the OCI chart's Deployment: %v", err)
	}
	mp.must(t, 202, "DELETE", "/api/deployments/1", tok, nil)
	mp.waitForStatus(t, tok, 1, "uninstalled", 2*time.Minute)
	if _, err := cs.AppsV1().Deployments(ns).Get(ctx, "deployment-1-hello-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Deployment after uninstall: %v, want not found", err)
	}

	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 2, "project_id": 1})
	failed := mp.waitForStatus(t, tok, 2, "failed", 2*time.Minute)
	if reason := failed["failure_reason"].(string); !strings.Contains(reason, `no version matching "9.9.9" (it has 0.1.0)`) {
		t.Fatalf("failure reason %q does not name the versions the registry has", reason)
	}
}
