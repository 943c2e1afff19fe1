package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
)

type installInput struct {
	DryRun bool `query:"dry_run" doc:"validate and preview the install (resources, cost) without creating anything; answers 200"`
	Body   struct {
		ConsumerID    int64              `json:"consumer_id" required:"false" minimum:"1" doc:"defaults to the caller; must be the caller unless the operator acts"`
		ApplicationID int64              `json:"application_id" minimum:"1"`
		ProjectID     int64              `json:"project_id" minimum:"1"`
		Version       int                `json:"version" required:"false" minimum:"1" doc:"the application version to install; defaults to its latest one not deprecated"`
		UpgradePolicy string             `json:"upgrade_policy" required:"false" enum:"manual,auto" doc:"auto: upgraded to every new version by itself; default manual"`
		MaxHourlyRate *marketplace.Money `json:"max_hourly_rate,omitempty" required:"false" doc:"the highest hourly rate an automatic upgrade may move to; a dearer version waits for a manual upgrade. Default: the rate installed"`
		Inputs        map[string]any     `json:"inputs" required:"false" doc:"values for the application's inputs, by name"`
	}
}

type queued struct {
	Message      string             `json:"message"`
	DeploymentID int64              `json:"deploymentID,omitempty" doc:"absent on a dry run"`
	Status       marketplace.Status `json:"status,omitempty" doc:"absent on a dry run"`
	// Preview is what a dry run would do.
	Preview *marketplace.Preview `json:"preview,omitempty"`
}

type installOutput struct {
	Status int
	Body   queued
}

func install(deployer Deployer, log *slog.Logger) func(context.Context, *installInput) (*installOutput, error) {
	return func(ctx context.Context, in *installInput) (*installOutput, error) {
		consumer, err := marketplace.CallerFrom(ctx).ResolveOwner("consumer_id", in.Body.ConsumerID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		r := deploy.InstallRequest{ConsumerID: consumer, ApplicationID: in.Body.ApplicationID, ProjectID: in.Body.ProjectID,
			Version: in.Body.Version, UpgradePolicy: in.Body.UpgradePolicy, MaxHourlyRate: in.Body.MaxHourlyRate, Inputs: in.Body.Inputs}
		if in.DryRun {
			p, err := deployer.PreviewInstall(ctx, r)
			if err != nil {
				return nil, problem(ctx, log, err)
			}
			return &installOutput{Status: http.StatusOK, Body: queued{Message: "Dry run: nothing was created", Preview: p}}, nil
		}
		d, err := deployer.RequestInstall(ctx, r)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &installOutput{Status: http.StatusAccepted,
			Body: queued{Message: "Deployment request queued", DeploymentID: d.ID, Status: d.Status}}, nil
	}
}

func uninstall(deployer Deployer, log *slog.Logger) func(context.Context, *idInput) (*body[queued], error) {
	return func(ctx context.Context, in *idInput) (*body[queued], error) {
		d, err := deployer.RequestUninstall(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		msg := "Deployment uninstall queued"
		if d.Status == marketplace.StatusUninstalled {
			msg = "Deployment already uninstalled"
		}
		return &body[queued]{queued{Message: msg, DeploymentID: d.ID, Status: d.Status}}, nil
	}
}

// recentItems is how many of a deployment's revisions and usage records its own answer carries.
const recentItems = 10

func getDeployment(s Store, deployer Deployer, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Deployment], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Deployment], error) {
		d, err := s.FindDeploymentByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		if err := withChangelogs(ctx, s, d); err != nil {
			return nil, problem(ctx, log, err)
		}
		if err := withRecent(ctx, s, d); err != nil {
			return nil, problem(ctx, log, err)
		}
		d.Health = deployer.Health(ctx, d)
		return &body[*marketplace.Deployment]{redactDeployment(d)}, nil
	}
}

// withRecent adds the latest of a deployment's revisions and usage records, with their totals and the
// page of each list that follows them: a bounded read however long its history is.
func withRecent(ctx context.Context, s Store, d *marketplace.Deployment) error {
	latest := marketplace.Page{Number: 1, Limit: recentItems}
	revs, total, err := s.FindRevisions(ctx, marketplace.RevisionFilter{DeploymentID: d.ID, NewestFirst: true, Page: latest})
	if err != nil {
		return err
	}
	d.Revisions = &marketplace.RecentRevisions{Total: total, Latest: revs}
	if total > recentItems {
		d.Revisions.Next = fmt.Sprintf("/api/deployments/%d/revisions?order=newest&page=2&limit=%d", d.ID, recentItems)
	}
	records, t, err := s.FindUsageRecords(ctx, marketplace.UsageFilter{UserID: d.ConsumerID, DeploymentID: d.ID, NewestFirst: true, Page: latest})
	if err != nil {
		return err
	}
	d.Usage = &marketplace.RecentUsage{UsageTotals: t, Latest: records}
	if t.Records > recentItems {
		d.Usage.Next = fmt.Sprintf("/api/billing/user/%d/deployment/%d?order=newest&page=2&limit=%d", d.ConsumerID, d.ID, recentItems)
	}
	return nil
}

type listDeploymentsInput struct {
	Status          string `query:"status" enum:"pending,installing,installed,failed,uninstalling,uninstalled,upgrading"`
	UpdateAvailable bool   `query:"update_available" doc:"only deployments with a newer version of their application out"`
	OrganizationID  int64  `query:"organization_id" minimum:"0" doc:"only the deployments of this organization's projects"`
	PageQuery
}

func listDeployments(deployments marketplace.DeploymentService, log *slog.Logger) func(context.Context, *listDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
	return func(ctx context.Context, in *listDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
		ds, total, err := deployments.FindDeployments(ctx, marketplace.DeploymentFilter{Status: marketplace.Status(in.Status),
			UpdateAvailable: in.UpdateAvailable, OrganizationID: in.OrganizationID, Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, redactDeployments(ds)), nil
	}
}
