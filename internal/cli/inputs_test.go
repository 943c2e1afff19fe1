package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/marketplace/marketplace/internal/cli/apiclient"
)

// TestInputsFromFlags checks --values files and --set pairs become the install's inputs: nested maps as
// dotted names, --set last, and a value read as the type the application declares.
func TestInputsFromFlags(t *testing.T) {
	values := t.TempDir() + "/values.yaml"
	writeTestFile(t, values, "replicaCount: 1\nservice:\n  port: 8080\ngreeting: hi\n")
	str, integer := apiclient.InputType("string"), apiclient.InputType("integer")
	declared := []apiclient.Input{{Name: "code", Type: &str}, {Name: "replicaCount", Type: &integer}}
	f := inputFlags{values: []string{values}, set: []string{"replicaCount=3", "code=007", "debug=true", "ratio=0.25", "name=web"}}
	got, err := f.inputs(declared)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"replicaCount": json.Number("3"), "service.port": float64(8080), "greeting": "hi",
		"code": "007", "debug": true, "ratio": json.Number("0.25"), "name": "web"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inputs %#v, want %#v", got, want)
	}
	if _, err := (&inputFlags{set: []string{"novalue"}}).inputs(nil); err == nil {
		t.Error("--set novalue was accepted")
	}
}

// TestYAMLKeepsDigits checks -o yaml writes an amount with the digits the server sent.
func TestYAMLKeepsDigits(t *testing.T) {
	var buf bytes.Buffer
	if err := writeYAML(&buf, json.RawMessage(`{"hourly_rate": 0.100000, "total": 12345678901.123456, "name": "007", "ok": "true"}`)); err != nil {
		t.Fatal(err)
	}
	want := "hourly_rate: 0.100000\ntotal: 12345678901.123456\nname: \"007\"\nok: \"true\"\n"
	if buf.String() != want {
		t.Errorf("yaml:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
