package render

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	release "helm.sh/helm/v4/pkg/release/v1"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestMain makes the test binary a render child when it is run as one: Renderer runs os.Executable(),
// which here is the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == Subcommand {
		os.Exit(Child(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestEscape(t *testing.T) {
	for _, text := range []string{"", "plain", "{{ .Values.x }}", "{{{", "}}{{", "{{- x -}}", "a{{/* c */}}b", `{{"{{"}}`,
		"{{ range until 100000000 }}x{{ end }}", "<no value>"[:3], "line\nbreak \"quoted\" \\ `raw` \x00\xff é\t}}",
		strings.Repeat("{", 1<<20)} {
		tpl, err := template.New("t").Parse(Escape(text))
		if err != nil {
			t.Fatalf("Escape(%q) = %q does not parse: %v", text, Escape(text), err)
		}
		var out strings.Builder
		if err := tpl.Execute(&out, nil); err != nil {
			t.Fatal(err)
		}
		if out.String() != text {
			t.Errorf("Escape(%.40q) renders %.40q", text, out.String())
		}
		if n := len(tpl.Tree.Root.Nodes); n > 1 {
			t.Errorf("Escape(%.40q) is %d template nodes, want one", text, n)
		}
	}
}

func TestNumbersKeepTheirTypes(t *testing.T) {
	in := map[string]any{"i": int64(1000000), "n": int(3), "f": 2.0, "g": 1.5, "big": 1e21, "s": "1", "b": true,
		"m": map[string]any{"l": []any{int64(7), 7.0}}}
	enc, err := encodeRequest(childRequest{Request: Request{Values: in}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRequest(strings.NewReader(string(enc)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"i": int64(1000000), "n": int64(3), "f": 2.0, "g": 1.5, "big": 1e21, "s": "1", "b": true,
		"m": map[string]any{"l": []any{int64(7), 7.0}}}
	for k := range want {
		if g, w := formatAny(got.Values[k]), formatAny(want[k]); g != w {
			t.Errorf("%s: got %s, want %s", k, g, w)
		}
	}
}

func formatAny(v any) string { return strings.TrimSpace(strings.ReplaceAll(fmtT(v), "\n", "")) }

func fmtT(v any) string {
	var b strings.Builder
	template.Must(template.New("").Parse("{{ printf \"%T %v\" . }}")).Execute(&b, v)
	return b.String()
}

// writeChart writes a chart directory from name → content and returns its archive.
func writeChart(t *testing.T, files map[string]string) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	file, err := chartutil.Save(ch, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return archive
}

func loadArchive(t *testing.T, archive []byte) *chart.Chart {
	t.Helper()
	ch, err := loader.LoadArchive(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// dryRun installs ch client-side as Helm would, and returns the release.
func dryRun(t *testing.T, ch *chart.Chart, values map[string]any) *release.Release {
	t.Helper()
	inst := action.NewInstall(action.NewConfiguration())
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName, inst.Namespace = "deployment-7", "mp-deployment-7"
	rel, err := inst.RunWithContext(context.Background(), ch, values)
	if err != nil {
		t.Fatal(err)
	}
	return rel.(*release.Release)
}

var richChart = map[string]string{
	"Chart.yaml": `apiVersion: v2
name: rich
version: 1.2.3
dependencies:
- name: sub
  version: 0.1.0
  condition: sub.enabled
- name: disabled
  version: 0.1.0
  condition: disabled.enabled
`,
	"values.yaml":                      "replicas: 1\nsub: {enabled: true, greeting: hello}\ndisabled: {enabled: false}\n",
	"values.schema.json":               `{"type": "object", "properties": {"replicas": {"type": "integer"}}}`,
	"templates/_helpers.tpl":           `{{ define "rich.name" }}{{ .Release.Name }}-{{ .Chart.Name }}{{ end }}`,
	"templates/NOTES.txt":              "Installed {{ include \"rich.name\" . }} with {{ .Values.replicas }} replicas; braces: {{ \"{{\" }}",
	"templates/cm.yaml":                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ include \"rich.name\" . }}\ndata:\n  replicas: {{ .Values.replicas | quote }}\n  big: {{ .Values.big | quote }}\n  text: {{ `{{ not an action }}` | quote }}\n  rev: {{ .Release.Revision | quote }}\n",
	"templates/hook.yaml":              "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hook\n  annotations:\n    helm.sh/hook: pre-install\ndata: {}\n",
	"crds/thing.yaml":                  "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: things.example.com\n",
	"files/config.txt":                 "a file {{ not rendered }}",
	"charts/sub/Chart.yaml":            "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
	"charts/sub/values.yaml":           "greeting: hi\n",
	"charts/sub/templates/s.yaml":      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: sub-{{ .Release.Name }}\nstringData:\n  greeting: {{ .Values.greeting }}\n",
	"charts/sub/templates/NOTES.txt":   "sub notes",
	"charts/sub/crds/sub.yaml":         "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: subs.example.com\n",
	"charts/disabled/Chart.yaml":       "apiVersion: v2\nname: disabled\nversion: 0.1.0\n",
	"charts/disabled/templates/o.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: disabled\n",
}

// TestPrerenderedInstallsTheSame renders a chart with subcharts (one disabled), partials, notes, a
// hook, CRDs and text that looks like template actions in the child, and checks that Helm's dry run
// of the pre-rendered chart is the dry run of the chart itself: manifest, hooks and notes.
func TestPrerenderedInstallsTheSame(t *testing.T) {
	archive := writeChart(t, richChart)
	r, err := New(Config{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{"replicas": int64(3), "big": int64(1000000)}
	res, err := r.Render(context.Background(), Request{Archive: archive, Values: values,
		Release: Release{Name: "deployment-7", Namespace: "mp-deployment-7", Revision: 1, IsInstall: true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChartError != "" {
		t.Fatal(res.ChartError)
	}
	if !strings.Contains(res.Files["rich/templates/cm.yaml"], `big: "1000000"`) {
		t.Errorf("the integer value is not rendered as an integer:\n%s", res.Files["rich/templates/cm.yaml"])
	}
	want := dryRun(t, loadArchive(t, archive), values)
	pre := Prerendered(loadArchive(t, archive), res)
	if len(pre.Dependencies()) != 0 || len(pre.Metadata.Dependencies) != 0 {
		t.Error("the pre-rendered chart has dependencies")
	}
	got := dryRun(t, pre, values)
	if got.Manifest != want.Manifest {
		t.Errorf("manifest:\n%s\nwant:\n%s", got.Manifest, want.Manifest)
	}
	if got.Info.Notes != want.Info.Notes {
		t.Errorf("notes: %q, want %q", got.Info.Notes, want.Info.Notes)
	}
	if len(got.Hooks) != 1 || len(want.Hooks) != 1 || got.Hooks[0].Manifest != want.Hooks[0].Manifest || got.Hooks[0].Path != want.Hooks[0].Path {
		t.Errorf("hooks: %+v, want %+v", got.Hooks, want.Hooks)
	}
	var crds []string
	for _, c := range pre.CRDObjects() {
		crds = append(crds, c.Name)
	}
	if strings.Join(crds, ",") != "crds/thing.yaml,crds/charts/sub/crds/sub.yaml" {
		t.Errorf("CRDs of the pre-rendered chart: %v", crds)
	}
	if strings.Contains(got.Manifest, "name: disabled") {
		t.Error("the disabled subchart was rendered")
	}
}

func TestChartErrors(t *testing.T) {
	r, err := New(Config{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		files  map[string]string
		values map[string]any
		want   string
	}{
		"template": {map[string]string{"templates/a.yaml": "{{ fail \"no\" }}"}, nil, "no"},
		"parse":    {map[string]string{"templates/a.yaml": "{{ if }}"}, nil, "missing value for if"},
		"schema": {map[string]string{"values.schema.json": `{"properties": {"n": {"type": "integer"}}}`}, map[string]any{"n": "x"},
			"values don't meet the specifications of the schema"},
	} {
		t.Run(name, func(t *testing.T) {
			c.files["Chart.yaml"] = "apiVersion: v2\nname: broken\nversion: 0.1.0\n"
			res, err := r.Render(context.Background(), Request{Archive: writeChart(t, c.files), Values: c.values})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(res.ChartError, c.want) {
				t.Errorf("chart error %q does not say %q", res.ChartError, c.want)
			}
		})
	}
}

// TestBudgets runs charts that would spin, allocate or write without end: each render ends within its
// budget with an EINVALID error naming it, and its child is gone when Render returns.
func TestBudgets(t *testing.T) {
	for name, c := range map[string]struct {
		template string
		maxBytes int64
		want     string
	}{
		"time":    {"{{ range until 100000 }}{{ range until 100000 }}x{{ end }}{{ end }}", 1 << 20, "time budget: 2s (RENDER_TIMEOUT)"},
		"memory":  {`{{ repeat 1000000000 "x" }}`, 1 << 20, "memory budget"},
		"seq":     {`{{ until 2000000000 | len }}`, 1 << 20, "the chart did not render within its"}, // memory or time
		"output":  {`{{ range until 20 }}{{ repeat 100000 "x" }}{{ end }}`, 1 << 20, "more than 1048576 bytes (RENDER_MAX_BYTES)"},
		"include": {`{{ define "a" }}{{ include "a" . }}{{ include "a" . }}{{ end }}{{ include "a" . }}`, 1 << 20, "does not render"},
	} {
		t.Run(name, func(t *testing.T) {
			archive := writeChart(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: bomb\nversion: 0.1.0\n", "templates/a.yaml": c.template})
			timeout := 2 * time.Second
			if c.want == "does not render" {
				timeout = 20 * time.Second // Helm stops it, not the budget: on a loaded machine in more than 2 s
			}
			r, err := New(Config{Timeout: timeout, MaxBytes: c.maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := r.Render(context.Background(), Request{Archive: archive})
			took := time.Since(start)
			if c.want == "does not render" { // Helm's own recursion limit stops this one
				if err != nil || res.ChartError == "" {
					t.Fatalf("res %+v, err %v", res, err)
				}
				return
			}
			if marketplace.ErrorCode(err) != marketplace.EINVALID || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want EINVALID saying %q", err, c.want)
			}
			if took > 5*time.Second {
				t.Errorf("the render took %s", took)
			}
			t.Logf("%s after %s", err, took)
		})
	}
}

// TestCallerEnds stops a spinning render when its caller gives up, long before the budget.
func TestCallerEnds(t *testing.T) {
	archive := writeChart(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: spin\nversion: 0.1.0\n",
		"templates/a.yaml": "{{ range until 100000 }}{{ range until 100000 }}x{{ end }}{{ end }}"})
	r, err := New(Config{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = r.Render(ctx, Request{Archive: archive})
	if err == nil || marketplace.ErrorCode(err) == marketplace.EINVALID || time.Since(start) > 3*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
}

// TestAChildWaitsAhead: after a render, one child waits for the next request (so the next render does
// not pay the binary's start), the next render uses it, and Close stops it.
func TestAChildWaitsAhead(t *testing.T) {
	archive := writeChart(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: one\nversion: 0.1.0\n",
		"templates/a.yaml": "kind: ConfigMap\n"})
	r, err := New(Config{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	waiting := func() *child {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.spare
	}
	ready := func() *child {
		deadline := time.Now().Add(10 * time.Second)
		for waiting() == nil && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		return waiting()
	}
	if _, err := r.Render(context.Background(), Request{Archive: archive}); err != nil {
		t.Fatal(err)
	}
	first := ready()
	if first == nil {
		t.Fatal("no child waits after a render")
	}
	if _, err := r.Render(context.Background(), Request{Archive: archive}); err != nil {
		t.Fatal(err)
	}
	if first.cmd.ProcessState == nil || !first.cmd.ProcessState.Success() {
		t.Errorf("the waiting child did not do the second render: %v", first.cmd.ProcessState)
	}
	second := ready()
	if second == nil || second == first {
		t.Fatal("no new child waits after the second render")
	}
	r.Close()
	if second.cmd.ProcessState == nil {
		t.Error("Close left the waiting child running")
	}
	if _, err := r.Render(context.Background(), Request{Archive: archive}); err != nil {
		t.Fatalf("a render after Close: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if waiting() != nil {
		t.Error("a child was started ahead after Close")
	}
}

// niceOf reads the nice value of every thread of process pid (field 19 of each task's stat).
func niceOf(t *testing.T, pid int) []int {
	t.Helper()
	var nice []int
	for _, n := range niceByThread(t, pid) {
		nice = append(nice, n)
	}
	return nice
}

// niceByThread is niceOf by thread id.
func niceByThread(t *testing.T, pid int) map[int]int {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	nice := map[int]int{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		// The command (field 2) is in parentheses and may hold spaces: count from after it.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		n, err := strconv.Atoi(f[16]) // field 19 of stat, the 17th after the command
		if err != nil {
			t.Fatal(err)
		}
		tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		nice[tid] = n
	}
	return nice
}

// The render process runs Nice lower than the worker, every thread of it, and renders as before;
// the worker's own threads keep their priority.
func TestTheRenderProcessRunsNiced(t *testing.T) {
	base := niceByThread(t, os.Getpid())[os.Getpid()]
	if base+4 > 19 {
		t.Skipf("this test runs at nice %d already", base)
	}
	r, err := New(Config{Timeout: 20 * time.Second, Nice: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, err := r.start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	// Let the child's runtime make its threads (it then waits for its request on stdin).
	deadline := time.Now().Add(10 * time.Second)
	for len(niceOf(t, c.cmd.Process.Pid)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := niceOf(t, c.cmd.Process.Pid)
	if len(got) < 2 {
		t.Fatalf("the render process has %d thread(s); want its runtime's", len(got))
	}
	for _, n := range got {
		if n != base+4 {
			t.Errorf("a thread of the render process runs at nice %d, want %d (the worker's %d + 4): %v", n, base+4, base, got)
		}
	}
	// The thread that started the child ends with its goroutine.
	// Or, when that goroutine ran on the main thread, which a Go program never ends, the runtime parks
	// that thread for good: it runs nothing again, so it is not counted.
	niced := func() []int {
		var out []int
		for tid, n := range niceByThread(t, os.Getpid()) {
			if n != base && tid != os.Getpid() {
				out = append(out, n)
			}
		}
		return out
	}
	for deadline := time.Now().Add(5 * time.Second); len(niced()) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := niced(); len(n) > 0 {
		t.Errorf("threads of the worker run at nice %v after starting a render process, want %d", n, base)
	}
	archive := writeChart(t, map[string]string{"Chart.yaml": "apiVersion: v2\nname: one\nversion: 0.1.0\n",
		"templates/a.yaml": "kind: ConfigMap\n"})
	res, err := r.Render(context.Background(), Request{Archive: archive})
	if err != nil || res.ChartError != "" || len(res.Files) != 1 {
		t.Fatalf("render with Nice: %v %+v", err, res)
	}
}
