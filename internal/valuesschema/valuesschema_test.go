package valuesschema

import (
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/marketplace"
)

const testSchema = `{
  "$schema": "https://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["greeting"],
  "definitions": {"port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port."}},
  "properties": {
    "replicaCount": {"type": "integer", "minimum": 0, "maximum": 5, "description": "How many pods."},
    "greeting": {"type": "string", "minLength": 1, "maxLength": 40, "pattern": "^[A-Za-z ,!]+$"},
    "debug": {"type": ["boolean", "null"], "default": false},
    "service": {"type": "object", "properties": {
      "type": {"type": "string", "enum": ["ClusterIP", "NodePort"]},
      "port": {"$ref": "#/definitions/port"}}}
  }
}`

func testApp() *marketplace.Application {
	return &marketplace.Application{ID: 7, Inputs: []marketplace.Input{
		{Name: "replicaCount", Type: "integer"}, {Name: "greeting"}, {Name: "service.type"}, {Name: "service.port", Type: "integer"},
	}}
}

func TestValidate(t *testing.T) {
	s, err := New(&marketplace.ValuesSchema{Schema: []byte(testSchema),
		Defaults: map[string]any{"replicaCount": int64(1), "service": map[string]any{"type": "ClusterIP", "port": int64(80)}}})
	if err != nil {
		t.Fatal(err)
	}
	app := testApp()
	for _, c := range []struct {
		values map[string]any
		want   string // "" accepted, else the start of the message
	}{
		{map[string]any{"greeting": "Hello"}, ""},
		{map[string]any{"greeting": "Hello", "service": map[string]any{"port": int64(8080)}}, ""}, // merged over the defaults
		{map[string]any{}, "inputs.greeting: missing property"},
		{map[string]any{"greeting": "Hello", "replicaCount": int64(9)}, "inputs.replicaCount: maximum: got 9, want 5"},
		{map[string]any{"greeting": "Hello", "replicaCount": "three"}, "inputs.replicaCount: got string, want integer"},
		{map[string]any{"greeting": "Hello", "service": map[string]any{"type": "LoadBalancer"}}, "inputs.service.type: value must be one of"},
		{map[string]any{"greeting": "Hello", "service": map[string]any{"port": int64(0)}}, "inputs.service.port: minimum: got 0, want 1"},
		{map[string]any{"greeting": "<b>"}, "inputs.greeting: '<b>' does not match pattern"},
		{map[string]any{"greeting": "Hello", "debug": "yes"}, "values.debug: got string, want null or boolean"},
		{map[string]any{"greeting": "Hello", "service": nil}, ""}, // null removes a default, as in Helm
	} {
		err := s.Validate(app, c.values)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v refused: %v", c.values, err)
		case c.want != "" && err == nil:
			t.Errorf("%v accepted, want %q", c.values, c.want)
		case c.want != "" && (!strings.HasPrefix(marketplace.ErrorMessage(err), c.want) || marketplace.ErrorCode(err) != marketplace.EINVALID):
			t.Errorf("%v: %q (%s), want it to start with %q", c.values, marketplace.ErrorMessage(err), marketplace.ErrorCode(err), c.want)
		}
	}
}

func TestNoSchema(t *testing.T) {
	for _, vs := range []*marketplace.ValuesSchema{nil, {}, {Defaults: map[string]any{"a": 1}}} {
		s, err := New(vs)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(testApp(), map[string]any{"anything": "goes"}); err != nil {
			t.Errorf("no schema refused values: %v", err)
		}
	}
	if _, err := New(&marketplace.ValuesSchema{Schema: []byte(`{"not json`)}); err == nil {
		t.Error("a schema that is not JSON was accepted")
	}
}

// A reference outside the schema is never loaded: the schema does not compile.
func TestExternalRefRefused(t *testing.T) {
	for _, schema := range []string{
		`{"properties": {"a": {"$ref": "http://169.254.169.254/latest/meta-data"}}}`,
		`{"properties": {"a": {"$ref": "file:///etc/passwd"}}}`,
		`{"$schema": "http://127.0.0.1:1/schema", "type": "object"}`,
	} {
		if _, err := New(&marketplace.ValuesSchema{Schema: []byte(schema)}); err == nil || !strings.Contains(err.Error(), "not loaded") {
			t.Errorf("%s: %v, want refused as not loaded", schema, err)
		}
	}
}

func TestField(t *testing.T) {
	s, err := New(&marketplace.ValuesSchema{Schema: []byte(testSchema), Defaults: map[string]any{"service": map[string]any{"port": int64(80)}}})
	if err != nil {
		t.Fatal(err)
	}
	rc := s.Field("replicaCount")
	if rc == nil || rc.Type != "integer" || rc.Minimum != "0" || rc.Maximum != "5" || rc.Description != "How many pods." || rc.Required || rc.HasDefault {
		t.Errorf("replicaCount: %+v", rc)
	}
	g := s.Field("greeting")
	if g == nil || !g.Required || g.MinLength != 1 || g.MaxLength != 40 || g.Pattern != "^[A-Za-z ,!]+$" {
		t.Errorf("greeting: %+v", g)
	}
	st := s.Field("service.type")
	if st == nil || strings.Join(st.Enum, ",") != "ClusterIP,NodePort" {
		t.Errorf("service.type: %+v", st)
	}
	port := s.Field("service.port") // through the $ref; its default from values.yaml
	if port == nil || port.Type != "integer" || port.Maximum != "65535" || port.Description != "The port." || Text(port.Default) != "80" || !port.InValues {
		t.Errorf("service.port: %+v", port)
	}
	debug := s.Field("debug")
	if debug == nil || debug.Type != "boolean" || !debug.HasDefault || debug.Default != false || debug.InValues {
		t.Errorf("debug: %+v", debug)
	}
	if f := s.Field("nothing.here"); f != nil {
		t.Errorf("an unknown path: %+v", f)
	}
}
