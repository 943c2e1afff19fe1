package render

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RenderingName is the process name (comm, in /proc/<pid>/stat) of a child once it has its request.
const RenderingName = "mp-rendering"

// Child is the render process (`marketplace render-chart`): it reads a request on stdin, caps its own
// address space and CPU time, renders, and writes the Result on stdout. Whatever a template does, the
// child ends: the kernel refuses it memory past its address space (the Go runtime then dies), kills it
// past its CPU time, and a watchdog exits it once the render has had its time, so a child whose
// parent died does not spin on. It returns the process's exit code.
func Child(stdin io.Reader, stdout, stderr io.Writer) int {
	req, err := decodeRequest(stdin)
	if err != nil {
		fmt.Fprintln(stderr, "render: read the request:", err)
		return 2
	}
	// Named for what it does now: a child waiting for its request is not rendering anything.
	os.WriteFile("/proc/self/comm", []byte(RenderingName), 0)
	if err := limitSelf(req.Timeout, req.MaxBytes); err != nil {
		fmt.Fprintln(stderr, "render:", err)
		return 2
	}
	time.AfterFunc(req.Timeout+time.Second, func() {
		fmt.Fprintln(stderr, errTimeUp)
		os.Exit(3)
	})
	res := renderChart(req)
	if err := gob.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintln(stderr, "render: write the result:", err)
		return 2
	}
	return 0
}

// limitSelf caps this process: its address space at what it has mapped now and RenderMemory(maxBytes)
// more, its CPU time at twice the render's time (the garbage collector runs beside the render) and a
// little more, and the Go runtime's memory goal below the cap so that it collects before it is
// refused memory.
func limitSelf(timeout time.Duration, maxBytes int64) error {
	mapped, err := addressSpace()
	if err != nil {
		return err
	}
	budget := RenderMemory(maxBytes)
	as := mapped + budget
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: as, Max: as}); err != nil {
		return fmt.Errorf("cap the address space: %w", err)
	}
	cpu := uint64(2*timeout/time.Second) + 2
	if err := syscall.Setrlimit(syscall.RLIMIT_CPU, &syscall.Rlimit{Cur: cpu, Max: cpu}); err != nil {
		return fmt.Errorf("cap the CPU time: %w", err)
	}
	debug.SetMemoryLimit(int64(budget * 3 / 4))
	return nil
}

// addressSpace is the size of this process's address space, from /proc/self/statm (in pages).
func addressSpace() (uint64, error) {
	statm, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, fmt.Errorf("read the address space's size: %w", err)
	}
	fields := strings.Fields(string(statm))
	if len(fields) == 0 {
		return 0, fmt.Errorf("read the address space's size: /proc/self/statm is empty")
	}
	pages, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read the address space's size: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}

// renderChart does what Helm's install and upgrade do before they render, then renders: the chart's
// dependencies enabled or not by the values, the values coalesced and checked against the schemas,
// the templates executed.
func renderChart(req childRequest) *Result {
	ch, err := loader.LoadArchive(bytes.NewReader(req.Archive))
	if err != nil {
		return &Result{ChartError: fmt.Sprintf("load the chart: %v", err)}
	}
	vals := req.Values
	if err := chartutil.ProcessDependencies(ch, vals); err != nil {
		return &Result{ChartError: fmt.Sprintf("chart dependencies processing failed: %v", err)}
	}
	caps := common.DefaultCapabilities.Copy()
	if c := req.Capabilities; c != nil {
		caps.KubeVersion = common.KubeVersion{Version: c.KubeVersion, Major: c.Major, Minor: c.Minor}
		caps.APIVersions = common.VersionSet(c.APIVersions)
	}
	options := common.ReleaseOptions{Name: req.Release.Name, Namespace: req.Release.Namespace, Revision: req.Release.Revision,
		IsInstall: req.Release.IsInstall, IsUpgrade: req.Release.IsUpgrade}
	top, err := util.ToRenderValuesWithSchemaValidation(ch, vals, options, caps, false)
	if err != nil {
		return &Result{ChartError: err.Error()}
	}
	var e engine.Engine
	if req.Cluster != nil {
		cfg, err := clusterConfig(req.Cluster)
		if err != nil {
			return &Result{ChartError: fmt.Sprintf("lookup's cluster: %v", err)}
		}
		e = engine.New(cfg)
	}
	files, err := e.RenderWithContext(context.Background(), ch, top)
	if err != nil {
		return &Result{ChartError: err.Error()}
	}
	res := &Result{Files: files}
	size := int64(0)
	for name, text := range files {
		size += int64(len(name) + len(text))
	}
	prefix := ch.ChartFullPath() + "/"
	for _, crd := range ch.CRDObjects() {
		res.CRDs = append(res.CRDs, File{Name: strings.TrimPrefix(crd.Filename, prefix), Data: crd.File.Data})
		size += int64(len(crd.File.Data))
	}
	if size > req.MaxBytes {
		return &Result{ChartError: outputOverrun}
	}
	return res
}

// clusterConfig is the client configuration `lookup` uses: the kubeconfig's, impersonating the
// deployment's identity, as the attempt's own Helm does.
func clusterConfig(c *Cluster) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 20, 40
	cfg.Timeout = 10 * time.Second
	cfg.Impersonate = rest.ImpersonationConfig{UserName: c.User}
	return cfg, nil
}
