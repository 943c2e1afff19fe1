package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestChartObjectsStayInTheirTenancy creates, as a deployment's own deployer identity (what Helm
// installs a chart as), the objects that reach past a namespace on a real cluster: the API server
// refuses each with the marketplace's reason, and still takes their harmless forms. Ingresses are
// refused outright without K8S_INGRESS_DOMAIN (the second marketplace) and limited to the deployment's
// own domain with it.
func TestChartObjectsStayInTheirTenancy(t *testing.T) {
	mp := startMarketplace(t, "serve", map[string]string{"K8S_INGRESS_DOMAIN": "apps.example.test", "K8S_MAX_GRACE_PERIOD": "60"})
	ctx := context.Background()
	prefix := mp.Environ["K8S_NAMESPACE_PREFIX"]
	_, tok := mp.user(t, "consumer")
	mp.must(t, 201, "POST", "/api/apps/new", tok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	mp.must(t, 201, "POST", "/api/user/project/new", tok, map[string]any{"name": "p"})
	mp.must(t, 202, "POST", "/api/deployments/install", tok, map[string]any{"application_id": 1, "project_id": 1})
	mp.waitForStatus(t, tok, 1, "installed", 2*time.Minute)
	ns := prefix + "-deployment-1"
	chart := kubeAs(t, "system:serviceaccount:"+prefix+"-system:deployment-1")

	refused := func(what, want string, create func(kubernetes.Interface) error) {
		t.Helper()
		err := create(chart)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want refused with %q", what, err, want)
		}
	}
	accepted := func(what string, create func(kubernetes.Interface) error) {
		t.Helper()
		if err := create(chart); err != nil {
			t.Errorf("%s: %v, want accepted", what, err)
		}
	}
	noNodePorts := false
	service := func(name string, mutate func(*corev1.Service)) func(kubernetes.Interface) error {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": "x"}}}
		mutate(s)
		return func(cs kubernetes.Interface) error {
			_, err := cs.CoreV1().Services(ns).Create(ctx, s, metav1.CreateOptions{})
			return err
		}
	}
	// A policy the API server has just been given takes a moment to hold: wait for it, once.
	effective := func(probe func(kubernetes.Interface) error, want string, remove func()) {
		t.Helper()
		waitFor(t, time.Minute, "the admission policy to take effect", func() bool {
			err := probe(chart)
			if err == nil {
				remove()
			}
			return err != nil && strings.Contains(err.Error(), want)
		})
	}
	effective(service("probe", func(s *corev1.Service) {
		s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}
	}), "ExternalName", func() { chart.CoreV1().Services(ns).Delete(ctx, "probe", metav1.DeleteOptions{}) })
	refused("an ExternalName Service", "ExternalName", service("external", func(s *corev1.Service) {
		s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "postgres.other-tenant.svc.cluster.local"}
	}))
	refused("a load balancer's chosen address", "spec.loadBalancerIP", service("lb-ip", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.LoadBalancerIP, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeLoadBalancer, "192.0.2.10", &noNodePorts
	}))
	refused("a load balancer's address by annotation", "through annotations", service("lb-annotation", func(s *corev1.Service) {
		s.Spec.Type, s.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeLoadBalancer, &noNodePorts
		s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "192.0.2.10"}
	}))
	accepted("a plain Service", service("plain", func(*corev1.Service) {}))

	ingress := func(name string, annotations map[string]string, hosts ...string) func(kubernetes.Interface) error {
		prefixType := networkingv1.PathTypePrefix
		ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
		for _, h := range hosts {
			ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: h, IngressRuleValue: networkingv1.IngressRuleValue{
				HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: &prefixType,
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "plain", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}})
		}
		return func(cs kubernetes.Interface) error {
			_, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{})
			return err
		}
	}
	own := ns + ".apps.example.test"
	refused("an Ingress for another tenant's host", "only hosts under its own domain", ingress("other", nil, "shop.example.com"))
	refused("an Ingress for another deployment's domain", "only hosts under its own domain", ingress("neighbour", nil, prefix+"-deployment-2.apps.example.test"))
	refused("an Ingress without a host (every host)", "only hosts under its own domain", ingress("catch-all", nil, ""))
	refused("an Ingress with a controller's configuration", "only these annotations", ingress("configured",
		map[string]string{"nginx.ingress.kubernetes.io/server-alias": "shop.example.com"}, own))
	accepted("an Ingress for its own domain", ingress("own", map[string]string{"cert-manager.io/cluster-issuer": "letsencrypt"}, own, "www."+own))

	year := int64(365 * 24 * 3600)
	refused("a pod that takes a year to stop", "at most 60 seconds", func(cs kubernetes.Interface) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "slow"},
			Spec: corev1.PodSpec{TerminationGracePeriodSeconds: &year, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}, metav1.CreateOptions{})
		return err
	})
	deployment := func(name string, mutate func(*appsv1.Deployment)) func(kubernetes.Interface) error {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
		mutate(d)
		return func(cs kubernetes.Interface) error {
			_, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
			return err
		}
	}
	refused("a Deployment whose pods take a year to stop", "at most 60 seconds", deployment("slow", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = &year
	}))
	refused("a Deployment whose pods carry a finalizer", "pod or volume claim templates", deployment("kept", func(d *appsv1.Deployment) {
		d.Spec.Template.Finalizers = []string{"example.com/never"}
	}))
	refused("a StatefulSet whose claims carry a finalizer", "pod or volume claim templates", func(cs kubernetes.Interface) error {
		_, err := cs.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Spec: appsv1.StatefulSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "kept"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "kept"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data", Finalizers: []string{"example.com/never"}},
				Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}}}}},
			metav1.CreateOptions{})
		return err
	})
	thirty := int64(30)
	accepted("a Deployment of ordinary pods", deployment("ordinary", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = &thirty
	}))

	// Without K8S_INGRESS_DOMAIN, a marketplace lets charts create no Ingress at all.
	other := startMarketplace(t, "serve", nil)
	oprefix := other.Environ["K8S_NAMESPACE_PREFIX"]
	_, otok := other.user(t, "consumer")
	other.must(t, 201, "POST", "/api/apps/new", otok, map[string]any{"name": "web", "hourly_rate": 1,
		"deployment": map[string]any{"type": "k8s", "repoURL": tenv.ChartRepo, "chartName": "hello-web"}})
	other.must(t, 201, "POST", "/api/user/project/new", otok, map[string]any{"name": "p"})
	other.must(t, 202, "POST", "/api/deployments/install", otok, map[string]any{"application_id": 1, "project_id": 1})
	other.waitForStatus(t, otok, 1, "installed", 2*time.Minute)
	ns = oprefix + "-deployment-1"
	chart = kubeAs(t, "system:serviceaccount:"+oprefix+"-system:deployment-1")
	effective(ingress("probe", nil, ns+".apps.example.test"), "no K8S_INGRESS_DOMAIN",
		func() { chart.NetworkingV1().Ingresses(ns).Delete(ctx, "probe", metav1.DeleteOptions{}) })
	refused("an Ingress where no domain is configured", "no K8S_INGRESS_DOMAIN", ingress("any", nil, fmt.Sprintf("%s.apps.example.test", ns)))
}
