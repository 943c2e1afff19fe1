package kubernetes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// checkSchemaRefs refuses a chart whose values.schema.json, or a subchart's, refers to a schema outside
// itself. Helm compiles a chart's schema with loaders for http, https and file URLs, so a "$ref" (or a
// "$schema" that is not a standard draft) would make a worker fetch from inside the operator's network,
// unchecked, or read its files. The schema is compiled here the way Helm compiles it, with a loader that
// refuses everything: the compiler asks a loader for exactly the documents it cannot find in the schema
// itself or among the drafts it carries, so a schema that compiles here makes Helm load nothing either.
func checkSchemaRefs(ch *chart.Chart) error {
	if len(ch.Schema) > 0 {
		if ref := externalSchemaRef(ch.Schema); ref != "" {
			return fmt.Errorf("chart %s %s: its values.schema.json refers to %s, outside the schema; the marketplace fetches no schema references: keep every $ref inside the schema (\"#/...\")",
				ch.Name(), ch.Metadata.Version, ref)
		}
	}
	for _, dep := range ch.Dependencies() {
		if err := checkSchemaRefs(dep); err != nil {
			return err
		}
	}
	return nil
}

// externalSchemaRef returns the first URL the compilation of schema asks to load, or "".
func externalSchemaRef(schema []byte) (ref string) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return "" // Helm says what is wrong with a schema that is not JSON
	}
	refuse := &refusingLoader{}
	defer func() {
		recover() // Helm recovers from the compiler's panics too, and reports them
		ref = refuse.first
	}()
	c := jsonschema.NewCompiler()
	c.UseLoader(refuse)
	if err := c.AddResource("file:///values.schema.json", doc); err != nil { // Helm's name for it
		return ""
	}
	c.Compile("file:///values.schema.json")
	return refuse.first
}

// refusingLoader is a schema loader that loads nothing and remembers what it was asked for.
type refusingLoader struct{ first string }

func (l *refusingLoader) Load(url string) (any, error) {
	if strings.HasPrefix(url, "urn:") {
		return true, nil // Helm answers an unresolved URN with a schema that allows everything, fetching nothing
	}
	if l.first == "" {
		l.first = url
	}
	return nil, errors.New("schema references outside the schema are not loaded")
}

// ValuesSchema reads the values.schema.json and values.yaml of app's chart (the chart itself, not its
// subcharts), fetched and checked as an install fetches it: through the fetch guard, refused when its
// schema refers outside itself.
func (p *Provider) ValuesSchema(ctx context.Context, app *marketplace.Application) (*marketplace.ValuesSchema, error) {
	ch, _, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return nil, err
	}
	return &marketplace.ValuesSchema{Schema: ch.Schema, Defaults: ch.Values}, nil
}
