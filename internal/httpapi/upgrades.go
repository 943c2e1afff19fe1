package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/marketplace/marketplace/internal/marketplace"
)

type upgradeInput struct {
	ID     int64 `path:"id" minimum:"1"`
	DryRun bool  `query:"dry_run" doc:"validate and preview the upgrade (what changes against what runs now, the cost) without changing anything; answers 200"`
	Body   struct {
		Version int            `json:"version" required:"false" minimum:"1" doc:"the application version to move to; defaults to its latest one not deprecated"`
		Inputs  map[string]any `json:"inputs" required:"false" doc:"the inputs of the new revision; default the ones the deployment runs with"`
	}
}

// upgrade queues an upgrade of an installed deployment: its current revision keeps running, and billing
// at its rate, until the new one is ready.
func upgrade(deployer Deployer, log *slog.Logger) func(context.Context, *upgradeInput) (*installOutput, error) {
	return func(ctx context.Context, in *upgradeInput) (*installOutput, error) {
		if in.DryRun {
			p, err := deployer.PreviewUpgrade(ctx, in.ID, in.Body.Version, in.Body.Inputs)
			if err != nil {
				return nil, problem(ctx, log, err)
			}
			return &installOutput{Status: http.StatusOK, Body: queued{Message: "Dry run: nothing was changed", Preview: p}}, nil
		}
		d, err := deployer.RequestUpgrade(ctx, in.ID, in.Body.Version, in.Body.Inputs)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &installOutput{Status: http.StatusAccepted,
			Body: queued{Message: "Deployment upgrade queued", DeploymentID: d.ID, Status: d.Status}}, nil
	}
}

type rollbackInput struct {
	ID   int64 `path:"id" minimum:"1"`
	Body struct {
		Revision int `json:"revision" required:"false" minimum:"1" doc:"the revision to return to; defaults to the one before the current"`
	}
}

// rollback queues a return to an earlier revision's version and inputs.
func rollback(deployer Deployer, log *slog.Logger) func(context.Context, *rollbackInput) (*body[queued], error) {
	return func(ctx context.Context, in *rollbackInput) (*body[queued], error) {
		d, err := deployer.RequestRollback(ctx, in.ID, in.Body.Revision)
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return &body[queued]{queued{Message: "Deployment rollback queued", DeploymentID: d.ID, Status: d.Status}}, nil
	}
}

type listRevisionsInput struct {
	ID int64 `path:"id" minimum:"1"`
	OrderQuery
	PageQuery
}

// listRevisions answers a page of a deployment's revisions, oldest first unless asked otherwise.
func listRevisions(deployments marketplace.DeploymentService, log *slog.Logger) func(context.Context, *listRevisionsInput) (*paged[[]*marketplace.Revision], error) {
	return func(ctx context.Context, in *listRevisionsInput) (*paged[[]*marketplace.Revision], error) {
		revs, total, err := deployments.FindRevisions(ctx, marketplace.RevisionFilter{DeploymentID: in.ID, NewestFirst: in.newestFirst(), Page: in.page()})
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		return newPaged(&in.PageQuery, total, revs), nil
	}
}
