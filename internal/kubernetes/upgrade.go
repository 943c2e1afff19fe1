package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/storage/driver"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/render"
)

// Upgrade moves the deployment's release to app's chart and values (an upgrade, or a rollback to an
// earlier version: either way a new Helm revision), waits until it is ready, and returns its revision.
// If it does not become ready, Helm rolls the release back to the revision that ran before, so a failed
// upgrade leaves the previous version running; a third of the time left is kept for that rollback. A
// release left mid-upgrade by a crashed attempt is first rolled back to the revision that ran before.
func (p *Provider) Upgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (marketplace.Placement, int, error) {
	placement := marketplace.Placement{Namespace: d.Placement.Namespace, ReleaseName: ReleaseName(d.ID)}
	if placement.Namespace == "" {
		placement.Namespace = p.Namespace(d.ID)
	}
	values, err := app.Values(d.Inputs)
	if err != nil {
		return placement, 0, err
	}
	cfg, f, err := p.actionConfig(ctx, placement.Namespace, p.deployerUser(d.ID))
	if err != nil {
		return placement, 0, err
	}
	defer f.Close()

	last, err := cfg.Releases.Last(placement.ReleaseName)
	if err != nil {
		return placement, 0, fmt.Errorf("look up release %s: %w", placement.ReleaseName, err)
	}
	rel, err := release.NewAccessor(last)
	if err != nil {
		return placement, 0, err
	}
	if strings.HasPrefix(rel.Status(), "pending-") {
		if err := p.restoreDeployed(ctx, cfg, placement.ReleaseName); err != nil {
			return placement, 0, fmt.Errorf("restore release %s, left %s by an earlier attempt: %w", placement.ReleaseName, rel.Status(), err)
		}
		// Helm's next revision follows the last one, whatever its state: the rollback added one.
		if last, err = cfg.Releases.Last(placement.ReleaseName); err != nil {
			return placement, 0, fmt.Errorf("look up release %s: %w", placement.ReleaseName, err)
		}
		if rel, err = release.NewAccessor(last); err != nil {
			return placement, 0, err
		}
	}

	ch, archive, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return placement, 0, err
	}
	if err := checkDigest(app, archive); err != nil {
		return placement, 0, err
	}
	pre, caps, err := p.prerender(ctx, ch, archive, values, render.Release{Name: placement.ReleaseName, Namespace: placement.Namespace,
		Revision: rel.Version() + 1, IsUpgrade: true}, p.deployerUser(d.ID))
	if err != nil {
		return placement, 0, err
	}
	cfg.Capabilities = caps // those the chart was rendered with: Helm does not discover them again
	up := action.NewUpgrade(cfg)
	up.Namespace = placement.Namespace
	up.WaitStrategy = kube.StatusWatcherStrategy
	up.Timeout = timeLeft(ctx) * 2 / 3
	up.RollbackOnFailure = true
	up.MaxHistory = 20
	upgraded, err := up.RunWithContext(ctx, placement.ReleaseName, pre, values)
	if err != nil {
		return placement, 0, fmt.Errorf("helm upgrade %s to chart %s %s: %w (Helm rolls back to the revision that ran before)",
			placement.ReleaseName, ch.Metadata.Name, ch.Metadata.Version, err)
	}
	acc, err := release.NewAccessor(upgraded)
	if err != nil {
		return placement, 0, err
	}
	placement.ChartVersion = ch.Metadata.Version
	return placement, acc.Version(), nil
}

// restoreDeployed rolls release name back to its last deployed revision. Helm's Rollback.Run takes no
// context: it runs aside, bounded by its Timeout, and its clients are fenced like the attempt's.
func (p *Provider) restoreDeployed(ctx context.Context, cfg *action.Configuration, name string) error {
	version, err := lastRan(cfg, name)
	if err != nil {
		return err
	}
	rb := action.NewRollback(cfg)
	rb.Version = version
	rb.WaitStrategy = kube.StatusWatcherStrategy
	rb.Timeout = timeLeft(ctx) / 3
	done := make(chan error, 1)
	go func() { done <- rb.Run(name) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return errors.Join(errors.New("helm rollback did not finish"), ctx.Err())
	}
}

// lastRan is the revision of release name that ran before the upgrade left pending: its deployed one, or,
// when there is none, its newest superseded one. Helm marks the revision it upgrades from superseded and
// only then the new one deployed, so an attempt that dies between the two leaves no deployed revision.
func lastRan(cfg *action.Configuration, name string) (int, error) {
	deployed, err := cfg.Releases.Deployed(name)
	if err == nil {
		acc, err := release.NewAccessor(deployed)
		if err != nil {
			return 0, err
		}
		return acc.Version(), nil
	} else if !errors.Is(err, driver.ErrNoDeployedReleases) {
		return 0, fmt.Errorf("no deployed revision to return to: %w", err)
	}
	history, herr := cfg.Releases.History(name)
	if herr != nil {
		return 0, fmt.Errorf("no deployed revision to return to, and no history: %w", herr)
	}
	version := 0
	for _, r := range history {
		acc, err := release.NewAccessor(r)
		if err != nil {
			return 0, err
		}
		if acc.Status() == "superseded" && acc.Version() > version {
			version = acc.Version()
		}
	}
	if version == 0 {
		return 0, fmt.Errorf("no deployed or superseded revision to return to: %w", err)
	}
	return version, nil
}
