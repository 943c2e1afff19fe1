package kubernetes

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Health reads the deployment's workloads (ready and desired replicas of every Deployment, StatefulSet
// and DaemonSet in its namespace) and its release's deployed revision, as the marketplace's own identity.
// The four lists are independent: they are sent at once, so a read of the deployment waits for one
// round trip, not four.
func (p *Provider) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	ns := d.Placement.Namespace
	if ns == "" {
		ns = p.Namespace(d.ID)
	}
	var (
		deps    *appsv1.DeploymentList
		sets    *appsv1.StatefulSetList
		daemons *appsv1.DaemonSetList
		records *corev1.SecretList
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if deps, err = p.admin.AppsV1().Deployments(ns).List(gctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list the deployments of namespace %s: %w", ns, err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if sets, err = p.admin.AppsV1().StatefulSets(ns).List(gctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list the stateful sets of namespace %s: %w", ns, err)
		}
		return nil
	})
	g.Go(func() (err error) {
		if daemons, err = p.admin.AppsV1().DaemonSets(ns).List(gctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list the daemon sets of namespace %s: %w", ns, err)
		}
		return nil
	})
	g.Go(func() (err error) {
		records, err = p.admin.CoreV1().Secrets(ns).List(gctx, metav1.ListOptions{
			LabelSelector: "owner=helm,status=deployed,name=" + ReleaseName(d.ID)})
		if err != nil {
			return fmt.Errorf("list the release records of namespace %s: %w", ns, err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var workloads []marketplace.WorkloadHealth
	for _, w := range deps.Items {
		desired := int32(1)
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "Deployment", Name: w.Name, Ready: w.Status.ReadyReplicas, Desired: desired})
	}
	for _, w := range sets.Items {
		desired := int32(1)
		if w.Spec.Replicas != nil {
			desired = *w.Spec.Replicas
		}
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "StatefulSet", Name: w.Name, Ready: w.Status.ReadyReplicas, Desired: desired})
	}
	for _, w := range daemons.Items {
		workloads = append(workloads, marketplace.WorkloadHealth{Kind: "DaemonSet", Name: w.Name,
			Ready: w.Status.NumberReady, Desired: w.Status.DesiredNumberScheduled})
	}
	h := &marketplace.Health{Status: marketplace.HealthOf(workloads), Workloads: workloads, CheckedAt: time.Now().UTC()}
	for _, r := range records.Items {
		if v, err := strconv.Atoi(r.Labels["version"]); err == nil && v > h.Revision {
			h.Revision = v
		}
	}
	return h, nil
}
