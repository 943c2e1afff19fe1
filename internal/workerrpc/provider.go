package workerrpc

import (
	"context"
	"fmt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Provider stands in for a worker's provider of one deployment type in a process that runs no work: it
// tells the deployer the type is offered and upgradable, and its Install, Uninstall and Upgrade refuse
// (they run on workers, through the queue). Its optional methods are the values Previewer, HealthChecker
// and ConsoleReader return; compose the ones the worker's provider of that type has, e.g.
//
//	k8s := client.Provider(marketplace.TypeK8s)
//	providers[marketplace.TypeK8s] = struct {
//		workerrpc.Provider
//		workerrpc.Previewer
//		workerrpc.HealthChecker
//	}{k8s, k8s.Previewer(), k8s.HealthChecker()}
type Provider struct {
	c   *Client
	typ string
}

// Provider returns the stand-in of the typ provider.
func (c *Client) Provider(typ string) Provider { return Provider{c: c, typ: typ} }

func (p Provider) refuse(op string) error {
	return fmt.Errorf("%s of a %s deployment runs on a worker, through the queue, not in this process", op, p.typ)
}

// Install refuses: installs run on workers.
func (p Provider) Install(context.Context, *marketplace.Deployment, *marketplace.Application) (marketplace.Placement, error) {
	return marketplace.Placement{}, p.refuse("install")
}

// Uninstall refuses: uninstalls run on workers.
func (p Provider) Uninstall(context.Context, *marketplace.Deployment) error {
	return p.refuse("uninstall")
}

// Upgrade refuses: upgrades run on workers.
func (p Provider) Upgrade(context.Context, *marketplace.Deployment, *marketplace.Application) (marketplace.Placement, int, error) {
	return marketplace.Placement{}, 0, p.refuse("upgrade")
}

// Previewer is marketplace.Previewer answered by a worker.
type Previewer struct{ p Provider }

// Previewer returns the provider's previews, answered by a worker.
func (p Provider) Previewer() Previewer { return Previewer{p} }

// Preview is the worker's provider's Preview.
func (r Previewer) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r.p, "preview", previewTarget(d, app))
}

// PreviewUpgrade is the worker's provider's PreviewUpgrade.
func (r Previewer) PreviewUpgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r.p, "preview-upgrade", previewTarget(d, app))
}

// previewTarget names a preview of d (recorded or not) with its inputs, as app's version.
func previewTarget(d *marketplace.Deployment, app *marketplace.Application) target {
	return target{DeploymentID: d.ID, ApplicationID: app.ID, Version: app.Version, ProjectID: d.ProjectID, Inputs: d.Inputs}
}

// HealthChecker is marketplace.HealthChecker answered by a worker.
type HealthChecker struct{ p Provider }

// HealthChecker returns the provider's health checks, answered by a worker.
func (p Provider) HealthChecker() HealthChecker { return HealthChecker{p} }

// Health is the worker's provider's Health.
func (r HealthChecker) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	return callFor[marketplace.Health](ctx, r.p, "health", target{DeploymentID: d.ID})
}

// ValuesSchemaReader is marketplace.ValuesSchemaReader answered by a worker.
type ValuesSchemaReader struct{ p Provider }

// ValuesSchemaReader returns the provider's values schema reads, answered by a worker.
func (p Provider) ValuesSchemaReader() ValuesSchemaReader { return ValuesSchemaReader{p} }

// ValuesSchema is the worker's provider's ValuesSchema.
func (r ValuesSchemaReader) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	return callFor[marketplace.ValuesSchema](ctx, r.p, "values-schema", target{ApplicationID: app.ID, Version: app.Version})
}

// PackageInfoReader is marketplace.PackageInfoReader answered by a worker.
type PackageInfoReader struct{ p Provider }

// PackageInfoReader returns the provider's package reads, answered by a worker.
func (p Provider) PackageInfoReader() PackageInfoReader { return PackageInfoReader{p} }

// PackageInfo is the worker's provider's PackageInfo.
func (r PackageInfoReader) PackageInfo(ctx context.Context, app *marketplace.Application) (*marketplace.PackageInfo, error) {
	return callFor[marketplace.PackageInfo](ctx, r.p, "package-info", target{ApplicationID: app.ID, Version: app.Version})
}

// ConsoleReader reads a VM's serial console and state through a worker (httpapi.ConsoleReader).
type ConsoleReader struct{ p Provider }

// ConsoleReader returns the provider's console reads, answered by a worker.
func (p Provider) ConsoleReader() ConsoleReader { return ConsoleReader{p} }

// Console is the worker's provider's Console.
func (r ConsoleReader) Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error) {
	s, err := callFor[string](ctx, r.p, "console", target{DeploymentID: d.ID, MaxBytes: maxBytes})
	if err != nil {
		return "", err
	}
	return *s, nil
}

// State is the worker's provider's State.
func (r ConsoleReader) State(ctx context.Context, d *marketplace.Deployment) (string, error) {
	s, err := callFor[string](ctx, r.p, "state", target{DeploymentID: d.ID})
	if err != nil {
		return "", err
	}
	return *s, nil
}

// consoles is what a provider with VM consoles has (httpapi.ConsoleReader, at its point of use there).
type consoles interface {
	Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error)
	State(ctx context.Context, d *marketplace.Deployment) (string, error)
}

// Store is where a worker reads what a call names, as the call's caller.
type Store interface {
	FindDeploymentByID(ctx context.Context, id int64) (*marketplace.Deployment, error)
	FindAppVersion(ctx context.Context, appID int64, version int) (*marketplace.Application, error)
}

// handler returns the answer to a call of method (nil for an unknown one): it reads what the call names
// and calls the method of the provider, which must have the interface it needs. One more optional
// provider method is one case here and one stand-in method above.
func handler(method string) func(ctx context.Context, p marketplace.Provider, store Store, t target) (any, error) {
	switch method {
	case "preview":
		return answer(func(ctx context.Context, p marketplace.Previewer, store Store, t target) (any, error) {
			d, app, err := loadPreview(ctx, store, t)
			if err != nil {
				return nil, err
			}
			return p.Preview(ctx, d, app)
		})
	case "preview-upgrade":
		return answer(func(ctx context.Context, p marketplace.Previewer, store Store, t target) (any, error) {
			d, app, err := loadPreview(ctx, store, t)
			if err != nil {
				return nil, err
			}
			return p.PreviewUpgrade(ctx, d, app)
		})
	case "health":
		return answer(func(ctx context.Context, p marketplace.HealthChecker, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.Health(ctx, d)
		})
	case "values-schema":
		return answer(func(ctx context.Context, p marketplace.ValuesSchemaReader, store Store, t target) (any, error) {
			app, err := store.FindAppVersion(ctx, t.ApplicationID, t.Version)
			if err != nil {
				return nil, err
			}
			return p.ValuesSchema(ctx, app)
		})
	case "package-info":
		return answer(func(ctx context.Context, p marketplace.PackageInfoReader, store Store, t target) (any, error) {
			app, err := store.FindAppVersion(ctx, t.ApplicationID, t.Version)
			if err != nil {
				return nil, err
			}
			return p.PackageInfo(ctx, app)
		})
	case "console":
		return answer(func(ctx context.Context, p consoles, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.Console(ctx, d, t.MaxBytes)
		})
	case "state":
		return answer(func(ctx context.Context, p consoles, store Store, t target) (any, error) {
			d, err := store.FindDeploymentByID(ctx, t.DeploymentID)
			if err != nil {
				return nil, err
			}
			return p.State(ctx, d)
		})
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
	case "console", "state":
		return "a VM's console"
	}
	return method
}

// answer adapts f to a method of the table: it asserts the provider's interface I.
func answer[I any](f func(ctx context.Context, p I, store Store, t target) (any, error)) func(context.Context, marketplace.Provider, Store, target) (any, error) {
	return func(ctx context.Context, p marketplace.Provider, store Store, t target) (any, error) {
		impl, ok := p.(I)
		if !ok {
			return nil, fmt.Errorf("this worker's provider does not implement %T", (*I)(nil))
		}
		return f(ctx, impl, store, t)
	}
}

// callFor makes a call whose answer is a T.
func callFor[T any](ctx context.Context, p Provider, method string, t target) (*T, error) {
	var result T
	if err := p.c.call(ctx, p.typ, method, t, &result); err != nil {
		return nil, err
	}
	return &result, nil
}
