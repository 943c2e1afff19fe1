package kubernetes

import (
	"fmt"

	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	dependencies "helm.sh/helm/v4/pkg/chart/v2/util"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

// checkSchemaCost refuses (EINVALID) to let Helm check values against ch's values schemas when one of
// them would take too much work (see valuesschema.CheckCost). Helm checks the chart's schema and every
// enabled subchart's, each against the values that chart gets, with a validator that nothing can stop:
// a subchart's schema whose levels each apply the next one twice would spin a worker's CPU for ever,
// and the API checks only the top chart's schema, once, when it can read it. So this runs before every
// Helm install, upgrade and preview, on the values Helm will check: a copy of ch goes through what Helm
// does first (subcharts enabled by conditions and tags, under their aliases, with their imported
// values), the values are coalesced the way Helm coalesces them, and each schema is counted against
// the values Helm hands it. ch itself is left as it is: Helm processes it again.
func checkSchemaCost(ch *chart.Chart, values map[string]any) error {
	shape := schemaShape(ch)
	vals := copyValues(values).(map[string]any)
	if err := dependencies.ProcessDependencies(shape, vals); err != nil {
		return fmt.Errorf("chart %s %s: process its dependencies: %w", ch.Name(), ch.Metadata.Version, err)
	}
	coalesced, err := chartutil.CoalesceValues(shape, vals)
	if err != nil {
		return fmt.Errorf("chart %s %s: coalesce its values: %w", ch.Name(), ch.Metadata.Version, err)
	}
	return checkTreeSchemaCost(shape, coalesced, fmt.Sprintf("chart %s %s", ch.Name(), ch.Metadata.Version))
}

// checkTreeSchemaCost counts the check of ch's schema against values, then its subcharts', as Helm's
// chartutil.ValidateAgainstSchema walks them: a subchart gets the values under its name, and Helm
// checks nothing below a subchart whose values are missing or not an object.
func checkTreeSchemaCost(ch *chart.Chart, values map[string]any, where string) error {
	if ch.Schema != nil {
		if err := valuesschema.CheckCost(ch.Schema, values); err != nil {
			if marketplace.ErrorCode(err) == marketplace.EINVALID {
				return marketplace.Errorf(marketplace.EINVALID, "%s: %s", where, marketplace.ErrorMessage(err))
			}
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	for _, sub := range ch.Dependencies() {
		subValues, ok := values[sub.Name()].(map[string]any)
		if !ok {
			continue
		}
		if err := checkTreeSchemaCost(sub, subValues, fmt.Sprintf("%s, its subchart %s %s", where, sub.Name(), sub.Metadata.Version)); err != nil {
			return err
		}
	}
	return nil
}

// schemaShape copies of ch (and its subcharts) what decides the values Helm checks and the schemas it
// checks them against: metadata with its dependency list, lock, values and schema. Helm's dependency
// processing changes all of these but the schema in place.
func schemaShape(ch *chart.Chart) *chart.Chart {
	md := *ch.Metadata
	md.Dependencies = make([]*chart.Dependency, len(ch.Metadata.Dependencies))
	for i, d := range ch.Metadata.Dependencies {
		dep := *d
		md.Dependencies[i] = &dep
	}
	out := &chart.Chart{Metadata: &md, Lock: ch.Lock, Schema: ch.Schema}
	if ch.Values != nil {
		out.Values = copyValues(ch.Values).(map[string]any)
	}
	for _, sub := range ch.Dependencies() {
		out.AddDependency(schemaShape(sub))
	}
	return out
}

// copyValues copies the maps and lists of v (values as parsed from YAML or JSON) so that changes to the
// copy leave v as it was.
func copyValues(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = copyValues(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = copyValues(e)
		}
		return out
	}
	return v
}
