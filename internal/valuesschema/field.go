package valuesschema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Field is what the schema says of one value, for a form: the constraints a browser can check itself.
// Numbers are kept as written in the schema.
type Field struct {
	Type        string // the first type that is not "null"; "" when the schema names none
	Description string
	Enum        []string // the allowed values as text, in the schema's order
	Minimum     string
	Maximum     string
	MinLength   int // 0 when not set
	MaxLength   int // 0 when not set
	Pattern     string
	// Required says the object holding the value lists it as required.
	Required bool
	// Default is the package's default of the value: its values.yaml, or else the schema's "default".
	Default any
	// HasDefault says Default is set (a default may be false or 0).
	HasDefault bool
	// InValues says the package's values.yaml sets the value, so a required one is there even when the
	// consumer leaves it out (the schema's "default" fills nothing in: Helm does not apply it).
	InValues bool
}

// maxRefs bounds how many "$ref"s a lookup follows, so a schema whose references loop is not a loop here.
const maxRefs = 32

// Field describes the value at a dotted path (service.port), or returns nil when the schema says nothing
// of it. Only references inside the schema ("#/definitions/port") are followed.
func (s *Schema) Field(path string) *Field {
	var f Field
	if v, ok := lookup(s.defaults, strings.Split(path, ".")); ok {
		f.Default, f.HasDefault, f.InValues = v, true, true
	}
	if s.doc == nil {
		if f.HasDefault {
			return &f
		}
		return nil
	}
	node := s.resolve(s.doc)
	parts := strings.Split(path, ".")
	for i, name := range parts {
		props, _ := node["properties"].(map[string]any)
		child, ok := props[name].(map[string]any)
		if !ok {
			if f.HasDefault {
				return &f
			}
			return nil
		}
		if i == len(parts)-1 {
			required, _ := node["required"].([]any)
			f.Required = slices.Contains(required, any(name))
		}
		node = s.resolve(child)
	}
	f.Description, _ = node["description"].(string)
	switch t := node["type"].(type) {
	case string:
		f.Type = t
	case []any:
		for _, v := range t {
			if name, ok := v.(string); ok && name != "null" {
				f.Type = name
				break
			}
		}
	}
	if enum, ok := node["enum"].([]any); ok {
		for _, v := range enum {
			if v != nil {
				f.Enum = append(f.Enum, text(v))
			}
		}
	}
	if n, ok := node["minimum"].(json.Number); ok {
		f.Minimum = n.String()
	}
	if n, ok := node["maximum"].(json.Number); ok {
		f.Maximum = n.String()
	}
	if n, ok := node["minLength"].(json.Number); ok {
		if i, err := n.Int64(); err == nil && i > 0 {
			f.MinLength = int(i)
		}
	}
	if n, ok := node["maxLength"].(json.Number); ok {
		if i, err := n.Int64(); err == nil && i > 0 {
			f.MaxLength = int(i)
		}
	}
	f.Pattern, _ = node["pattern"].(string)
	if d, ok := node["default"]; ok && !f.HasDefault {
		f.Default, f.HasDefault = d, true
	}
	return &f
}

// resolve follows node's "$ref" while it points inside the schema.
func (s *Schema) resolve(node map[string]any) map[string]any {
	for range maxRefs {
		ref, ok := node["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#") {
			return node
		}
		var target any = s.doc
		for _, part := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(ref, "#"), "/"), "/") {
			if part == "" {
				continue
			}
			part = strings.NewReplacer("~1", "/", "~0", "~").Replace(part)
			m, _ := target.(map[string]any)
			target = m[part]
		}
		next, ok := target.(map[string]any)
		if !ok {
			return node
		}
		node = next
	}
	return node
}

// lookup reads the value at path in nested maps.
func lookup(m map[string]any, path []string) (any, bool) {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = mm[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// text writes a schema or values value as a form shows it.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		return fmt.Sprint(v)
	}
}

// Text writes a default or an enum value as a form shows it.
func Text(v any) string { return text(v) }
