package web

import (
	"net/url"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/marketplace/marketplace/internal/marketplace"
)

func TestInstallFormFromInputs(t *testing.T) {
	app := &marketplace.Application{ID: 1, Deployment: marketplace.DeploymentSpec{Type: marketplace.TypeVM}, Inputs: []marketplace.Input{
		{Name: "replicaCount", Type: "integer", Required: true},
		{Name: "ratio", Type: "number", Default: 0.5},
		{Name: "tls.enabled", Type: "boolean", Default: true},
		{Name: "greeting", Type: "string", Required: true, Default: "hello"},
	}}
	f := newInstallForm(app)
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
