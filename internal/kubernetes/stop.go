package kubernetes

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// stopPods returns once no pod runs in namespace ns, whose deletion has been asked for. An uninstall is
// reported (and the deployment no longer billed) once it returns, so nothing of the deployment may
// still run then. Helm has waited for its release's objects to go; what a chart kept
// (helm.sh/resource-policy: keep) or made outside its release would run on until the namespace
// controller reaches it, seconds later on a busy control plane, so its pods are deleted here and waited
// for. The usual case, nothing left, costs one list.
func (p *Provider) stopPods(ctx context.Context, ns string) error {
	pods := p.admin.CoreV1().Pods(ns)
	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the pods left in namespace %s: %w", ns, err)
	}
	if len(list.Items) == 0 {
		return nil
	}
	left := map[string]bool{}
	for _, pod := range list.Items {
		left[pod.Name] = true
	}
	// The namespace is terminating: nothing can make new pods in it, so these are the last.
	err = pods.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the pods left in namespace %s: %w", ns, err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return fmt.Errorf("watch the pods left in namespace %s: %w", ns, err)
	}
	defer w.Stop()
	for len(left) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d pod(s) of namespace %s still running: %w", len(left), ns, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return p.stopPods(ctx, ns) // the watch ended: look again
			}
			if ev.Type == watch.Deleted {
				if m, err := meta.Accessor(ev.Object); err == nil {
					delete(left, m.GetName())
				}
			}
		}
	}
	return nil
}
