// Package render renders a publisher's Helm chart in a child process with a time, memory and output
// budget. Helm renders synchronously and ignores its context while it does, sprig's until, seq and
// repeat allocate what they are asked to, and include fans out without limit, so a chart's templates
// can spin a core or fill a worker's memory for as long as they like. In a process of its own, a render
// can be stopped for real: the child caps its own address space and CPU time, and the parent kills it
// (SIGKILL) once the budget or the caller's context ends, so nothing keeps running after the attempt
// or request that wanted it.
//
// The parent side is Renderer.Render; the child side is Child, which the marketplace binary runs as
// its hidden subcommand `render-chart` (Subcommand). What the child renders comes back as text;
// Prerendered turns it into a chart whose templates are that text, so that Helm's own install,
// upgrade or dry run renders nothing of the publisher's again. This package may import Helm but
// nothing of the marketplace's except the domain's errors.
package render

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Subcommand is the argument that makes the marketplace binary a render child.
const Subcommand = "render-chart"

// Defaults every real chart meets.
const (
	DefaultTimeout  = 20 * time.Second
	DefaultMaxBytes = 8 << 20
)

// Config is the budget of every render, and the command that renders.
type Config struct {
	// Timeout bounds one render, the child's start included (RENDER_TIMEOUT).
	Timeout time.Duration
	// MaxBytes bounds what a render may produce: its files' names and contents together
	// (RENDER_MAX_BYTES). The memory a render may take follows from it (RenderMemory).
	MaxBytes int64
	// Command runs the child; empty, the current executable with Subcommand.
	Command []string
	// Nice is how much lower than the worker's the child's CPU priority is (RENDER_NICE): added to the
	// worker's nice value, at most 19; 0 leaves it the worker's. A render (and the start of its
	// process, ~150 ms of CPU) then yields the CPU to the API and the worker's own goroutines when
	// they want it, and takes what is left otherwise.
	Nice int
}

// Request is one render: a chart archive, the values a consumer gave, and what Helm tells templates
// about the release and the cluster.
type Request struct {
	Archive []byte         `json:"archive"`
	Values  map[string]any `json:"values"`
	Release Release        `json:"release"`
	// Capabilities are the cluster's; nil, Helm's defaults (a client-side render, as `helm template`).
	Capabilities *Capabilities `json:"capabilities,omitempty"`
	// Cluster, when set, answers the templates' `lookup` (as the deployment's identity); nil, lookup
	// finds nothing, as in a client-side dry run.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// Release is Helm's .Release of the render.
type Release struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Revision  int    `json:"revision"`
	IsInstall bool   `json:"isInstall"`
	IsUpgrade bool   `json:"isUpgrade"`
}

// Capabilities are Helm's .Capabilities of a cluster.
type Capabilities struct {
	KubeVersion string   `json:"kubeVersion"` // the git version, v1.37.2
	Major       string   `json:"major"`
	Minor       string   `json:"minor"`
	APIVersions []string `json:"apiVersions"`
}

// Cluster is how the child reaches the cluster for `lookup`: the kubeconfig file and the identity it
// impersonates.
type Cluster struct {
	Kubeconfig string `json:"kubeconfig"`
	User       string `json:"user"`
}

// Result is a rendered chart: every rendered file (partials excepted) by its path under the top
// chart's name, as Helm's engine names them, and the CRD files of the subcharts the values enable.
type Result struct {
	Files map[string]string
	CRDs  []File
	// ChartError is the chart's own error (a template that does not parse or fails, values that do
	// not match the schema): the render is over, and the chart is at fault.
	ChartError string
}

// File is a chart file by its path under the top chart.
type File struct {
	Name string
	Data []byte
}

// childRequest is what goes to the child on stdin: the request and the budget it enforces on itself.
type childRequest struct {
	Request
	Timeout  time.Duration `json:"timeout"`
	MaxBytes int64         `json:"maxBytes"`
}

// RenderMemory is the address space a render may map beyond what its child has mapped when it starts
// (a Go program reserves about a gigabyte of address space it never touches, so the cap is relative):
// room for Helm's work on a chart and for a render of maxBytes to be built, copied and encoded several
// times over.
func RenderMemory(maxBytes int64) uint64 {
	return 512<<20 + 16*uint64(maxBytes)
}

// Renderer renders charts in child processes. One child is started ahead of need and waits for its
// request (blocked on reading it, before it limits itself or touches anything of a publisher's): the
// marketplace binary takes about 100 ms to start, which would otherwise be on every install's path.
// Each child renders once and exits.
type Renderer struct {
	cfg Config

	mu     sync.Mutex
	spare  *child // a started child waiting for a request, or nil
	closed bool   // no child is to be started ahead any more
}

// child is a started render process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *capped
	errOut *capped
}

// New returns a Renderer with cfg's budget; zero values take the defaults.
func New(cfg Config) (*Renderer, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("render: the marketplace's executable: %w", err)
		}
		cfg.Command = []string{exe, Subcommand}
	}
	return &Renderer{cfg: cfg}, nil
}

// Close stops the child waiting for a request, if any, and starts none ahead any more.
func (r *Renderer) Close() {
	r.mu.Lock()
	c := r.spare
	r.spare, r.closed = nil, true
	r.mu.Unlock()
	if c != nil {
		c.stop()
	}
}

// start starts a child, which waits for its request on stdin.
func (r *Renderer) start() (*child, error) {
	cmd := exec.Command(r.cfg.Command[0], r.cfg.Command[1:]...)
	// Nothing of the worker's environment: the child needs none of it. One malloc arena: C's allocator
	// would reserve 64 MiB of address space for each new thread, and the child's address space is capped.
	cmd.Env = []string{"MALLOC_ARENA_MAX=1"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// An answer past the output budget kills the child at once (Render then says which budget).
	c := &child{cmd: cmd, stdin: stdin, out: &capped{max: r.cfg.MaxBytes + resultSlack, overrun: func() { cmd.Process.Kill() }},
		errOut: &capped{max: 4 << 10}}
	cmd.Stdout, cmd.Stderr = c.out, c.errOut
	cmd.WaitDelay = time.Second
	if err := startNiced(cmd, r.cfg.Nice); err != nil {
		return nil, fmt.Errorf("render: start the render process: %w", err)
	}
	return c, nil
}

// startNiced starts cmd with its nice value raised by nice. A process's nice value is its threads':
// a forked child takes the forking thread's, and each thread it makes takes its maker's. So cmd is
// started from an OS thread of its own whose nice value is raised first; setting the child's after
// its start would miss the threads its runtime has made by then. That thread is not given back to
// the Go runtime (its goroutine ends locked to it, which ends the thread, or parks it for good when it
// is the main thread): an unprivileged process cannot lower a nice value again.
func startNiced(cmd *exec.Cmd, nice int) error {
	if nice <= 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		tid := syscall.Gettid()
		// getpriority(2) answers 20 - nice; the nice value of the thread is the process's unless changed.
		prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
		if err != nil {
			errc <- fmt.Errorf("getpriority: %w", err)
			return
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-prio+nice, 19)); err != nil {
			errc <- fmt.Errorf("setpriority: %w", err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// stop kills c and waits for it.
func (c *child) stop() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// take returns the waiting child, or a new one.
func (r *Renderer) take() (*child, error) {
	r.mu.Lock()
	c := r.spare
	r.spare = nil
	r.mu.Unlock()
	if c == nil {
		return r.start()
	}
	return c, nil
}

// refill starts a child to wait for the next request, unless one waits already or r is closed.
func (r *Renderer) refill() {
	r.mu.Lock()
	skip := r.closed || r.spare != nil
	r.mu.Unlock()
	if skip {
		return
	}
	c, err := r.start()
	if err != nil {
		return // the next render starts its own, and says why if it cannot
	}
	r.mu.Lock()
	keep := !r.closed && r.spare == nil
	if keep {
		r.spare = c
	}
	r.mu.Unlock()
	if !keep {
		c.stop()
	}
}

// Render renders req in a child process. A render that overruns its time, memory or output budget is
// killed and is a *BudgetError (an EINVALID error naming the budget); the chart's own error comes back in
// Result.ChartError. Render returns only once the child is gone: when ctx ends first, the child is
// killed and Render returns ctx's error.
func (r *Renderer) Render(ctx context.Context, req Request) (*Result, error) {
	in, err := encodeRequest(childRequest{Request: req, Timeout: r.cfg.Timeout, MaxBytes: r.cfg.MaxBytes})
	if err != nil {
		return nil, fmt.Errorf("render: encode the request: %w", err)
	}
	c, err := r.take()
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	go func() {
		<-rctx.Done()
		c.cmd.Process.Kill() // a no-op once the child has exited and been waited for
	}()
	go func() {
		c.stdin.Write(in) // fails only once the child is gone, which Wait tells
		c.stdin.Close()
	}()
	start := time.Now()
	runErr := c.cmd.Wait()
	out, errOut := c.out, c.errOut
	// The next child starts once this one is done, not beside it: its start takes a core for a while.
	go r.refill()

	switch {
	case out.over:
		return nil, r.overrun("output")
	case ctx.Err() != nil:
		return nil, fmt.Errorf("render stopped: %w", ctx.Err())
	case errors.Is(rctx.Err(), context.DeadlineExceeded):
		return nil, r.overrun("time")
	case runErr != nil:
		if outOfMemory(errOut.String()) {
			return nil, r.overrun("memory")
		}
		if strings.Contains(errOut.String(), errTimeUp) || strings.Contains(runErr.Error(), "signal: killed") {
			// The child's own watchdog, or the CPU time limit: either way, the time budget.
			return nil, r.overrun("time")
		}
		return nil, fmt.Errorf("render: the render process failed after %s: %w: %s", time.Since(start).Round(time.Millisecond), runErr, strings.TrimSpace(errOut.String()))
	}
	var res Result
	if err := gob.NewDecoder(bytes.NewReader(out.buf.Bytes())).Decode(&res); err != nil {
		return nil, fmt.Errorf("render: read the render process's answer: %w", err)
	}
	if res.ChartError == outputOverrun {
		return nil, r.overrun("output")
	}
	return &res, nil
}

// BudgetError is a render that overran its budget: Budget is "time", "memory" or "output", and
// Limit says what the budget is and which setting sets it. It is an EINVALID *marketplace.Error.
type BudgetError struct {
	Budget, Limit string
	err           *marketplace.Error
}

func (e *BudgetError) Error() string { return e.err.Error() }
func (e *BudgetError) Unwrap() error { return e.err }

func (r *Renderer) overrun(budget string) *BudgetError {
	var limit string
	switch budget {
	case "time":
		limit = fmt.Sprintf("%s (RENDER_TIMEOUT)", r.cfg.Timeout)
	case "memory":
		limit = fmt.Sprintf("a render may take %d MiB of memory (set by RENDER_MAX_BYTES)", RenderMemory(r.cfg.MaxBytes)>>20)
	default:
		limit = fmt.Sprintf("it rendered more than %d bytes (RENDER_MAX_BYTES)", r.cfg.MaxBytes)
	}
	return &BudgetError{Budget: budget, Limit: limit, err: marketplace.Errorf(marketplace.EINVALID,
		"the chart did not render within its %s budget: %s", budget, limit)}
}

// resultSlack is what the child's answer may hold beyond the rendered bytes: gob's framing, CRD files.
const resultSlack = 1 << 20

// outputOverrun is the ChartError of a child that stopped because its output passed MaxBytes.
const outputOverrun = "render: output budget exceeded"

// errTimeUp is what a child's watchdog writes before it exits.
const errTimeUp = "render: time budget exceeded"

// outOfMemory says whether a child's standard error is the Go runtime's (or the kernel's) refusal of
// memory under the child's address space limit.
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to create new OS thread", "runtime: cannot map pages"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// capped is a writer that keeps at most max bytes; past that it calls overrun (which kills the child)
// and refuses the rest.
type capped struct {
	max     int64
	buf     bytes.Buffer
	over    bool
	overrun func()
}

func (c *capped) Write(p []byte) (int, error) {
	if int64(c.buf.Len()+len(p)) > c.max {
		if c.overrun == nil { // standard error: keep its beginning, drop the rest
			c.buf.Write(p[:max(0, c.max-int64(c.buf.Len()))])
			return len(p), nil
		}
		c.over = true
		c.overrun()
		return 0, errors.New("render: the answer is larger than the output budget")
	}
	return c.buf.Write(p)
}

func (c *capped) String() string { return c.buf.String() }

// encodeRequest writes r as JSON, keeping the values' number types: an integer stays an integer and a
// float a float across the process boundary (text/template prints 1000000 and 1e+06 differently).
func encodeRequest(r childRequest) ([]byte, error) {
	r.Values = typedNumbers(r.Values).(map[string]any)
	return json.Marshal(r)
}

// decodeRequest reads what encodeRequest wrote.
func decodeRequest(in io.Reader) (childRequest, error) {
	var r childRequest
	dec := json.NewDecoder(in)
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return r, err
	}
	if r.Values == nil {
		r.Values = map[string]any{}
	}
	r.Values = fromNumbers(r.Values).(map[string]any)
	return r, nil
}

// float is a float64 that JSON always writes with a fraction or an exponent.
type float float64

func (f float) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(float64(f))
	if err == nil && !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, err
}

func typedNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = typedNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = typedNumbers(e)
		}
		return out
	case float64:
		return float(v)
	case float32:
		return float(v)
	}
	return v
}

func fromNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = fromNumbers(e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = fromNumbers(e)
		}
		return v
	case json.Number:
		if !strings.ContainsAny(v.String(), ".eE") {
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
		f, _ := v.Float64()
		return f
	}
	return v
}
