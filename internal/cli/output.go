package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
)

// table is the rows of a table view, the first one its header.
type table [][]string

// show prints a read: the server's JSON as it was (indented) for -o json, the same as YAML for -o yaml
// (amounts keep their exact digits in both), or the table, with aligned columns.
func (o *options) show(raw json.RawMessage, rows func() (table, error)) error {
	out := o.env.Stdout
	switch o.output {
	case "json":
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("the answer is not JSON: %w", err)
		}
		buf.WriteByte('\n')
		_, err := out.Write(jsonPrintable(buf.Bytes()))
		return err
	case "yaml":
		return writeYAML(out, raw)
	case "table", "":
		t, err := rows()
		if err != nil {
			return err
		}
		return writeTable(out, t)
	default:
		return usageError("-o %q: want table, json or yaml", o.output)
	}
}

func writeTable(out io.Writer, t table) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, row := range t {
		if i == 0 {
			for j := range row {
				row[j] = strings.ToUpper(row[j])
			}
		}
		cells := make([]string, len(row))
		for j, cell := range row {
			cells[j] = printable(cell, "")
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	return w.Flush()
}

// writeYAML converts JSON to YAML through the YAML node tree, which keeps every scalar's text: a number
// is written with the digits the server sent, never through a float. A string holding a character a
// terminal acts on is written double-quoted, where YAML shows it as an escape.
func writeYAML(out io.Writer, raw json.RawMessage) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(jsonPrintable(raw), &doc); err != nil {
		return fmt.Errorf("the answer is not JSON: %w", err)
	}
	blockStyle(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	// YAML writes the bidirectional marks as they are, even double-quoted: escape them there.
	_, err := out.Write(jsonPrintable(buf.Bytes()))
	return err
}

// blockStyle drops the flow style JSON parses into, so YAML is written as blocks and plain scalars, but
// for the strings printable would change.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	if n.Kind == yaml.ScalarNode && printable(n.Value, "") != n.Value {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// since is a short age, as kubectl shows it.
func since(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func itoa(i int64) string { return fmt.Sprint(i) }

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stamp is how tables show an instant: UTC, to the second.
func stamp(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
