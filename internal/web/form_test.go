package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/valuesschema"
)

func TestInstallFormFromInputs(t *testing.T) {
	app := &marketplace.Application{ID: 1, Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeVM}, Inputs: []marketplace.Input{
		{Name: "replicaCount", Type: "integer", Required: true},
		{Name: "ratio", Type: "number", Default: 0.5},
		{Name: "tls.enabled", Type: "boolean", Default: true},
		{Name: "greeting", Type: "string", Required: true, Default: "hello"},
	}}
	f := newInstallForm(app, nil)
	want := []struct {
		input, htmlType, step, value string
		required, checked            bool
	}{
		{"replicaCount", "number", "1", "", true, false},
		{"ratio", "number", "any", "0.5", false, false},
		{"tls.enabled", "checkbox", "", "", false, true},
		{"greeting", "text", "", "hello", false, false}, // a default fills it: the field may stay empty
		{marketplace.SSHKeysInput, "textarea", "", "", false, false},
	}
	if len(f.Fields) != len(want) {
		t.Fatalf("%d fields, want %d: %+v", len(f.Fields), len(want), f.Fields)
	}
	for i, w := range want {
		got := f.Fields[i]
		if got.Input != w.input || got.HTMLType != w.htmlType || got.Step != w.step || got.Value != w.value ||
			got.Required != w.required || got.Checked != w.checked {
			t.Errorf("field %d = %+v, want %+v", i, got, w)
		}
	}

	inputs := f.fill(url.Values{"project": {"3"}, "in.replicaCount": {"three"}, "in.ratio": {"0.25"}, "in.greeting": {""}})
	if inputs["replicaCount"] != "three" || inputs["ratio"] != 0.25 || inputs["tls.enabled"] != false {
		t.Errorf("inputs = %#v: a wrong type goes on as written (the deployer names it), an unchecked box is false", inputs)
	}
	if _, ok := inputs["greeting"]; ok {
		t.Errorf("an empty field is sent: %#v", inputs)
	}
	f.place("inputs.replicaCount: three is not a integer")
	f.place("project 3 not found")
	if f.Fields[0].Error == "" || f.Error != "project 3 not found" {
		t.Errorf("errors placed: field %q, form %q", f.Fields[0].Error, f.Error)
	}
}

// The chart's values schema shapes the form: an enum is a select, a minimum and a maximum bound a number,
// a required value without a default is required, a description helps, the chart's default shows.
func TestInstallFormFromValuesSchema(t *testing.T) {
	schema, err := valuesschema.New(&marketplace.ValuesSchema{Schema: []byte(`{
  "type": "object", "required": ["greeting", "replicaCount"],
  "properties": {
    "replicaCount": {"type": "integer", "minimum": 1, "maximum": 5, "description": "How many pods serve it."},
    "greeting": {"type": "string", "maxLength": 40, "pattern": "^[A-Za-z ,!]+$", "description": "What it says."},
    "debug": {"type": "boolean"},
    "service": {"type": "object", "properties": {"type": {"type": "string", "enum": ["ClusterIP", "NodePort"]}}}
  }}`), Defaults: map[string]any{"replicaCount": int64(1), "debug": true, "service": map[string]any{"type": "ClusterIP"}}})
	if err != nil {
		t.Fatal(err)
	}
	app := &marketplace.Application{ID: 1, Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeK8s}, Inputs: []marketplace.Input{
		{Name: "replicaCount", Type: "integer"}, {Name: "greeting", Description: "Shown on the page."}, {Name: "debug", Type: "boolean"},
		{Name: "service.type"},
	}}
	f := newInstallForm(app, schema)
	rc, greeting, debug, svc := f.Fields[0], f.Fields[1], f.Fields[2], f.Fields[3]
	if rc.HTMLType != "number" || rc.Min != "1" || rc.Max != "5" || rc.Required || rc.Placeholder != "1" || rc.Help != "How many pods serve it." {
		t.Errorf("replicaCount (required by the schema, filled by values.yaml): %+v", rc)
	}
	if greeting.HTMLType != "text" || !greeting.Required || greeting.MaxLength != 40 || greeting.Pattern != "^[A-Za-z ,!]+$" || greeting.Help != "Shown on the page." {
		t.Errorf("greeting (required, nothing fills it; the application's description first): %+v", greeting)
	}
	if debug.HTMLType != "checkbox" || !debug.Checked {
		t.Errorf("debug starts as values.yaml has it: %+v", debug)
	}
	if svc.HTMLType != "select" || len(svc.Options) != 2 || svc.Options[1] != "NodePort" || svc.Required || svc.Placeholder != "ClusterIP" {
		t.Errorf("service.type is a select of the enum: %+v", svc)
	}
	inputs := f.fill(url.Values{"in.replicaCount": {"3"}, "in.greeting": {"Hi"}, "in.service.type": {""}})
	if inputs["replicaCount"] != int64(3) || inputs["greeting"] != "Hi" || inputs["debug"] != false {
		t.Errorf("inputs %#v", inputs)
	}
	if _, ok := inputs["service.type"]; ok {
		t.Errorf("the select's empty choice (the chart's default) is sent: %#v", inputs)
	}
	f.place("inputs.service.type: value must be one of 'ClusterIP', 'NodePort' (the chart's values.schema.json)")
	if f.Fields[3].Error == "" {
		t.Errorf("a refusal of service.type is not next to its field")
	}
}

func TestMoneyAndNext(t *testing.T) {
	for in, want := range map[string]string{"1.1": "1.10", "0.500000": "0.50", "792.0": "792.00", "0.000305": "0.000305", "3": "3.00"} {
		if got := formatMoney(marketplace.MustMoney(in)); got != want {
			t.Errorf("formatMoney(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"/apps/1": "/apps/1", "//evil.example": "/", "https://evil.example": "/", "/\\evil": "/", "": "/"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRevenueChart(t *testing.T) {
	c := chartOf([]monthRevenue{{"2026-10", decimal.Zero}, {"2026-11", decimal.RequireFromString("2.5")}, {"2026-12", decimal.RequireFromString("5")}})
	if c.Bars[0].H != 0 || c.Bars[2].H != c.Height-50 || c.Bars[1].H != (c.Height-50)/2 || c.Max != "5" {
		t.Errorf("bars %+v", c.Bars)
	}
}

// The application page renders the schema's constraints as the browser's own checks.
func TestInstallFormRenders(t *testing.T) {
	v, err := parseViews()
	if err != nil {
		t.Fatal(err)
	}
	form := installForm{Fields: []formField{
		{Input: "replicaCount", ID: "input-0", HTMLType: "number", Step: "1", Min: "1", Max: "5", Label: "replicaCount", Help: "How many.", Placeholder: "1"},
		{Input: "service.type", ID: "input-1", HTMLType: "select", Options: []string{"ClusterIP", "NodePort"}, Label: "service.type", Value: "NodePort", Required: true},
		{Input: "greeting", ID: "input-2", HTMLType: "text", Pattern: "^[a-z]+$", MaxLength: 9, Label: "greeting", Error: "inputs.greeting: no"},
	}}
	app := &marketplace.Application{ID: 3, Name: "A", Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeK8s}}
	var b strings.Builder
	err = v.pages["app"].ExecuteTemplate(&b, "layout.html", page{Title: "A", SignedIn: true, Asset: func(string) string { return "/x" },
		Body: &appView{App: app, Form: form, Projects: []*marketplace.Project{{ID: 1, Name: "p"}}}})
	if err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, want := range []string{
		`<input id="input-0" name="in.replicaCount" type="number" step="1" min="1" max="5" placeholder="1" value="" aria-describedby="input-0-help">`,
		`<select id="input-1" name="in.service.type" required>`, `<option selected>NodePort</option>`, `<option value="">Choose one</option>`,
		`pattern="^[a-z]&#43;$"`, `maxlength="9"`, `aria-invalid="true" aria-describedby="input-2-error"`,
		`<p class="error" id="input-2-error" role="alert" data-testid="field-error">inputs.greeting: no</p>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
