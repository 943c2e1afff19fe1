package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeploymentIsABoundary installs a hostile chart once per trick, each next to a victim deployment
// in the same project, and checks in the cluster itself that nothing escapes: a chart cannot read the
// victim's release record, intercept traffic with externalIPs, bind rights to an outsider, run a pod as
// the identity Helm uses, leave objects behind with resource-policy keep, or delete the binding Helm
// needs; a namespace with a deployment's name that the marketplace did not make is never adopted; and
// the next install still works.
func TestDeploymentIsABoundary(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"DEPLOY_MAX_ATTEMPTS": "1"})
	ctx := context.Background()
	cs := kube(t)
	prefix := mp.Environ["K8S_NAMESPACE_PREFIX"]
	system := prefix + "-system"
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "victim", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "hostile", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hostile"},
		"inputs": []map[string]any{{"name": "trick"}, {"name": "lookupNamespace"}, {"name": "systemNamespace"},
			{"name": "deployerAccount"}, {"name": "deployerRole"}}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "shared"})
	install := func(app int64, inputs map[string]any) int64 {
		return num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": app, "project_id": 1, "inputs": inputs}).JSON(t)["deploymentID"])
	}
	namespace := func(id int64) string { return fmt.Sprintf("%s-deployment-%d", prefix, id) }
	// gone waits until a deployment's namespace, with everything in it, is deleted: once the marketplace
	// has deleted it, Kubernetes finishes in the background.
	gone := func(id int64) {
		t.Helper()
		waitFor(t, time.Minute, "namespace "+namespace(id)+" to be gone", func() bool {
			_, err := cs.CoreV1().Namespaces().Get(ctx, namespace(id), metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		})
	}

	victim := install(1, nil)
	mp.waitForStatus(t, tok, victim, "installed", 2*time.Minute)
	vns := namespace(victim)
	n, err := cs.CoreV1().Namespaces().Get(ctx, vns, metav1.GetOptions{})
	if err != nil || n.Labels["marketplace.dev/project"] != "1" || n.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Fatalf("victim namespace %s: %v, labels %v", vns, err, n.Labels)
	}
	// The marketplace's fences are in the namespace, and the deployer identity is not.
	np, err := cs.NetworkingV1().NetworkPolicies(vns).Get(ctx, "marketplace-project-only", metav1.GetOptions{})
	if err != nil || len(np.Spec.Ingress) != 1 || np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["marketplace.dev/project"] != "1" {
		t.Errorf("network policy: %v %+v", err, np.Spec)
	}
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Egress) != 3 || !strings.Contains(fmt.Sprint(np.Spec.Egress[2].To), "169.254.0.0/16") {
		t.Errorf("network policy egress: %+v; want DNS, the project and public addresses only", np.Spec.Egress)
	}
	if q, err := cs.CoreV1().ResourceQuotas(vns).Get(ctx, "marketplace-quota", metav1.GetOptions{}); err != nil || q.Spec.Hard.Pods().Value() != 50 {
		t.Errorf("resource quota: %v %+v", err, q.Spec)
	}
	if _, err := cs.CoreV1().LimitRanges(vns).Get(ctx, "marketplace-limits", metav1.GetOptions{}); err != nil {
		t.Errorf("limit range: %v", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(vns).Get(ctx, "deployment-1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the deployer identity lives in the deployment's namespace (%v): its pods could use it", err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(system).Get(ctx, "deployment-1", metav1.GetOptions{}); err != nil {
		t.Errorf("the deployer identity in %s: %v", system, err)
	}

	// lookup: the victim's Secrets (its Helm release record) are out of reach at render time.
	id := install(2, map[string]any{"trick": "lookup", "lookupNamespace": vns})
	d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
	if reason := d["failure_reason"].(string); !strings.Contains(reason, "forbidden") {
		t.Errorf("lookup of %s: failure reason %q does not say it is forbidden", vns, reason)
	}
	gone(id)

	for _, tc := range []struct {
		trick  string
		reason string
		absent func(ns string) error
	}{
		{"externalips", "may not set spec.externalIPs", func(ns string) error {
			_, err := cs.CoreV1().Services(ns).Get(ctx, "intercept", metav1.GetOptions{})
			return err
		}},
		{"rolebinding", "may bind roles only to service accounts of its own namespace", func(ns string) error {
			_, err := cs.RbacV1().RoleBindings(ns).Get(ctx, "to-outsider", metav1.GetOptions{})
			return err
		}},
		{"helm-identity", "forbidden", func(string) error {
			_, err := cs.CoreV1().Pods(system).Get(ctx, "as-helm", metav1.GetOptions{})
			return err
		}},
		{"delete-binding", "may not be created, changed or deleted by a chart", nil},
		{"finalizer", "may not set finalizers of its own", func(ns string) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "undeletable", metav1.GetOptions{})
			return err
		}},
	} {
		inputs := map[string]any{"trick": tc.trick, "systemNamespace": system}
		id := install(2, inputs)
		if tc.trick == "helm-identity" {
			// The chart names the identity Helm uses for this very deployment.
			inputs["deployerAccount"] = fmt.Sprintf("deployment-%d", id)
		}
		d := mp.waitForStatus(t, tok, id, "failed", 2*time.Minute)
		if reason := d["failure_reason"].(string); !strings.Contains(reason, tc.reason) {
			t.Errorf("%s: failure reason %q does not say %q", tc.trick, reason, tc.reason)
		}
		if d["cleaned_up_at"] == nil {
			t.Errorf("%s: the failed deployment does not say it was cleaned up: %v", tc.trick, d)
		}
		if tc.absent != nil {
			if err := tc.absent(namespace(id)); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the object the chart tried is there (%v)", tc.trick, err)
			}
		}
		gone(id)
	}
	if _, err := cs.RbacV1().RoleBindings(vns).Get(ctx, "marketplace-deployer", metav1.GetOptions{}); err != nil {
		t.Errorf("the victim's deployer binding: %v", err)
	}

	// The chart gives its own service account the deployer's rights: its pods (run here as that account,
	// since kwok runs no containers) are held to the same rules as Helm.
	id = install(2, map[string]any{"trick": "own-account", "deployerRole": prefix + "-deployer"})
	mp.waitForStatus(t, tok, id, "installed", 2*time.Minute)
	asPod := kubeAs(t, fmt.Sprintf("system:serviceaccount:%s:default", namespace(id)))
	_, err = asPod.CoreV1().Services(namespace(id)).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "intercept"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}, ExternalIPs: []string{"10.0.0.1"}}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "externalIPs") {
		t.Errorf("the chart's own account made a Service with externalIPs: %v", err)
	}
	if err := asPod.RbacV1().RoleBindings(namespace(id)).Delete(ctx, "marketplace-deployer", metav1.DeleteOptions{}); err == nil || !strings.Contains(err.Error(), "may not be") {
		t.Errorf("the chart's own account deleted Helm's binding: %v", err)
	}
	_, err = asPod.RbacV1().RoleBindings(namespace(id)).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "to-everyone"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: prefix + "-deployer"},
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: "rbac.authorization.k8s.io", Name: "system:authenticated"}}}, metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "only to service accounts of its own namespace") {
		t.Errorf("the chart's own account bound the deployer role to everyone: %v", err)
	}
	if _, err := cs.RbacV1().RoleBindings(namespace(id)).Get(ctx, "marketplace-deployer", metav1.GetOptions{}); err != nil {
		t.Errorf("Helm's binding after the chart's account tried: %v", err)
	}

	// resource-policy keep: the uninstall removes the namespace with whatever the chart kept.
	id = install(2, map[string]any{"trick": "keep"})
	mp.waitForStatus(t, tok, id, "installed", 2*time.Minute)
	if _, err := cs.CoreV1().ConfigMaps(namespace(id)).Get(ctx, "left-behind", metav1.GetOptions{}); err != nil {
		t.Fatalf("the kept ConfigMap was never made: %v", err)
	}
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", id), tok, nil)
	mp.waitForStatus(t, tok, id, "uninstalled", 2*time.Minute)
	gone(id)
	if _, err := cs.CoreV1().ServiceAccounts(system).Get(ctx, fmt.Sprintf("deployment-%d", id), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the deployer identity of an uninstalled deployment: %v, want it gone", err)
	}

	// A namespace with the next deployment's name, made by someone else, is neither adopted nor deleted.
	next := id + 1
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(next)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := install(1, nil); got != next {
		t.Fatalf("deployment id %d, want %d", got, next)
	}
	d = mp.waitForStatus(t, tok, next, "failed", 2*time.Minute)
	if reason := d["failure_reason"].(string); !strings.Contains(reason, "never adopted") {
		t.Errorf("someone else's namespace: failure reason %q does not say it is never adopted", reason)
	}
	if n, err := cs.CoreV1().Namespaces().Get(ctx, namespace(next), metav1.GetOptions{}); err != nil || n.DeletionTimestamp != nil {
		t.Errorf("someone else's namespace %s was deleted: %v", namespace(next), err)
	}

	// Nothing above broke the marketplace: the victim still runs and a new install works.
	if d := mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", victim), tok, nil).JSON(t); d["status"] != "installed" {
		t.Fatalf("victim: %v", d["status"])
	}
	mp.waitForStatus(t, tok, install(1, nil), "installed", 2*time.Minute)
}
