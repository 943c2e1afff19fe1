package render

import (
	"sort"
	"strconv"
	"strings"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
)

// Prerendered is the chart Helm installs in place of ch once the child rendered it: ch's metadata,
// values, schema and files, no subcharts (their templates are rendered, their CRDs among the files),
// and for templates the rendered files, escaped so that Helm's own render turns each back into exactly
// its text, in time linear in its length. Each keeps its path: Helm names the objects' sources, picks
// the top chart's NOTES.txt and sorts manifests and hooks (whose annotations are in the text) as it
// would have. Partials are gone: they were rendered where they were included.
func Prerendered(ch *chart.Chart, res *Result) *chart.Chart {
	md := *ch.Metadata
	md.Dependencies = nil
	out := &chart.Chart{Metadata: &md, Values: ch.Values, Schema: ch.Schema, SchemaModTime: ch.SchemaModTime, ModTime: ch.ModTime}
	for _, f := range ch.Files {
		if !strings.HasPrefix(f.Name, "crds/") {
			out.Files = append(out.Files, f)
		}
	}
	for _, crd := range res.CRDs {
		name := crd.Name
		if !strings.HasPrefix(name, "crds/") {
			name = "crds/" + name // a subchart's: crds/charts/<subchart>/crds/<file>
		}
		out.Files = append(out.Files, &common.File{Name: name, Data: crd.Data})
	}
	prefix := ch.ChartFullPath() + "/"
	names := make([]string, 0, len(res.Files))
	for name := range res.Files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out.Templates = append(out.Templates, &common.File{Name: strings.TrimPrefix(name, prefix), Data: []byte(Escape(res.Files[name]))})
	}
	return out
}

// Escape makes text a Go template whose output is text: one action printing text as one quoted string
// constant. One action per file, not one per "{{" in it: a render of 8 MiB of "{" would otherwise be
// four million actions, gigabytes of parse nodes in the worker that installs it.
func Escape(text string) string {
	return "{{" + strconv.Quote(text) + "}}"
}
