package workerrpc

import (
	"context"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Inspector is the marketplace.Inspector of one deployment type in a process that holds no provider of
// its own (an API replica): every method is a call answered by a worker's Inspector of that type. It
// forwards whatever it is asked: its callers consult marketplace.Offers before asking, as they do of a
// worker's own Inspector (which answers a method its type does not offer with an error).
type Inspector struct {
	c   *Client
	typ string
}

var _ marketplace.Inspector = Inspector{}

// Inspector returns the forwarding Inspector of deployment type typ.
func (c *Client) Inspector(typ string) Inspector { return Inspector{c: c, typ: typ} }

// Preview is the worker's Preview.
func (r Inspector) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r, "preview", previewTarget(d, app))
}

// PreviewUpgrade is the worker's PreviewUpgrade.
func (r Inspector) PreviewUpgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r, "preview-upgrade", previewTarget(d, app))
}

// previewTarget names a preview of d (recorded or not) with its inputs, as app's version.
func previewTarget(d *marketplace.Deployment, app *marketplace.Application) target {
	return target{DeploymentID: d.ID, ApplicationID: app.ID, Version: app.Version, ProjectID: d.ProjectID, Inputs: d.Inputs}
}

// Health is the worker's Health.
func (r Inspector) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	return callFor[marketplace.Health](ctx, r, "health", target{DeploymentID: d.ID})
}

// ValuesSchema is the worker's ValuesSchema.
func (r Inspector) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	return callFor[marketplace.ValuesSchema](ctx, r, "values-schema", target{ApplicationID: app.ID, Version: app.Version})
}

// PackageInfo is the worker's PackageInfo.
func (r Inspector) PackageInfo(ctx context.Context, app *marketplace.Application) (*marketplace.PackageInfo, error) {
	return callFor[marketplace.PackageInfo](ctx, r, "package-info", target{ApplicationID: app.ID, Version: app.Version})
}

// VerifyChart is the worker's VerifyChart. The version need not be stored yet (a publish checks it
// first): the call carries its spec and the keys.
func (r Inspector) VerifyChart(ctx context.Context, app *marketplace.Application, keys []string) (*marketplace.ChartSignature, error) {
	spec := app.Deployment
	return callFor[marketplace.ChartSignature](ctx, r, "verify-chart", target{ApplicationID: app.ID, Version: app.Version, Spec: &spec, Keys: keys})
}

// Console is the worker's Console.
func (r Inspector) Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error) {
	s, err := callFor[string](ctx, r, "console", target{DeploymentID: d.ID, MaxBytes: maxBytes})
	if err != nil {
		return "", err
	}
	return *s, nil
}

// State is the worker's State.
func (r Inspector) State(ctx context.Context, d *marketplace.Deployment) (string, error) {
	s, err := callFor[string](ctx, r, "state", target{DeploymentID: d.ID})
	if err != nil {
		return "", err
	}
	return *s, nil
}

// Store is where a worker reads what a call names, as the call's caller.
type Store interface {
	FindDeploymentByID(ctx context.Context, id int64) (*marketplace.Deployment, error)
	FindAppVersion(ctx context.Context, appID int64, version int) (*marketplace.Application, error)
}

// handler returns the answer to a call of method (nil for an unknown one): it reads what the call names
// and calls the Inspector's method. One more Inspector method is one case here and one method above.
func handler(method string) func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
	switch method {
	case "preview":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			d, app, err := loadPreview(ctx, store, t)
			if err != nil {
				return nil, err
			}
			return p.Preview(ctx, d, app)
		}
	case "preview-upgrade":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			d, app, err := loadPreview(ctx, store, t)
			if err != nil {
				return nil, err
			}
			return p.PreviewUpgrade(ctx, d, app)
		}
	case "health":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.Health(ctx, d)
		}
	case "values-schema":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			app, err := store.FindAppVersion(ctx, t.ApplicationID, t.Version)
			if err != nil {
				return nil, err
			}
			return p.ValuesSchema(ctx, app)
		}
	case "package-info":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			app, err := store.FindAppVersion(ctx, t.ApplicationID, t.Version)
			if err != nil {
				return nil, err
			}
			return p.PackageInfo(ctx, app)
		}
	case "verify-chart":
		return func(ctx context.Context, p marketplace.Inspector, _ Store, t target) (any, error) {
			if t.Spec == nil {
				return nil, marketplace.Errorf(marketplace.EINVALID, "a chart verification without a chart")
			}
			return p.VerifyChart(ctx, &marketplace.Application{ID: t.ApplicationID, Version: t.Version, Deployment: *t.Spec}, t.Keys)
		}
	case "console":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.Console(ctx, d, t.MaxBytes)
		}
	case "state":
		return func(ctx context.Context, p marketplace.Inspector, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.State(ctx, d)
		}
	}
	return nil
}

// loadPreview reads the application version a preview is of and its deployment: the recorded one (an
// upgrade's, which must be of that application) or, for an install, one not recorded yet. Either way
// with the call's inputs.
func loadPreview(ctx context.Context, store Store, t target) (*marketplace.Deployment, *marketplace.Application, error) {
	app, err := store.FindAppVersion(ctx, t.ApplicationID, t.Version)
	if err != nil {
		return nil, nil, err
	}
	d := &marketplace.Deployment{ApplicationID: app.ID, ProjectID: t.ProjectID, Version: app.Version}
	if t.DeploymentID != 0 {
		if d, err = store.FindDeploymentByID(ctx, t.DeploymentID); err != nil {
			return nil, nil, err
		} else if d.ApplicationID != app.ID {
			return nil, nil, marketplace.Errorf(marketplace.EINVALID, "deployment %d is not of application %d", d.ID, app.ID)
		}
	}
	d.Inputs = t.Inputs
	return d, app, nil
}

// describe names what a method gives, for the person whose request no worker took.
func describe(method string) string {
	switch method {
	case "preview", "preview-upgrade":
		return "a dry run"
	case "health":
		return "a deployment's health"
	case "values-schema":
		return "the chart's values schema"
	case "package-info":
		return "what the chart says about itself"
	case "console", "state":
		return "a VM's console"
	case "verify-chart":
		return "the chart's signature check"
	}
	return method
}

// callFor makes a call whose answer is a T.
func callFor[T any](ctx context.Context, p Inspector, method string, t target) (*T, error) {
	var result T
	if err := p.c.call(ctx, p.typ, method, t, &result); err != nil {
		return nil, err
	}
	return &result, nil
}
