package deploy

import (
	"context"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

// schemaDeadline bounds reading a values schema at request time: the chart is a publisher's, fetched
// from its repository, and a request must not wait on a slow one for long.
const schemaDeadline = 10 * time.Second

// ValuesSchema reads the values schema of app's package through its provider; nil when the provider
// reads none (a vm application).
func (s *Service) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	r, ok := s.providers[app.Deployment.Type].(marketplace.ValuesSchemaReader)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, schemaDeadline)
	defer cancel()
	return r.ValuesSchema(ctx, app)
}

// checkValues checks the values of an install or upgrade of app against its package's values schema, so
// a value the chart refuses is refused now (EINVALID, naming the input) rather than by a worker's
// attempt later. A schema that cannot be read now (its repository is down) refuses nothing: the worker
// reads it again and fails the attempt with the reason if it still cannot.
func (s *Service) checkValues(ctx context.Context, app *marketplace.Application, values map[string]any) error {
	vs, err := s.ValuesSchema(ctx, app)
	if err != nil {
		s.log.Warn("values schema unreadable at request time; the worker checks the values", "application", app.ID, "version", app.Version, "err", err)
		return nil
	}
	schema, err := valuesschema.New(vs)
	if err != nil {
		return marketplace.Errorf(marketplace.EINVALID, "application %d version %d cannot be installed: its chart's %v", app.ID, app.Version, err)
	}
	return schema.Validate(app, values)
}
