package deploy

import (
	"context"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

// Reading a values schema at request time is bounded, and a schema read is remembered briefly: the
// chart is a publisher's, fetched from its repository, and an install form, its preview and its
// confirmation each need the schema within a minute. A chart version range that moves meanwhile is
// checked against the newer chart by the worker's install anyway.
const (
	schemaDeadline  = 10 * time.Second
	schemaFreshness = time.Minute
	schemaCacheSize = 256
)

type cachedSchema struct {
	vs   *marketplace.ValuesSchema
	read time.Time
}

// ValuesSchema reads the values schema of app's package through its provider; nil when the provider
// reads none (a vm application).
func (s *Requests) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	r := s.inspectors[app.Deployment.Type]
	if r == nil || !marketplace.Offers(app.Deployment.Type).ValuesSchema {
		return nil, nil
	}
	// The schema depends on the package alone, which the deployment spec names.
	if v, ok := s.schemas.get(app.Deployment); ok && time.Since(v.read) < schemaFreshness {
		return v.vs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, schemaDeadline)
	defer cancel()
	vs, err := r.ValuesSchema(ctx, app)
	if err != nil {
		return nil, err
	}
	s.schemas.add(app.Deployment, cachedSchema{vs: vs, read: time.Now()})
	return vs, nil
}

// checkValues checks the values of an install or upgrade of app against its package's values schema, so
// a value the chart refuses is refused now (EINVALID, naming the input) rather than by a worker's
// attempt later. A schema that cannot be read now (its repository is down) refuses nothing: the worker
// reads it again and fails the attempt with the reason if it still cannot.
func (s *Requests) checkValues(ctx context.Context, app *marketplace.Application, values map[string]any) error {
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
