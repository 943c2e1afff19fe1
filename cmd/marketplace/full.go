//go:build !apionly

// What only the full build links: the providers that act on a cluster and a VM host (Helm, client-go,
// go-libvirt) and the chart repository (Helm). The `api` role needs none of them (it asks a worker), so
// `-tags apionly` builds it without them (apionly.go): about 20 MB less memory per API replica.

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/kubernetes"
	"github.com/marketplace/marketplace/internal/libvirt"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/render"
)

// apiOnly says whether this build runs only the api and migrate roles.
const apiOnly = false

// renderChild runs the render child (`marketplace render-chart`, package render) when args name it.
func renderChild(args []string) (int, bool) {
	if len(args) < 2 || args[1] != render.Subcommand {
		return 0, false
	}
	return render.Child(os.Stdin, os.Stdout, os.Stderr), true
}

// localProviders are the providers of the types this process installs itself (serve, worker): each
// type's both sides, by type.
type localProviders struct {
	installers map[string]marketplace.Installer
	inspectors map[string]marketplace.Inspector
	vmHost     func(context.Context) (marketplace.VMHost, error) // the VM host's capacity; nil without one
	close      func()
	// collectImages deletes the downloaded VM images whose URLs are not among those given; nil without
	// a VM host.
	collectImages func(context.Context, []string) (int, error)
	// metrics are the providers' own, registered with the process's.
	metrics []prometheus.Collector
}

// newLocalProviders configures the Kubernetes provider when KUBECONFIG is set and the libvirt one when
// there is a VM host.
func newLocalProviders(ctx context.Context, cfg Config, instance string, guard *fetch.Guard, log *slog.Logger) (*localProviders, error) {
	local := &localProviders{installers: map[string]marketplace.Installer{}, inspectors: map[string]marketplace.Inspector{}, close: func() {}}
	if cfg.Kubeconfig != "" {
		k8s, err := newKubernetesProvider(cfg, instance, guard, log)
		if err != nil {
			return nil, err
		}
		local.installers[marketplace.TypeK8s], local.inspectors[marketplace.TypeK8s] = k8s, k8s
		local.close = k8s.Close
		local.metrics = append(local.metrics, k8s.Metrics())
	} else {
		log.Warn("KUBECONFIG is not set: k8s applications cannot be installed (make run starts a local cluster)")
	}
	vm, err := newVMProvider(ctx, cfg, instance, guard, log)
	if err != nil {
		return nil, err
	}
	if vm != nil {
		local.installers[marketplace.TypeVM], local.inspectors[marketplace.TypeVM], local.vmHost = vm, vm, vm.Host
		closeK8s := local.close
		local.close = func() { closeK8s(); vm.Close() }
		local.collectImages = vm.CollectImages
	}
	return local, nil
}

// newKubernetesProvider configures the Helm provider from cfg, labelling what it creates with the
// database's instance id.
func newKubernetesProvider(cfg Config, instance string, guard *fetch.Guard, log *slog.Logger) (*kubernetes.Provider, error) {
	var err error
	kcfg := kubernetes.Config{Kubeconfig: cfg.Kubeconfig, CacheDir: filepath.Join(cfg.CacheDir, "kube"),
		NamespacePrefix: cfg.NamespacePrefix, Instance: instance, OCIPlainHTTP: cfg.OCIPlainHTTP,
		IngressDomain: cfg.IngressDomain, IngressAnnotations: cfg.IngressAnnots, MaxGracePeriod: cfg.MaxGracePeriod,
		Render: render.Config{Timeout: cfg.RenderTimeout, MaxBytes: cfg.RenderMaxBytes, Nice: cfg.RenderNice},
		Fetch:  guard, Logger: log.With("provider", "kubernetes")}
	if cfg.RenderTimeout <= 0 || cfg.RenderMaxBytes <= 0 {
		return nil, fmt.Errorf("configuration: RENDER_TIMEOUT and RENDER_MAX_BYTES must be positive")
	}
	if cfg.RenderNice < 0 || cfg.RenderNice > 19 {
		return nil, fmt.Errorf("configuration: RENDER_NICE is 0 to 19, not %d", cfg.RenderNice)
	}
	for _, r := range []struct {
		env  string
		from string
		into *corev1.ResourceList
	}{{"K8S_QUOTA", cfg.Quota, &kcfg.Quota}, {"K8S_DEFAULT_REQUESTS", cfg.DefaultRequests, &kcfg.DefaultRequests},
		{"K8S_DEFAULT_LIMITS", cfg.DefaultLimits, &kcfg.DefaultLimits}} {
		if *r.into, err = kubernetes.ParseResources(r.from); err != nil {
			return nil, fmt.Errorf("configuration: %s: %w", r.env, err)
		}
	}
	return kubernetes.New(kcfg)
}

// newVMProvider connects the libvirt provider to the VM host (vmHostURI). It returns nil when there is
// none: vm installs are then refused at request time.
func newVMProvider(ctx context.Context, cfg Config, instance string, guard *fetch.Guard, log *slog.Logger) (*libvirt.Provider, error) {
	uri := vmHostURI(cfg, log)
	if uri == "" {
		return nil, nil
	}
	maxDisk, err := vmMaxDisk(cfg)
	if err != nil {
		return nil, err
	}
	return libvirt.New(ctx, libvirt.Config{URI: uri, Instance: instance,
		ImageDir: filepath.Join(cfg.VMDir, "images"), PoolDir: filepath.Join(cfg.VMDir, "pool"),
		DownloadDir: filepath.Join(cfg.VMDir, "downloads"), LogDir: filepath.Join(cfg.VMDir, "logs"),
		Network: cfg.VMNetwork, Networks: cfg.VMProjectNetworks, NetworkBits: cfg.VMProjectBits, Deny: cfg.VMDenyNetworks,
		BootTimeout: cfg.VMBootTimeout, ImageMaxBytes: cfg.VMImageMaxBytes, MaxDisk: maxDisk,
		ImageQuotaBytes: cfg.VMImageQuotaBytes, ImageMinRate: cfg.VMImageMinRate, ImageRateWindow: cfg.VMImageRateWindow,
		CPUOvercommit: cfg.VMCPUOvercommit, MemoryOvercommit: cfg.VMMemOvercommit,
		CacheDir: filepath.Join(cfg.CacheDir, "vm"), Fetch: guard, Logger: log.With("provider", "libvirt")})
}

// serveChartRepo is the chartrepo role.
func serveChartRepo(ctx context.Context, cfg Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.ChartRepoAddr)
	if err != nil {
		return fmt.Errorf("chart repository: %w", err)
	}
	log.Info("serving chart repository", "url", "http://"+ln.Addr().String(), "charts", cfg.ChartsDir)
	return chartrepo.Serve(ctx, cfg.ChartsDir, filepath.Join(cfg.CacheDir, "chartrepo"), ln)
}
