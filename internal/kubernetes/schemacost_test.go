package kubernetes

import (
	"fmt"
	"strings"
	"testing"

	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// doubling is a values schema whose every level applies the next one twice to the same value (through
// allOf, or properties of "x"), so that Helm's check of any value (of values nested in "x" as deep as
// the levels, for properties) takes 2^levels evaluations: at 60 levels, for ever. The shape of
// internal/valuesschema's cost test.
func doubling(levels int, keyword string) string {
	var defs []string
	for i := range levels {
		next := fmt.Sprintf(`{"$ref":"#/definitions/d%d"}`, i+1)
		switch keyword {
		case "properties":
			next = fmt.Sprintf(`{"properties":{"x":{"$ref":"#/definitions/d%d"}}}`, i+1)
			defs = append(defs, fmt.Sprintf(`"d%d":{"allOf":[%s,%s]}`, i, next, next))
		default:
			defs = append(defs, fmt.Sprintf(`"d%d":{%q:[%s,%s]}`, i, keyword, next, next))
		}
	}
	defs = append(defs, fmt.Sprintf(`"d%d":{"type":"string"}`, levels))
	return `{"definitions":{` + strings.Join(defs, ",") + `},"$ref":"#/definitions/d0"}`
}

// deepX is {"x": {"x": … }} levels deep.
func deepX(levels int) map[string]any {
	v := map[string]any{}
	for range levels {
		v = map[string]any{"x": v}
	}
	return v
}

// TestCheckSchemaCost checks that a chart is refused before Helm validates its values when the schema
// of the chart or of a subchart Helm will check would take too much work with the values that chart
// gets (the consumer's, the subchart's defaults, imported values, subcharts under an alias or enabled
// by a condition), and that ordinary charts with subchart schemas, and expensive schemas Helm does not
// check, pass. A check that ran the schemas would not return.
func TestCheckSchemaCost(t *testing.T) {
	const ordinary = `{"type":"object","properties":{"port":{"type":"integer"},"name":{"type":"string"}}}`
	for _, tc := range []struct {
		name       string
		top        *chart.Chart
		values     map[string]any
		refusedFor string // the chart the error names; "" when the chart passes
	}{
		{
			name:       "subchart schema, any values",
			top:        schemaChart(ordinary, nil, schemaSubchart(doubling(60, "allOf"), map[string]any{"port": 80})),
			values:     map[string]any{"port": 8080},
			refusedFor: "chart app 0.1.0, its subchart sub 1.0.0:",
		},
		{
			name:       "subchart schema, deep consumer values under its name",
			top:        schemaChart(ordinary, nil, schemaSubchart(doubling(60, "properties"), nil)),
			values:     map[string]any{"sub": deepX(70)},
			refusedFor: "chart app 0.1.0, its subchart sub 1.0.0:",
		},
		{
			name:       "subchart schema, deep subchart defaults",
			top:        schemaChart(ordinary, nil, schemaSubchart(doubling(60, "properties"), deepX(70))),
			refusedFor: "chart app 0.1.0, its subchart sub 1.0.0:",
		},
		{
			name: "subchart under an alias, enabled by a condition",
			top: schemaChart(ordinary, []*chart.Dependency{{Name: "sub", Version: "1.0.0", Alias: "db", Condition: "db.enabled"}},
				schemaSubchart(doubling(60, "properties"), nil)),
			values:     map[string]any{"db": map[string]any{"enabled": true, "x": deepX(70)}},
			refusedFor: "chart app 0.1.0, its subchart db 1.0.0:",
		},
		{
			name: "top schema, values imported from a subchart",
			top: schemaChart(doubling(60, "properties"), []*chart.Dependency{{Name: "sub", Version: "1.0.0",
				ImportValues: []any{map[string]any{"child": "deep", "parent": "x"}}}},
				schemaSubchart("", map[string]any{"deep": deepX(70)})),
			refusedFor: "chart app 0.1.0:",
		},
		{
			name:       "top schema, changed since the API checked it",
			top:        schemaChart(doubling(60, "anyOf"), nil),
			refusedFor: "chart app 0.1.0:",
		},
		{
			name:   "ordinary schemas in the chart and its subchart",
			top:    schemaChart(ordinary, nil, schemaSubchart(ordinary, map[string]any{"port": 80, "name": "db"})),
			values: map[string]any{"port": 8080, "sub": map[string]any{"port": 5432}},
		},
		{
			name: "expensive subchart disabled by its condition",
			top: schemaChart(ordinary, []*chart.Dependency{{Name: "sub", Version: "1.0.0", Condition: "sub.enabled"}},
				schemaSubchart(doubling(60, "allOf"), map[string]any{"enabled": true})),
			values: map[string]any{"sub": map[string]any{"enabled": false}},
		},
		{
			name:   "deep values the schema does not look into",
			top:    schemaChart(ordinary, nil, schemaSubchart(doubling(60, "properties"), nil)),
			values: map[string]any{"other": deepX(70), "sub": map[string]any{"y": deepX(70)}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tc.top.Dependencies())
			err := checkSchemaCost(tc.top, tc.values)
			if len(tc.top.Dependencies()) != before {
				t.Errorf("the check changed the chart: %d subcharts, had %d", len(tc.top.Dependencies()), before)
			}
			if tc.refusedFor == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			msg := marketplace.ErrorMessage(err)
			if marketplace.ErrorCode(err) != marketplace.EINVALID || !strings.HasPrefix(msg, tc.refusedFor) ||
				!strings.Contains(msg, "too much work") || !strings.Contains(msg, "its publisher must simplify it") {
				t.Fatalf("error %v (%s), want EINVALID starting %q, saying the schema is too much work", err, marketplace.ErrorCode(err), tc.refusedFor)
			}
		})
	}
}

func schemaChart(schema string, deps []*chart.Dependency, subcharts ...*chart.Chart) *chart.Chart {
	ch := &chart.Chart{Metadata: &chart.Metadata{Name: "app", Version: "0.1.0", APIVersion: chart.APIVersionV2, Dependencies: deps},
		Values: map[string]any{"port": 80}}
	if schema != "" {
		ch.Schema = []byte(schema)
	}
	for _, s := range subcharts {
		ch.AddDependency(s)
	}
	return ch
}

func schemaSubchart(schema string, values map[string]any) *chart.Chart {
	ch := &chart.Chart{Metadata: &chart.Metadata{Name: "sub", Version: "1.0.0", APIVersion: chart.APIVersionV2}, Values: values}
	if schema != "" {
		ch.Schema = []byte(schema)
	}
	return ch
}
