package workerrpc

import (
	"context"
	"encoding/json"
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

type previewArgs struct {
	Deployment  *marketplace.Deployment  `json:"deployment"`
	Application *marketplace.Application `json:"application"`
}

// Preview is the worker's provider's Preview.
func (r Previewer) Preview(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r.p, "preview", previewArgs{d, app})
}

// PreviewUpgrade is the worker's provider's PreviewUpgrade.
func (r Previewer) PreviewUpgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (*marketplace.Preview, error) {
	return callFor[marketplace.Preview](ctx, r.p, "preview-upgrade", previewArgs{d, app})
}

// HealthChecker is marketplace.HealthChecker answered by a worker.
type HealthChecker struct{ p Provider }

// HealthChecker returns the provider's health checks, answered by a worker.
func (p Provider) HealthChecker() HealthChecker { return HealthChecker{p} }

// Health is the worker's provider's Health.
func (r HealthChecker) Health(ctx context.Context, d *marketplace.Deployment) (*marketplace.Health, error) {
	return callFor[marketplace.Health](ctx, r.p, "health", d)
}

// ValuesSchemaReader is marketplace.ValuesSchemaReader answered by a worker.
type ValuesSchemaReader struct{ p Provider }

// ValuesSchemaReader returns the provider's values schema reads, answered by a worker.
func (p Provider) ValuesSchemaReader() ValuesSchemaReader { return ValuesSchemaReader{p} }

// ValuesSchema is the worker's provider's ValuesSchema.
func (r ValuesSchemaReader) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	return callFor[marketplace.ValuesSchema](ctx, r.p, "values-schema", app)
}

// ConsoleReader reads a VM's serial console and state through a worker (httpapi.ConsoleReader).
type ConsoleReader struct{ p Provider }

// ConsoleReader returns the provider's console reads, answered by a worker.
func (p Provider) ConsoleReader() ConsoleReader { return ConsoleReader{p} }

type consoleArgs struct {
	Deployment *marketplace.Deployment `json:"deployment"`
	MaxBytes   int64                   `json:"max_bytes"`
}

// Console is the worker's provider's Console.
func (r ConsoleReader) Console(ctx context.Context, d *marketplace.Deployment, maxBytes int64) (string, error) {
	s, err := callFor[string](ctx, r.p, "console", consoleArgs{d, maxBytes})
	if err != nil {
		return "", err
	}
	return *s, nil
}

// State is the worker's provider's State.
func (r ConsoleReader) State(ctx context.Context, d *marketplace.Deployment) (string, error) {
	s, err := callFor[string](ctx, r.p, "state", d)
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

// handler returns the answer to a call of method (nil for an unknown one): it decodes the arguments and
// calls the method of the provider, which must have the interface it needs. One more optional provider
// method is one case here and one stand-in method above.
func handler(method string) func(ctx context.Context, p marketplace.Provider, args json.RawMessage) (any, error) {
	switch method {
	case "preview":
		return answer(func(ctx context.Context, p marketplace.Previewer, a previewArgs) (any, error) {
			return p.Preview(ctx, a.Deployment, a.Application)
		})
	case "preview-upgrade":
		return answer(func(ctx context.Context, p marketplace.Previewer, a previewArgs) (any, error) {
			return p.PreviewUpgrade(ctx, a.Deployment, a.Application)
		})
	case "health":
		return answer(func(ctx context.Context, p marketplace.HealthChecker, d *marketplace.Deployment) (any, error) {
			return p.Health(ctx, d)
		})
	case "values-schema":
		return answer(func(ctx context.Context, p marketplace.ValuesSchemaReader, app *marketplace.Application) (any, error) {
			return p.ValuesSchema(ctx, app)
		})
	case "console":
		return answer(func(ctx context.Context, p consoles, a consoleArgs) (any, error) {
			return p.Console(ctx, a.Deployment, a.MaxBytes)
		})
	case "state":
		return answer(func(ctx context.Context, p consoles, d *marketplace.Deployment) (any, error) {
			return p.State(ctx, d)
		})
	}
	return nil
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

// answer adapts f to a method of the table: it asserts the provider's interface I and decodes A.
func answer[I, A any](f func(ctx context.Context, p I, args A) (any, error)) func(context.Context, marketplace.Provider, json.RawMessage) (any, error) {
	return func(ctx context.Context, p marketplace.Provider, raw json.RawMessage) (any, error) {
		impl, ok := p.(I)
		if !ok {
			return nil, fmt.Errorf("this worker's provider does not implement %T", (*I)(nil))
		}
		var args A
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, fmt.Errorf("decode the arguments: %w", err)
		}
		return f(ctx, impl, args)
	}
}

// callFor makes a call whose answer is a T.
func callFor[T any](ctx context.Context, p Provider, method string, args any) (*T, error) {
	var result T
	if err := p.c.call(ctx, p.typ, method, args, &result); err != nil {
		return nil, err
	}
	return &result, nil
}
