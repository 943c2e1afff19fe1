package marketplace

import (
	"context"
	"time"
)

// AppVersion is one version of an application: what a deployment of it installs and what it costs. The
// application shows its latest version; a deployment keeps the one it was accepted with.
type AppVersion struct {
	ApplicationID int64          `json:"application_id"`
	Version       int            `json:"version"`
	HourlyRate    Money          `json:"hourly_rate"`
	Deployment    DeploymentSpec `json:"deployment"`
	Inputs        []Input        `json:"inputs"`
	Changelog     string         `json:"changelog"`
	// Signature is what its chart's provenance was found to be at publish (none for a vm version).
	Signature *ChartSignature `json:"signature,omitempty" doc:"k8s: the chart's provenance as checked at publish; verified is the verified mark"`
	// DeprecatedAt is when its publisher deprecated it: no new installs; running ones keep it.
	DeprecatedAt *time.Time `json:"deprecated_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
}

// MaxChangelogLength bounds a version's changelog.
const MaxChangelogLength = 10000

// Application returns app as of this version: its spec, inputs and rate.
func (v *AppVersion) Application(app *Application) *Application {
	a := *app
	a.HourlyRate, a.Deployment, a.Inputs, a.Version, a.Signature = v.HourlyRate, v.Deployment, v.Inputs, v.Version, v.Signature
	return &a
}

// Validate checks a new version of app (its name and description are the application's).
func (v *AppVersion) Validate(app *Application) error {
	if err := validateText("changelog", v.Changelog); err != nil {
		return err
	}
	if len(v.Changelog) > MaxChangelogLength {
		return Errorf(EINVALID, "changelog must be at most %d characters", MaxChangelogLength)
	}
	if v.Deployment.Type != app.Deployment.Type {
		return Errorf(EINVALID, "deployment.type %q: a version keeps its application's type %q; publish another application instead",
			v.Deployment.Type, app.Deployment.Type)
	}
	next := v.Application(app)
	if err := next.Validate(); err != nil {
		return err
	}
	v.Inputs = next.Inputs
	return nil
}

// VersionUpdate tells a deployment that a newer version of its application is out.
type VersionUpdate struct {
	Version    int      `json:"version"`
	HourlyRate Money    `json:"hourly_rate" doc:"the newer version's rate"`
	Waiting    string   `json:"waiting,omitempty" doc:"why an automatic upgrade to it waits for the consumer (its rate is above the deployment's max_hourly_rate)"`
	Changelogs []string `json:"changelogs" doc:"the changelogs of the versions after the deployment's (the newest MaxChangelogs of them), oldest first"`
	// ChangelogsOmitted counts the versions after the deployment's whose changelogs are not shown.
	ChangelogsOmitted int `json:"changelogs_omitted,omitempty" doc:"how many older changelogs since the deployment's version are left out (GET /api/apps/{id}/versions has them)"`
}

// MaxChangelogs bounds the changelogs an update notice carries.
const MaxChangelogs = 20

// VersionFilter selects versions of one application: only Version when it is not 0, only those after
// After, only those not deprecated with Open.
type VersionFilter struct {
	ApplicationID int64
	Version       int
	After         int
	Open          bool
	NewestFirst   bool
	Page          Page
}

// VersionService stores applications' versions. Anyone signed in reads the versions of a catalog
// application; only its publisher (or the operator) adds or deprecates them.
type VersionService interface {
	// CreateVersion adds the next version of an application, which becomes its current spec.
	CreateVersion(ctx context.Context, v *AppVersion) error
	// FindVersions lists a page of the versions of a catalog (or retired) application that f selects,
	// oldest first (newest first with NewestFirst), and how many it selects in all.
	FindVersions(ctx context.Context, f VersionFilter) ([]*AppVersion, int, error)
	// FindAppVersion returns an application as of one of its versions (0: the latest one not
	// deprecated), deprecated and retired ones included: a deployment pinned to it still needs it.
	FindAppVersion(ctx context.Context, appID int64, version int) (*Application, error)
	// DeprecateVersion stops new installs of a version; deployments of it keep running.
	DeprecateVersion(ctx context.Context, appID int64, version int) (*AppVersion, error)
}
