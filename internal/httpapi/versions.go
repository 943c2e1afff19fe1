package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type createVersionInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		HourlyRate marketplace.Money          `json:"hourly_rate" minimum:"0" doc:"price per hour of deployments of this version, at most 6 decimal places"`
		Deployment marketplace.DeploymentSpec `json:"deployment" doc:"the chart (or image) of this version; its type stays the application's"`
		Inputs     []marketplace.Input        `json:"inputs" required:"false" maxItems:"100"`
		Changelog  string                     `json:"changelog" required:"false" maxLength:"10000"`
	}
}

// createVersion publishes the next version of an application; it becomes the application's current
// spec, and deployments of earlier versions see it as an update.
func createVersion(versions marketplace.VersionService, urls URLChecker, vm marketplace.VMLimits, charts ChartChecker, log *slog.Logger) func(context.Context, *createVersionInput) (*body[*marketplace.AppVersion], error) {
	return func(ctx context.Context, in *createVersionInput) (*body[*marketplace.AppVersion], error) {
		v := &marketplace.AppVersion{ApplicationID: in.ID, HourlyRate: in.Body.HourlyRate, Deployment: in.Body.Deployment,
			Inputs: in.Body.Inputs, Changelog: in.Body.Changelog}
		if err := v.Deployment.CheckVMLimits(vm); err != nil {
			return nil, problem(ctx, log, err)
		}
		if err := checkURLs(ctx, urls, v.Deployment); err != nil {
			return nil, problem(ctx, log, err)
		}
		if charts != nil {
			sig, err := charts.CheckChart(ctx, in.ID, signer(ctx, 0), v.Deployment)
			if err != nil {
				return nil, problem(ctx, log, err)
			}
			v.Signature = sig
		}
		if err := versions.CreateVersion(ctx, v); err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.AppVersion]{redactVersion(v)}, nil
	}
}

type listVersionsInput struct {
	ID int64 `path:"id" minimum:"1"`
	OrderQuery
	PageQuery
}

// listVersions answers a page of an application's versions, oldest first unless asked otherwise (all
// of them while they fit one page, as before it was paged).
func listVersions(versions marketplace.VersionService, log *slog.Logger) func(context.Context, *listVersionsInput) (*paged[[]*marketplace.AppVersion], error) {
	return func(ctx context.Context, in *listVersionsInput) (*paged[[]*marketplace.AppVersion], error) {
		vs, total, err := versions.FindVersions(ctx, marketplace.VersionFilter{ApplicationID: in.ID, NewestFirst: in.newestFirst(), Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		for _, v := range vs {
			redactVersion(v)
		}
		return newPaged(&in.PageQuery, total, vs), nil
	}
}

type versionInput struct {
	ID      int64 `path:"id" minimum:"1"`
	Version int   `path:"version" minimum:"1"`
}

// deprecateVersion stops new installs of a version; running deployments keep it.
func deprecateVersion(versions marketplace.VersionService, log *slog.Logger) func(context.Context, *versionInput) (*body[*marketplace.AppVersion], error) {
	return func(ctx context.Context, in *versionInput) (*body[*marketplace.AppVersion], error) {
		v, err := versions.DeprecateVersion(ctx, in.ID, in.Version)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.AppVersion]{redactVersion(v)}, nil
	}
}

// withChangelogs completes a deployment's update notice with the changelogs of the versions after its
// own that take installs, oldest first: the newest MaxChangelogs of them, and how many more there are.
func withChangelogs(ctx context.Context, versions marketplace.VersionService, d *marketplace.Deployment) error {
	if d.UpdateAvailable == nil {
		return nil
	}
	vs, total, err := versions.FindVersions(ctx, marketplace.VersionFilter{ApplicationID: d.ApplicationID, After: d.Version, Open: true,
		NewestFirst: true, Page: marketplace.Page{Number: 1, Limit: marketplace.MaxChangelogs}})
	if err != nil {
		return err
	}
	d.UpdateAvailable.Changelogs = make([]string, len(vs))
	for i, v := range vs {
		d.UpdateAvailable.Changelogs[len(vs)-1-i] = v.Changelog
	}
	d.UpdateAvailable.ChangelogsOmitted = total - len(vs)
	return nil
}
