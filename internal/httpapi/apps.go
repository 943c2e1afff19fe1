package httpapi

import (
	"context"
	"log/slog"
	"strings"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// appRequest is the body that creates or replaces an application.
type appRequest struct {
	Name        string                     `json:"name" minLength:"1" maxLength:"100"`
	Description string                     `json:"description" required:"false" maxLength:"10000"`
	PublisherID int64                      `json:"publisher_id" required:"false" minimum:"1" doc:"defaults to the caller; must be the caller unless the operator acts"`
	HourlyRate  marketplace.Money          `json:"hourly_rate" minimum:"0" doc:"price per hour, at most 6 decimal places"`
	Deployment  marketplace.DeploymentSpec `json:"deployment"`
	Inputs      []marketplace.Input        `json:"inputs" required:"false" maxItems:"100" doc:"install-time parameters a consumer may set"`
}

func (r *appRequest) application(ctx context.Context, c marketplace.Caller, urls URLChecker, vm marketplace.VMLimits) (*marketplace.Application, error) {
	publisher, err := c.ResolveOwner("publisher_id", r.PublisherID)
	if err != nil {
		return nil, err
	}
	a := &marketplace.Application{Name: r.Name, Description: r.Description, PublisherID: publisher,
		HourlyRate: r.HourlyRate, Deployment: r.Deployment, Inputs: r.Inputs}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if err := a.Deployment.CheckVMLimits(vm); err != nil {
		return nil, err
	}
	return a, checkURLs(ctx, urls, a.Deployment)
}

// URLChecker refuses a URL the marketplace would not fetch from for a publisher: one whose host is an
// internal address (loopback, private, link-local...) the operator did not allow. Its errors say why.
type URLChecker interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// checkURLs refuses, before anything is stored, an application whose chart repository (or VM image URL)
// is known now to point inside the operator's network. Fetches are checked again when they dial.
func checkURLs(ctx context.Context, urls URLChecker, spec marketplace.DeploymentSpec) error {
	if urls == nil {
		return nil
	}
	field, u := "deployment.repoURL", spec.RepoURL
	if spec.Type == marketplace.TypeVM {
		field, u = "deployment.image", spec.Image
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return nil // a path on the VM host, not a fetch
		}
	}
	if err := urls.CheckURL(ctx, u); err != nil {
		return marketplace.Errorf(marketplace.EINVALID, "%s %q: %v", field, u, err)
	}
	return nil
}

type createAppInput struct {
	Body appRequest
}

func createApp(apps marketplace.AppService, urls URLChecker, vm marketplace.VMLimits, log *slog.Logger) func(context.Context, *createAppInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *createAppInput) (*body[*marketplace.Application], error) {
		a, err := in.Body.application(ctx, marketplace.CallerFrom(ctx), urls, vm)
		if err == nil {
			err = apps.CreateApp(ctx, a)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

type listAppsInput struct {
	Page           int    `query:"page" minimum:"1" maximum:"1000000" default:"1"`
	Limit          int    `query:"limit" minimum:"1" maximum:"100" default:"20"`
	Publisher      int64  `query:"publisher" minimum:"0" doc:"only this publisher's applications"`
	DeploymentType string `query:"deploymentType" enum:"k8s,vm" doc:"only applications of this type"`
}

type appPage struct {
	Data       []*marketplace.Application `json:"data"`
	Page       int                        `json:"page"`
	Limit      int                        `json:"limit"`
	TotalItems int                        `json:"total_items"`
	TotalPages int                        `json:"total_pages"`
}

func listApps(apps marketplace.AppService, log *slog.Logger) func(context.Context, *listAppsInput) (*body[appPage], error) {
	return func(ctx context.Context, in *listAppsInput) (*body[appPage], error) {
		data, total, err := apps.FindApps(ctx, marketplace.AppFilter{
			PublisherID: in.Publisher, DeploymentType: in.DeploymentType, Page: in.Page, Limit: in.Limit})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[appPage]{appPage{Data: redactApps(data), Page: in.Page, Limit: in.Limit, TotalItems: total,
			TotalPages: (total + in.Limit - 1) / in.Limit}}, nil
	}
}

func getApp(apps marketplace.AppService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Application], error) {
		a, err := apps.FindAppByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

type updateAppInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body appRequest
}

// updateApp replaces an application. Open usage records keep the rate they started with. A repoURL
// sent back as it was read (credentials redacted) keeps the stored credentials.
func updateApp(apps marketplace.AppService, urls URLChecker, vm marketplace.VMLimits, log *slog.Logger) func(context.Context, *updateAppInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *updateAppInput) (*body[*marketplace.Application], error) {
		caller := marketplace.CallerFrom(ctx)
		current, err := apps.FindAppByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		if in.Body.PublisherID == 0 && caller.Operator {
			in.Body.PublisherID = current.PublisherID
		}
		keepStoredCredentials(&in.Body.Deployment, current.Deployment)
		a, err := in.Body.application(ctx, caller, urls, vm)
		if err == nil {
			a.ID = in.ID
			err = apps.UpdateApp(ctx, a)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{redactApp(a)}, nil
	}
}

// retireApp takes an application out of the catalog; its running deployments keep it.
func retireApp(apps marketplace.AppService, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Application], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Application], error) {
		if err := apps.RetireApp(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		a, err := apps.FindAppByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[*marketplace.Application]{Body: redactApp(a)}, nil
	}
}

func deleteApp(apps marketplace.AppService, log *slog.Logger) func(context.Context, *idInput) (*struct{}, error) {
	return func(ctx context.Context, in *idInput) (*struct{}, error) {
		if err := apps.DeleteApp(ctx, in.ID); err != nil {
			return nil, problem(ctx, log, err)
		}
		return nil, nil
	}
}
