package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Health reads the deployment's workloads (ready and desired replicas of every Deployment, StatefulSet
// and DaemonSet in its namespace) and its release's deployed revision, as the marketplace's own identity.
func (p *Provider) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	ns := d.Placement.Namespace
	if ns == "" {
		ns = p.Namespace(d.ID)
	}
	var workloads []marketplace.WorkloadHealth
	deps, err := p.admin.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the deployments of namespace %s: %w", ns, err)
	}
	for _, w := range deps.Items {
		desired := int32(1)
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "Deployment", Name: w.Name, Ready: w.Status.ReadyReplicas, Desired: desired})
	}
	sets, err := p.admin.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the stateful sets of namespace %s: %w", ns, err)
	}
	for _, w := range sets.Items {
		desired := int32(1)
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "StatefulSet", Name: w.Name, Ready: w.Status.ReadyReplicas, Desired: desired})
	}
	daemons, err := p.admin.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the daemon sets of namespace %s: %w", ns, err)
	}
	for _, w := range daemons.Items {
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "DaemonSet", Name: w.Name,
			Ready: w.Status.NumberReady, Desired: w.Status.DesiredNumberScheduled})
	}
	h := &marketplace.Health{Status: marketplace.HealthOf(workloads), Workloads: workloads, CheckedAt: time.Now().UTC()}
	records, err := p.admin.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{
		LabelSelector: "owner=helm,status=deployed,name=" + ReleaseName(d.ID)})
	if err != nil {
		return nil, fmt.Errorf("list the release records of namespace %s: %w", ns, err)
	}
	for _, r := range records.Items {
		if v, err := strconv.Atoi(r.Labels["version"]); err == nil && v > h.Revision {
			h.Revision = v
		}
	}
	return h, nil
}
