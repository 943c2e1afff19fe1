package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Health lookups are bounded in time and remembered briefly, so reading a deployment never waits long
// on a slow cluster and a page polled every second costs the cluster a few reads a second at most.
const (
	healthDeadline  = 500 * time.Millisecond
	healthFreshness = 2 * time.Second
	healthCacheSize = 4096
)

// Health returns what the deployment's provider sees of it now: a recent answer from memory, or a fresh
// one within healthDeadline, or, when the provider is slow or failing, the last one seen marked unknown
// with the reason. A deployment that is not installed, or whose provider cannot tell, has none.
func (s *Requests) Health(ctx context.Context, d *marketplace.Deployment) *marketplace.Health {
	checker := s.inspectors[d.Type]
	if checker == nil || !marketplace.Offers(d.Type).Health || d.Status != marketplace.StatusInstalled {
		return nil
	}
	// Keyed by the deployment's last change too: what was seen before an upgrade says nothing of after.
	key := healthKey{d.ID, d.UpdatedAt.UnixNano()}
	last, _ := s.health.get(key)
	if last != nil && time.Since(last.CheckedAt) < healthFreshness {
		return last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthDeadline)
	defer cancel()
	h, err := checker.Health(ctx, d)
	if err != nil {
		unknown := &marketplace.Health{Status: marketplace.HealthUnknown, CheckedAt: time.Now().UTC(), Error: healthError(err)}
		if last != nil {
			unknown.Workloads, unknown.Revision, unknown.State = last.Workloads, last.Revision, last.State
		}
		return unknown
	}
	s.health.add(key, h)
	return h
}

type healthKey struct{ deployment, updated int64 }

func healthError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("the provider did not answer within %s; the workloads shown are the last seen", healthDeadline)
	}
	return "the provider could not be asked: " + err.Error()
}
