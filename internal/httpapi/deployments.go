package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/deploy"
	"github.com/marketplace/marketplace/internal/marketplace"
)

type installInput struct {
	Body struct {
		ConsumerID    int64          `json:"consumer_id" required:"false" minimum:"1" doc:"defaults to the caller; must be the caller unless the operator acts"`
		ApplicationID int64          `json:"application_id" minimum:"1"`
		ProjectID     int64          `json:"project_id" minimum:"1"`
		Version       int            `json:"version" required:"false" minimum:"1" doc:"the application version to install; defaults to its latest one not deprecated"`
		Inputs        map[string]any `json:"inputs" required:"false" doc:"values for the application's inputs, by name"`
	}
}

type queued struct {
	Message      string             `json:"message"`
	DeploymentID int64              `json:"deploymentID"`
	Status       marketplace.Status `json:"status"`
}

func install(deployer Deployer, log *slog.Logger) func(context.Context, *installInput) (*body[queued], error) {
	return func(ctx context.Context, in *installInput) (*body[queued], error) {
		consumer, err := marketplace.CallerFrom(ctx).ResolveOwner("consumer_id", in.Body.ConsumerID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		d, err := deployer.RequestInstall(ctx, deploy.InstallRequest{ConsumerID: consumer,
			ApplicationID: in.Body.ApplicationID, ProjectID: in.Body.ProjectID, Version: in.Body.Version, Inputs: in.Body.Inputs})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[queued]{queued{Message: "Deployment request queued", DeploymentID: d.ID, Status: d.Status}}, nil
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

func getDeployment(s Store, deployer Deployer, log *slog.Logger) func(context.Context, *idInput) (*body[*marketplace.Deployment], error) {
	return func(ctx context.Context, in *idInput) (*body[*marketplace.Deployment], error) {
		d, err := s.FindDeploymentByID(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		if err := withChangelogs(ctx, s, d); err != nil {
			return nil, problem(ctx, log, err)
		}
		d.Health = deployer.Health(ctx, d)
		return &body[*marketplace.Deployment]{redactDeployment(d)}, nil
	}
}

type listDeploymentsInput struct {
	Status          string `query:"status" enum:"pending,installing,installed,failed,uninstalling,uninstalled"`
	UpdateAvailable bool   `query:"update_available" doc:"only deployments with a newer version of their application out"`
	PageQuery
}

func listDeployments(deployments marketplace.DeploymentService, log *slog.Logger) func(context.Context, *listDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
	return func(ctx context.Context, in *listDeploymentsInput) (*paged[[]*marketplace.Deployment], error) {
		ds, total, err := deployments.FindDeployments(ctx, marketplace.DeploymentFilter{Status: marketplace.Status(in.Status),
			UpdateAvailable: in.UpdateAvailable, Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, redactDeployments(ds)), nil
	}
}
