// Package deploy is the install and uninstall state machine, in two sides that different processes build:
//
//   - Requests (this file, upgrade.go, health.go, values.go) accepts requests: it validates them against
//     the deployment type's Inspector and marketplace.Offers, records them, and rings the queue. It reads
//     but never changes what runs. An `api` replica builds it with Inspectors that forward to workers.
//   - Runner (runner.go, local.go, reconcile.go) runs one attempt of an operation under a lease with the
//     type's Installer, retries with backoff, and reconciles the queue with the database. A `worker`
//     builds it; `serve` builds both, and its Requests start attempts on its own Runner at once.
//
// Before this split one Service did both, took one map of providers whose optional capabilities were
// Go method sets (Previewer, HealthChecker, Upgrader, ...) asserted at each use, and the api role
// composed stand-ins of those method sets by hand. Now a type offers what marketplace.Offers records,
// every caller consults that record, and the two sides take two plain interfaces.
//
// The database is the truth and the queue only a doorbell: a request is recorded before it is queued,
// every transition is guarded in SQL, and the reconciler re-queues whatever is owed, so a duplicate task
// is a no-op and a lost one is sent again.
package deploy

import (
	"context"
	"log/slog"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Store is what this package needs of the database.
type Store interface {
	marketplace.AppService
	marketplace.VersionService
	marketplace.ProjectService
	marketplace.DeploymentService
	marketplace.WorkStore
}

// Requests accepts install, upgrade and uninstall requests and answers the read side (previews, health,
// values schemas) through each type's Inspector. It runs no attempt itself.
type Requests struct {
	store Store
	queue marketplace.Enqueuer
	// inspectors are a worker's own, or in an API replica ones that forward to a worker; a type without
	// one is refused at request time.
	inspectors map[string]marketplace.Inspector
	local      *Runner // this process's own runner (serve), which starts what is recorded at once; nil otherwise
	log        *slog.Logger
	health     *lru[healthKey, *marketplace.Health]           // the last health seen of each deployment (health.go)
	schemas    *lru[marketplace.DeploymentSpec, cachedSchema] // the values schema of each package read lately (values.go)
	// requireSigned refuses installs and upgrades to a k8s version whose chart was not verified at publish.
	requireSigned bool
}

// RequireSignedCharts refuses, from now on, installs and upgrades to a k8s version whose chart's
// signature was not verified when it was published (MARKETPLACE_REQUIRE_SIGNED_CHARTS).
func (s *Requests) RequireSignedCharts(on bool) { s.requireSigned = on }

// checkSigned refuses app's version when signed charts are required and its chart was not verified.
func (s *Requests) checkSigned(app *marketplace.Application) error {
	if !s.requireSigned || app.Deployment.Type != marketplace.TypeK8s || (app.Signature != nil && app.Signature.Verified) {
		return nil
	}
	why := "it was published before its signature was checked"
	if app.Signature != nil && app.Signature.Reason != "" {
		why = app.Signature.Reason
	}
	return marketplace.Errorf(marketplace.ECONFLICT,
		"version %d of application %d is not a verified signed chart (%s), and this marketplace installs only verified ones (MARKETPLACE_REQUIRE_SIGNED_CHARTS)",
		app.Version, app.ID, why)
}

// NewRequests returns the request side. inspectors maps an application's deployment type to its
// provider's Inspector. local, when not nil, is this process's own Runner (the serve role): a request
// starts there at once when it has a free slot, beside the queued task.
func NewRequests(store Store, queue marketplace.Enqueuer, inspectors map[string]marketplace.Inspector, local *Runner, log *slog.Logger) *Requests {
	return &Requests{store: store, queue: queue, inspectors: inspectors, local: local, log: log,
		health: newLRU[healthKey, *marketplace.Health](healthCacheSize), schemas: newLRU[marketplace.DeploymentSpec, cachedSchema](schemaCacheSize)}
}

// InstallRequest is a consumer's request to deploy an application into a project.
type InstallRequest struct {
	ConsumerID    int64
	ApplicationID int64
	ProjectID     int64
	// Version is the application version to install; 0 is its latest one not deprecated.
	Version int
	// UpgradePolicy is manual (the default) or auto.
	UpgradePolicy string
	// MaxHourlyRate is the highest rate an automatic upgrade may move to; nil: the installed rate.
	MaxHourlyRate *marketplace.Money
	Inputs        map[string]any
}

// RequestInstall validates and records an install, then rings the queue. When the queue is unreachable
// the deployment is still recorded and the reconciler queues it later: acceptance is a promise.
func (s *Requests) RequestInstall(ctx context.Context, r InstallRequest) (*marketplace.Deployment, error) {
	d, _, err := s.checkInstall(ctx, r)
	if err != nil {
		return nil, err
	}
	// The version checked here is the one pinned: the store refuses it if it was deprecated meanwhile.
	if err := s.store.CreateDeployment(ctx, d); err != nil {
		return nil, err
	}
	s.ring(ctx, marketplace.Task{Op: marketplace.OpInstall, DeploymentID: d.ID})
	return d, nil
}

// PreviewInstall checks an install request as RequestInstall does and tells what the install would
// create and cost, recording and changing nothing.
func (s *Requests) PreviewInstall(ctx context.Context, r InstallRequest) (*marketplace.Preview, error) {
	d, app, err := s.checkInstall(ctx, r)
	if err != nil {
		return nil, err
	}
	// A real install meets the store's refusal of a deprecated version; a preview records nothing, so it
	// asks here.
	if r.Version != 0 {
		versions, _, err := s.store.FindVersions(ctx, marketplace.VersionFilter{ApplicationID: r.ApplicationID, Version: r.Version,
			Page: marketplace.Page{Number: 1, Limit: 1}})
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			if v.DeprecatedAt != nil {
				return nil, marketplace.Errorf(marketplace.ECONFLICT,
					"version %d of application %d is deprecated: it takes no new installs", r.Version, r.ApplicationID)
			}
		}
	}
	project, err := s.store.FindProjectByID(ctx, r.ProjectID)
	if err != nil {
		return nil, err
	} else if project.OrganizationID == 0 && project.UserID != r.ConsumerID {
		return nil, marketplace.Errorf(marketplace.ENOTFOUND, "project %d not found", r.ProjectID)
	}
	preview := &marketplace.Preview{Resources: []marketplace.PreviewResource{}}
	if marketplace.Offers(app.Deployment.Type).Preview {
		if preview, err = s.inspectors[app.Deployment.Type].Preview(ctx, d, app); err != nil {
			return nil, err
		}
	}
	preview.Version, preview.HourlyRate, preview.Cost30Days = app.Version, app.HourlyRate, marketplace.CostFor30Days(app.HourlyRate)
	return preview, nil
}

// checkInstall validates an install request: the application version exists and takes installs, a
// provider installs its type, and the inputs fit it. It returns the deployment to record and the
// application as of the version it pins.
func (s *Requests) checkInstall(ctx context.Context, r InstallRequest) (*marketplace.Deployment, *marketplace.Application, error) {
	app, err := s.store.FindAppVersion(ctx, r.ApplicationID, r.Version)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkSigned(app); err != nil {
		return nil, nil, err
	}
	if s.inspectors[app.Deployment.Type] == nil {
		enable := map[string]string{marketplace.TypeK8s: "set KUBECONFIG, or `make run` starts a local cluster",
			marketplace.TypeVM: "set LIBVIRT_URI, or `make vmhost` starts a local VM host"}[app.Deployment.Type]
		return nil, nil, marketplace.Errorf(marketplace.EINVALID,
			"application %d is of type %q, which this marketplace has no provider for (its operator can enable it: %s)", app.ID, app.Deployment.Type, enable)
	}
	values, err := app.Values(r.Inputs)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkValues(ctx, app, values); err != nil {
		return nil, nil, err
	}
	if r.MaxHourlyRate != nil && r.MaxHourlyRate.IsNegative() {
		return nil, nil, marketplace.Errorf(marketplace.EINVALID, "max_hourly_rate must not be negative")
	}
	d := &marketplace.Deployment{ConsumerID: r.ConsumerID, ApplicationID: r.ApplicationID, ProjectID: r.ProjectID,
		Version: app.Version, Inputs: r.Inputs, UpgradePolicy: r.UpgradePolicy, MaxHourlyRate: r.MaxHourlyRate}
	return d, app, nil
}

// RequestUninstall records an uninstall (which closes the usage record) and rings the queue.
func (s *Requests) RequestUninstall(ctx context.Context, id int64) (*marketplace.Deployment, error) {
	d, err := s.store.RequestUninstall(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.Status == marketplace.StatusUninstalling {
		s.ring(ctx, marketplace.Task{Op: marketplace.OpUninstall, DeploymentID: d.ID, Attempt: d.Attempts})
	}
	return d, nil
}

// ring starts t in this process's own runner when it has one with a free slot (local.go), and enqueues
// it right away so a worker starts without waiting for the reconciler otherwise. A failure to enqueue is
// only logged: the database already says the work is owed.
func (s *Requests) ring(ctx context.Context, t marketplace.Task) {
	if s.local != nil {
		s.local.startLocally(t)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if err := s.queue.Enqueue(ctx, t); err != nil {
		s.log.Warn("queue unreachable; the reconciler will queue the task", "task", t.ID(), "err", err)
	}
}
