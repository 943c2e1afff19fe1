package httpapi

import (
	"context"
	"log/slog"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// ConsoleReader reads what a vm deployment's guest wrote on its serial console, and its live state.
type ConsoleReader interface {
	Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error)
	State(ctx context.Context, d *marketplace.Deployment) (string, error)
}

type consoleInput struct {
	ID    int64 `path:"id" minimum:"1"`
	Bytes int64 `query:"bytes" minimum:"1" maximum:"1048576" default:"16384" doc:"how much of the end of the console"`
}

type consoleOutput struct {
	DeploymentID int64              `json:"deployment_id"`
	Status       marketplace.Status `json:"status" doc:"the recorded status"`
	LiveState    string             `json:"live_state" doc:"libvirt's state of the VM now: running, shut off, crashed, absent..."`
	Console      string             `json:"console" doc:"the end of the serial console"`
}

// deploymentConsole shows the tail of a vm deployment's console. The deployment is looked up in the
// caller's scope first, so another tenant's deployment is a 404 like a missing one.
func deploymentConsole(deployments marketplace.DeploymentService, consoles ConsoleReader, log *slog.Logger) func(context.Context, *consoleInput) (*body[consoleOutput], error) {
	return func(ctx context.Context, in *consoleInput) (*body[consoleOutput], error) {
		d, err := deployments.FindDeploymentByID(ctx, in.ID)
		if err == nil && !marketplace.Offers(d.Type).Console {
			err = marketplace.Errorf(marketplace.ENOTFOUND, "deployment %d is a %s deployment: only vm deployments have a console", d.ID, d.Type)
		} else if err == nil && consoles == nil {
			err = marketplace.Errorf(marketplace.ENOTFOUND, "deployment %d has no console: this marketplace has no VM host (LIBVIRT_URI)", d.ID)
		}
		if err != nil {
			return nil, problem(ctx, log, err)
		}
		out := consoleOutput{DeploymentID: d.ID, Status: d.Status}
		if out.Console, err = consoles.Console(ctx, d, in.Bytes); err != nil {
			return nil, problem(ctx, log, err)
		}
		if out.LiveState, err = consoles.State(ctx, d); err != nil {
			log.Warn("live state of a vm", "deployment", d.ID, "err", err)
			out.LiveState = "unknown"
		}
		return &body[consoleOutput]{out}, nil
	}
}
