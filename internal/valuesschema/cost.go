package valuesschema

import (
	"bytes"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The validator evaluates a subschema once for every way the schema reaches it: a schema of a few
// kilobytes whose levels each apply the next one twice (allOf, anyOf, oneOf, or properties of the same
// $ref) takes 2^levels evaluations, and the validator can be neither cancelled nor stopped. So before
// it runs, the work is counted on the compiled schema and the values, an upper bound of what the
// validator does (every branch taken, no short cut), and a schema that needs more is refused.
const (
	// maxSteps is about a fifth of a second of validation; real charts' schemas need a few thousand.
	maxSteps = 200_000
	// maxDepth bounds the nesting of one walk (values and in-place subschemas together), so that the
	// count recurses no deeper than this.
	maxDepth = 1_000
)

// CheckCost refuses (EINVALID) a values schema (a values.schema.json) that is not JSON, does not compile,
// or whose check of values would take more than maxSteps, without running the check: what Validate
// does before it validates, for the schemas Helm checks on its own (a subchart's, or a chart's that
// changed since the API checked it). values are those the schema will be checked against.
func CheckCost(schemaJSON []byte, values any) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return marketplace.Errorf(marketplace.EINVALID, "values.schema.json is not JSON: %v", err)
	}
	compiled, err := compile(doc)
	if err != nil {
		return marketplace.Errorf(marketplace.EINVALID, "%v", err)
	}
	v, err := asJSON(values)
	if err != nil {
		return err
	}
	return affordable(compiled, v)
}

// affordable refuses (EINVALID) values whose check against s would take more than maxSteps.
func affordable(s *jsonschema.Schema, values any) error {
	c := costCount{dynamic: map[string][]*jsonschema.Schema{}, seen: map[*jsonschema.Schema]bool{}}
	c.anchors(s)
	if c.visit(s, values, 0) {
		return nil
	}
	return marketplace.Errorf(marketplace.EINVALID,
		"the chart's values.schema.json is too much work to check values against (more than %d evaluations of its subschemas: "+
			"nested allOf, anyOf, oneOf or properties reaching the same subschemas many times over): its publisher must simplify it", maxSteps)
}

// costCount counts the evaluations of a check.
type costCount struct {
	steps int
	// dynamic and recursive are where a $dynamicRef (by anchor) or a $recursiveRef may resolve: the
	// count takes them all.
	dynamic   map[string][]*jsonschema.Schema
	recursive []*jsonschema.Schema
	seen      map[*jsonschema.Schema]bool
}

// anchors collects the schemas with a dynamic or recursive anchor, once each.
func (c *costCount) anchors(s *jsonschema.Schema) {
	if s == nil || c.seen[s] {
		return
	}
	c.seen[s] = true
	if s.DynamicAnchor != "" {
		c.dynamic[s.DynamicAnchor] = append(c.dynamic[s.DynamicAnchor], s)
	}
	if s.RecursiveAnchor {
		c.recursive = append(c.recursive, s)
	}
	for _, sub := range subschemas(s) {
		c.anchors(sub)
	}
}

// visit counts the evaluation of s against v; false once the count passes maxSteps or maxDepth.
func (c *costCount) visit(s *jsonschema.Schema, v any, depth int) bool {
	if s == nil {
		return true
	}
	c.steps++
	if s.Enum != nil {
		c.steps += len(s.Enum.Values)
	}
	if c.steps > maxSteps || depth > maxDepth {
		return false
	}
	depth++
	inPlace := append([]*jsonschema.Schema{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else}, s.AllOf...)
	inPlace = append(append(inPlace, s.AnyOf...), s.OneOf...)
	if s.RecursiveRef != nil {
		inPlace = append(inPlace, c.recursive...)
	}
	if s.DynamicRef != nil {
		inPlace = append(append(inPlace, s.DynamicRef.Ref), c.dynamic[s.DynamicRef.Anchor]...)
	}
	for _, sub := range s.DependentSchemas {
		inPlace = append(inPlace, sub)
	}
	for _, d := range s.Dependencies {
		if sub, ok := d.(*jsonschema.Schema); ok {
			inPlace = append(inPlace, sub)
		}
	}
	for _, sub := range inPlace {
		if !c.visit(sub, v, depth) {
			return false
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if !c.visit(s.PropertyNames, k, depth) || !c.visit(s.Properties[k], child, depth) ||
				!c.visit(s.UnevaluatedProperties, child, depth) {
				return false
			}
			matched := false
			for re, sub := range s.PatternProperties {
				if re.MatchString(k) {
					matched = true
					if !c.visit(sub, child, depth) {
						return false
					}
				}
			}
			if additional, ok := s.AdditionalProperties.(*jsonschema.Schema); ok && s.Properties[k] == nil && !matched {
				if !c.visit(additional, child, depth) {
					return false
				}
			}
		}
	case []any:
		if s.UniqueItems {
			c.steps += len(v) * len(v) / 2
		}
		for i, item := range v {
			each := []*jsonschema.Schema{s.Contains, s.UnevaluatedItems, s.Items2020}
			if i < len(s.PrefixItems) {
				each = append(each, s.PrefixItems[i])
			}
			switch items := s.Items.(type) {
			case *jsonschema.Schema:
				each = append(each, items)
			case []*jsonschema.Schema:
				if i < len(items) {
					each = append(each, items[i])
				} else if additional, ok := s.AdditionalItems.(*jsonschema.Schema); ok {
					each = append(each, additional)
				}
			}
			for _, sub := range each {
				if !c.visit(sub, item, depth) {
					return false
				}
			}
		}
	}
	return c.steps <= maxSteps
}

// subschemas are all the schemas s refers to directly.
func subschemas(s *jsonschema.Schema) []*jsonschema.Schema {
	out := []*jsonschema.Schema{s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else, s.PropertyNames,
		s.UnevaluatedProperties, s.Contains, s.Items2020, s.UnevaluatedItems, s.ContentSchema}
	if s.DynamicRef != nil {
		out = append(out, s.DynamicRef.Ref)
	}
	out = append(append(append(append(out, s.AllOf...), s.AnyOf...), s.OneOf...), s.PrefixItems...)
	for _, m := range []map[string]*jsonschema.Schema{s.Properties, s.DependentSchemas} {
		for _, sub := range m {
			out = append(out, sub)
		}
	}
	for _, sub := range s.PatternProperties {
		out = append(out, sub)
	}
	for _, d := range s.Dependencies {
		if sub, ok := d.(*jsonschema.Schema); ok {
			out = append(out, sub)
		}
	}
	for _, v := range []any{s.AdditionalProperties, s.AdditionalItems, s.Items} {
		switch v := v.(type) {
		case *jsonschema.Schema:
			out = append(out, v)
		case []*jsonschema.Schema:
			out = append(out, v...)
		}
	}
	return out
}
