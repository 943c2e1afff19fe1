package deploy

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Upgrades is how the reconciler asks for automatic upgrades: the request side's RequestUpgrade, the
// same checked and guarded request a consumer's is.
type Upgrades interface {
	RequestUpgrade(ctx context.Context, id int64, version int, inputs map[string]any) (*marketplace.Deployment, error)
}

// Reconcile queues every task the database says is owed, every ReconcileInterval until ctx is done, and
// requests the automatic upgrades that are due through upgrades. It is what makes an install accepted
// during a Redis outage run once Redis is back, and what takes over a deployment whose worker died.
func (s *Runner) Reconcile(ctx context.Context, upgrades Upgrades) error {
	ctx = marketplace.OperatorContext(ctx)
	// Removing failed deployments' resources can take as long as an uninstall: it runs beside the
	// re-queueing, never in its way.
	cleaning := make(chan struct{})
	go func() {
		defer close(cleaning)
		s.every(ctx, "clean up failed deployments", s.cleanUpFailures)
	}()
	s.every(ctx, "reconcile", func(ctx context.Context) error { return s.ReconcileOnce(ctx, upgrades) })
	<-cleaning
	return nil
}

// every runs f now and every ReconcileInterval until ctx is done.
func (s *Runner) every(ctx context.Context, what string, f func(context.Context) error) {
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn(what, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReconcileOnce queues the owed tasks once.
func (s *Runner) ReconcileOnce(ctx context.Context, upgrades Upgrades) error {
	if n, err := s.store.FailAbandoned(ctx, s.cfg.MaxAttempts); err != nil {
		return err
	} else if n > 0 {
		s.log.Warn("deployments failed: their last attempt never reported back", "count", n)
	}
	tasks, err := s.store.FindOwedWork(ctx, 500)
	if err != nil {
		return err
	}
	s.metrics.owed.Set(float64(len(tasks)))
	for _, t := range tasks {
		if err := s.queue.Enqueue(ctx, t); err != nil {
			return fmt.Errorf("re-queue %d owed task(s): %w", len(tasks), err)
		}
	}
	if err := s.upgradeAutomatically(ctx, upgrades); err != nil {
		return err
	}
	return s.removeDeletedProjects(ctx)
}

// upgradeAutomatically requests the upgrade of every deployment that follows its application's
// versions and is behind. The request is the same guarded transition a consumer's is, so two
// reconcilers asking at once make one upgrade.
func (s *Runner) upgradeAutomatically(ctx context.Context, upgrades Upgrades) error {
	ups, err := s.store.FindAutoUpgrades(ctx, 100)
	if err != nil {
		return err
	}
	for _, up := range ups {
		if _, err := upgrades.RequestUpgrade(ctx, up.DeploymentID, up.Version, nil); err != nil && marketplace.ErrorCode(err) == marketplace.EINTERNAL {
			return err
		} else if err != nil {
			s.log.Info("automatic upgrade not requested", "deployment", up.DeploymentID, "err", err)
		}
	}
	return nil
}

// cleanUpFailures removes the resources of failed deployments that still may have some: a final failure
// whose own clean-up failed, or one whose worker never reported back. Each removal holds the deployment
// under a lease that outlasts its deadline, and the provider returns only once its work has stopped, so
// two removals (or a removal and an uninstall the consumer asked for) never overlap, on any replica.
func (s *Runner) cleanUpFailures(ctx context.Context) error {
	ds, err := s.store.FindUncleanedFailures(ctx, 20)
	if err != nil {
		return err
	}
	// A few at a time: one whose removal hangs until its deadline must not hold up the others.
	var g errgroup.Group
	g.SetLimit(4)
	for _, d := range ds {
		if s.installers[d.Type] == nil {
			continue // another process, with that provider, removes them
		}
		g.Go(func() error { return s.cleanUp(ctx, d) })
	}
	return g.Wait()
}

// cleanUp removes one failed deployment's resources, if no other removal holds it.
func (s *Runner) cleanUp(ctx context.Context, d *marketplace.Deployment) error {
	timeout := max(s.cfg.OperationTimeout, 2*time.Minute)
	if held, err := s.store.ClaimCleanup(ctx, d.ID, timeout+s.cfg.Lease); err != nil || !held {
		return err
	}
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	err := s.runUninstall(opCtx, d)
	cancel()
	if err != nil {
		s.log.Warn("could not remove the resources of a failed deployment; trying again once its claim lapses", "deployment", d.ID, "err", err)
		return nil
	}
	return s.store.MarkCleanedUp(ctx, d.ID)
}

// removeDeletedProjects removes what providers keep per project (a namespace) for projects deleted
// since the last pass. A project can only be deleted once none of its deployments is live, so there is
// nothing of a deployment left to lose.
func (s *Runner) removeDeletedProjects(ctx context.Context) error {
	ids, err := s.store.FindDeletedProjects(ctx, 100)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for typ, p := range s.installers {
			if err := p.RemoveProject(ctx, id); err != nil {
				return fmt.Errorf("remove %s resources of project %d: %w", typ, id, err)
			}
		}
		if err := s.store.MarkProjectRemoved(ctx, id); err != nil {
			return err
		}
	}
	return nil
}
