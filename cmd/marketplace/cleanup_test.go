package main

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/testenv"
)

// TestFailedInstallLeavesNothingRunning installs a chart whose pods can never be scheduled: after its
// attempts it ends failed with a reason, says it was cleaned up, nothing of it remains in the cluster,
// and it was never billed.
func TestFailedInstallLeavesNothingRunning(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "2", "DEPLOY_TIMEOUT": "4s", "DEPLOY_RETRY_BACKOFF": "200ms"})
	ctx := context.Background()
	cs := kube(t)
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "never ready", "hourly_rate": 2,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"},
		"inputs":     []map[string]any{{"name": "nodeSelector.no-such-node", "default": testenv.Name("n")}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})

	ns := mp.Environ["K8S_NAMESPACE_PREFIX"] + "-deployment-1"
	waitFor(t, time.Minute, "the release's Deployment to exist, its pods pending", func() bool {
		_, err := cs.AppsV1().Deployments(ns).Get(ctx, "deployment-1-hello-web", metav1.GetOptions{})
		return err == nil
	})
	d := mp.waitForStatus(t, tok, 1, "failed", 2*time.Minute)
	reason, _ := d["failure_reason"].(string)
	for _, want := range []string{"attempt 2 of 2", "context deadline exceeded", "everything the install created was removed"} {
		if !strings.Contains(reason, want) {
			t.Errorf("failure reason %q does not say %q", reason, want)
		}
	}
	if d["cleaned_up_at"] == nil {
		t.Errorf("the deployment does not say it was cleaned up: %v", d)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil && n.DeletionTimestamp == nil {
		t.Fatalf("namespace %s after the failure is not being deleted", ns)
	}
	waitFor(t, time.Minute, "namespace "+ns+" to be gone", func() bool {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/instance=deployment-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if strings.HasPrefix(p.Namespace, mp.Environ["K8S_NAMESPACE_PREFIX"]+"-") {
			t.Errorf("pod %s/%s of the failed install remains", p.Namespace, p.Name)
		}
	}
	var records int
	query(t, mp.DatabaseURL, `SELECT count(*) FROM usage_records WHERE deployment_id = 1`, nil, &records)
	if records != 0 {
		t.Fatalf("a failed install has %d usage records", records)
	}
}
