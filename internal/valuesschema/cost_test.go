package valuesschema

import (
	"fmt"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// doubling is a schema of a few kilobytes whose every level applies the next one twice to the same
// value (through allOf, anyOf, or properties), so that checking any value takes 2^levels evaluations:
// at 60 levels, longer than the universe has existed. The check must refuse it, not run it.
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

func TestValidateRefusesExponentialSchemas(t *testing.T) {
	deep := map[string]any{}
	for range 70 {
		deep = map[string]any{"x": deep}
	}
	for _, c := range []struct {
		keyword string
		values  map[string]any
	}{
		{"allOf", map[string]any{"a": 1}},
		{"anyOf", map[string]any{"a": 1}}, // every branch fails, so every branch is tried
		{"oneOf", map[string]any{"a": 1}},
		{"properties", deep},
	} {
		s, err := New(&marketplace.ValuesSchema{Schema: []byte(doubling(60, c.keyword))})
		if err != nil {
			t.Fatalf("%s: %v", c.keyword, err)
		}
		err = s.Validate(testApp(), c.values)
		if marketplace.ErrorCode(err) != marketplace.EINVALID || !strings.Contains(marketplace.ErrorMessage(err), "too much work") {
			t.Errorf("%s: %v (%s), want EINVALID saying the schema is too much work", c.keyword, err, marketplace.ErrorCode(err))
		}
	}
}

// A schema that refers to itself recursively, one subschema per level of the values, is ordinary
// (a tree of nodes): it costs as much as the values are big, and is checked.
func TestValidateChecksRecursiveSchemas(t *testing.T) {
	const tree = `{"definitions":{"node":{"type":"object","properties":{"name":{"type":"string"},
"children":{"type":"array","items":{"$ref":"#/definitions/node"}}}}},"properties":{"root":{"$ref":"#/definitions/node"}}}`
	s, err := New(&marketplace.ValuesSchema{Schema: []byte(tree)})
	if err != nil {
		t.Fatal(err)
	}
	node := map[string]any{"name": "leaf"}
	for range 50 {
		node = map[string]any{"name": "n", "children": []any{node, map[string]any{"name": "other"}}}
	}
	if err := s.Validate(testApp(), map[string]any{"root": node}); err != nil {
		t.Errorf("a tree 50 deep refused: %v", err)
	}
	bad := map[string]any{"name": "n", "children": []any{map[string]any{"name": 3}}}
	if err := s.Validate(testApp(), map[string]any{"root": bad}); marketplace.ErrorCode(err) != marketplace.EINVALID ||
		!strings.Contains(err.Error(), "values.root.children.0.name") {
		t.Errorf("a wrong name deep in the tree: %v, want EINVALID naming values.root.children.0.name", err)
	}
}

// CheckCost counts a schema Helm checks on its own (a subchart's) as Validate counts the chart's, and
// says what is wrong with a schema that cannot be counted.
func TestCheckCost(t *testing.T) {
	if err := CheckCost([]byte(doubling(60, "allOf")), map[string]any{"a": 1}); marketplace.ErrorCode(err) != marketplace.EINVALID ||
		!strings.Contains(marketplace.ErrorMessage(err), "too much work") {
		t.Errorf("exponential schema: %v, want EINVALID saying it is too much work", err)
	}
	if err := CheckCost([]byte(`{"properties":{"port":{"type":"integer"}}}`), map[string]any{"port": 80}); err != nil {
		t.Errorf("ordinary schema: %v", err)
	}
	if err := CheckCost([]byte(`{not json`), map[string]any{}); marketplace.ErrorCode(err) != marketplace.EINVALID {
		t.Errorf("schema that is not JSON: %v, want EINVALID", err)
	}
}
