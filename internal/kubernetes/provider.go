// Package kubernetes is the Provider for k8s applications: the Helm v4 SDK in process, one namespace
// and one release per deployment, charts from HTTP(S) chart repositories or OCI registries.
//
// A chart is a publisher's code running against the cluster, so Helm does not act with the
// marketplace's own credentials: each deployment gets a namespace of its own and a deployer identity
// bound there alone, and Helm impersonates it (see boundary.go). Each attempt's clients pass through a
// fence (fence.go), so an attempt that loses its lease is really over before another can begin.
package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/kubereq"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/render"
)

// Config says which cluster to use and how deployments are fenced in it.
type Config struct {
	// Kubeconfig is the path of the kubeconfig file.
	Kubeconfig string
	// CacheDir holds the empty registry credentials file Helm is given (discovery is kept in memory).
	CacheDir string
	// NamespacePrefix starts every namespace the provider creates (<prefix>-deployment-<id>, and
	// <prefix>-system), so several marketplaces can share one cluster.
	NamespacePrefix string
	// Instance is this marketplace's identity (from its database): what the provider creates carries it,
	// and nothing without it is ever adopted or deleted.
	Instance string
	// Quota is the ResourceQuota of every deployment's namespace.
	Quota corev1.ResourceList
	// DefaultRequests and DefaultLimits are the LimitRange defaults of a container that sets none.
	DefaultRequests, DefaultLimits corev1.ResourceList
	// IngressDomain is the domain under which each deployment may claim Ingress hosts: a deployment's
	// Ingress may name <its namespace>.<IngressDomain> and names below it, nothing else. Empty: charts
	// may create no Ingress at all.
	IngressDomain string
	// IngressAnnotations are the annotations a chart may set on an Ingress (Helm's own are always
	// allowed): an ingress controller reads many annotations as its own configuration.
	IngressAnnotations []string
	// MaxGracePeriod bounds a pod's terminationGracePeriodSeconds: a deleted deployment's pods stop
	// within it (a chart's year-long grace period would keep them running, unbilled, on a real kubelet).
	MaxGracePeriod int64
	// OCIPlainHTTP talks plain HTTP to OCI registries (Helm's --plain-http), for registries on loopback.
	OCIPlainHTTP bool
	Fetch        *fetch.Guard // every chart index, archive and registry is fetched through it
	// Render is the budget of every render of a publisher's chart, done in a child process (package
	// render); its zero values take render's defaults.
	Render render.Config
	Logger *slog.Logger
}

// Provider installs Helm charts. It is the k8s type's marketplace.Installer and marketplace.Inspector.
type Provider struct {
	cfg      Config
	charts   *chartSource
	renderer *render.Renderer // every render of a publisher's templates runs in its child

	admin kubernetes.Interface // the marketplace's own identity: namespaces, their fences, cluster set-up
	// restConfig is the admin's configuration, which each attempt's clients copy (clients.go); discovery
	// and mapper are shared by every attempt.
	restConfig *rest.Config
	discovery  discovery.CachedDiscoveryInterface
	mapper     meta.RESTMapper

	setup        chan struct{} // a one-slot lock, held while the cluster is set up
	clusterReady bool          // under setup: the system namespace, deployer role and admission policy are in place

	capsLock chan struct{}        // a one-slot lock, held while the cluster's capabilities are read (render.go)
	caps     *render.Capabilities // under capsLock: the cluster's capabilities, read at capsAt
	capsAt   time.Time

	// requests counts every request of the provider to the API server, its own and its attempts' Helm's,
	// by verb and resource: what an install costs the control plane (Metrics).
	requests *prometheus.CounterVec
}

// New returns a Provider for the cluster of cfg.Kubeconfig.
func New(cfg Config) (*Provider, error) {
	if cfg.Instance == "" {
		return nil, errors.New("kubernetes provider: the marketplace instance id is required")
	}
	if cfg.MaxGracePeriod <= 0 {
		cfg.MaxGracePeriod = 120
	}
	charts, err := newChartSource(cfg)
	if err != nil {
		return nil, err
	}
	renderer, err := render.New(cfg.Render)
	if err != nil {
		return nil, err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	restCfg.QPS, restCfg.Burst = adminQPS, adminBurst
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "marketplace_kubernetes_requests_total",
		Help: "Requests the Kubernetes provider made to the API server (its own and its attempts' Helm's), by verb and resource as the API server names them.",
	}, []string{"verb", "resource"})
	// Every client of the provider is a copy of this configuration (clientsFor), so each request counts.
	restCfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return kubereq.Transport(next, func(name string) {
			verb, resource, _ := strings.Cut(name, " ")
			requests.WithLabelValues(verb, resource).Inc()
		})
	})
	admin, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	disc, mapper := sharedDiscovery(admin.Discovery())
	return &Provider{cfg: cfg, charts: charts, renderer: renderer, admin: admin, restConfig: restCfg, discovery: disc, mapper: mapper,
		setup: make(chan struct{}, 1), capsLock: make(chan struct{}, 1), requests: requests}, nil
}

// Metrics is the provider's count of its requests to the API server, to register with the process's
// metrics.
func (p *Provider) Metrics() prometheus.Collector { return p.requests }

// Close stops the render process started ahead of the next render.
func (p *Provider) Close() { p.renderer.Close() }

// ParseResources reads a list of resource quantities such as "pods=20,requests.cpu=2,limits.memory=4Gi".
func ParseResources(s string) (corev1.ResourceList, error) {
	list := corev1.ResourceList{}
	for _, kv := range splitList(s) {
		name, value, ok := cutEqual(kv)
		if !ok {
			return nil, fmt.Errorf("%q is not name=quantity", kv)
		}
		q, err := resource.ParseQuantity(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a quantity", name, value)
		}
		list[corev1.ResourceName(name)] = q
	}
	return list, nil
}

// Namespace is the namespace of a deployment.
func (p *Provider) Namespace(deploymentID int64) string {
	return p.cfg.NamespacePrefix + "-deployment-" + strconv.FormatInt(deploymentID, 10)
}

// legacyNamespace is where deployments lived when a project shared one namespace; only uninstalls
// still go there.
func (p *Provider) legacyNamespace(projectID int64) string {
	return p.cfg.NamespacePrefix + "-project-" + strconv.FormatInt(projectID, 10)
}

// ReleaseName is the Helm release of a deployment.
func ReleaseName(deploymentID int64) string {
	return "deployment-" + strconv.FormatInt(deploymentID, 10)
}

// actionConfig returns a Helm configuration for namespace ns that impersonates user, and the fence all
// its requests pass through, shut once ctx ends. The caller closes the fence when its attempt is over.
func (p *Provider) actionConfig(ctx context.Context, ns, user string) (*action.Configuration, *fence, error) {
	f := newFence(ctx)
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(p.cfg.Logger.Handler()))
	if err := cfg.Init(p.clientsFor(ns, user, f), ns, "secret"); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("helm configuration for namespace %s: %w", ns, err)
	}
	return cfg, f, nil
}

// Install installs the application's chart as the deployment's release in a namespace of its own and
// waits until its resources are ready. Install is idempotent: a deployed release is returned as is, and a
// release left half-done by a crashed attempt is removed and installed again, so a retry converges on
// exactly one release. It returns only once every request it made to the cluster has ended.
func (p *Provider) Install(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (marketplace.Placement, error) {
	placement := marketplace.Placement{Namespace: p.Namespace(d.ID), ReleaseName: ReleaseName(d.ID)}
	values, err := app.Values(d.Inputs)
	if err != nil {
		return placement, err
	}
	if err := p.ensureCluster(ctx); err != nil {
		return placement, err
	}
	created, err := p.ensureDeploymentNamespace(ctx, deploymentRef{id: d.ID, projectID: d.ProjectID})
	if err != nil {
		return placement, err
	}
	cfg, f, err := p.actionConfig(ctx, placement.Namespace, p.deployerUser(d.ID))
	if err != nil {
		return placement, err
	}
	defer f.Close()

	// A namespace this attempt created holds no release: only a retry looks for one.
	var last release.Releaser
	err = driver.ErrReleaseNotFound
	if !created {
		last, err = cfg.Releases.Last(placement.ReleaseName)
	}
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
	case err != nil:
		return placement, fmt.Errorf("look up release %s: %w", placement.ReleaseName, err)
	default:
		rel, err := release.NewAccessor(last)
		if err != nil {
			return placement, err
		}
		if rel.Status() == "deployed" {
			placement.ChartVersion = chartVersion(rel.Chart())
			return placement, nil
		}
		// pending-install or failed: an earlier attempt died; start over from nothing.
		if err := p.uninstallRelease(ctx, cfg, placement.ReleaseName); err != nil {
			return placement, fmt.Errorf("remove release %s left %s by an earlier attempt: %w", placement.ReleaseName, rel.Status(), err)
		}
	}

	ch, archive, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return placement, err
	}
	if err := checkDigest(app, archive); err != nil {
		return placement, err
	}
	pre, caps, err := p.prerender(ctx, ch, archive, values, render.Release{Name: placement.ReleaseName, Namespace: placement.Namespace,
		Revision: 1, IsInstall: true}, p.deployerUser(d.ID))
	if err != nil {
		return placement, err
	}
	cfg.Capabilities = caps // those the chart was rendered with: Helm does not discover them again
	inst := action.NewInstall(cfg)
	inst.ReleaseName = placement.ReleaseName
	inst.Namespace = placement.Namespace
	inst.WaitStrategy = kube.StatusWatcherStrategy
	inst.Timeout = timeLeft(ctx)
	if _, err := inst.RunWithContext(ctx, pre, values); err != nil {
		return placement, fmt.Errorf("helm install %s (chart %s %s) into namespace %s: %w",
			placement.ReleaseName, ch.Metadata.Name, ch.Metadata.Version, placement.Namespace, err)
	}
	placement.ChartVersion = ch.Metadata.Version
	return placement, nil
}

// Uninstall removes the deployment's release (its hooks run, and Helm waits until its resources are
// gone), then deletes its namespace with whatever is left in it, whatever the chart annotated
// (helm.sh/resource-policy: keep included), and the deployer identity. Once the namespace is terminating
// nothing can be created in it and Kubernetes deletes the rest, so Uninstall does not wait for that. A
// deployment without a namespace counts as removed, and a namespace this marketplace did not make for the
// deployment is never touched.
func (p *Provider) Uninstall(ctx context.Context, d *marketplace.Deployment) error {
	ns := d.Placement.Namespace
	if ns == "" {
		ns = p.Namespace(d.ID)
	}
	n, err := p.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if ns == p.Namespace(d.ID) {
			return p.removeDeploymentNamespace(ctx, ns, d.ID) // the identity may outlive a namespace deleted by hand
		}
		return nil
	} else if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if ns == p.legacyNamespace(d.ProjectID) && n.Labels[labelManagedBy] == "marketplace" {
		return p.uninstallLegacy(ctx, ns, d.ID)
	}
	if !p.ownsNamespace(n, d.ID) {
		p.cfg.Logger.Warn("not touching a namespace this marketplace did not make for the deployment", "namespace", ns, "deployment", d.ID)
		return nil
	}
	if n.DeletionTimestamp == nil {
		cfg, f, err := p.actionConfig(ctx, ns, p.deployerUser(d.ID))
		if err != nil {
			return err
		}
		err = p.uninstallRelease(ctx, cfg, ReleaseName(d.ID))
		f.Close()
		if ctx.Err() != nil {
			return err // the attempt is over (its lease, or its worker); the next one starts again
		} else if err != nil {
			// A release Helm cannot remove (a chart's broken delete hook, a record it cannot read) goes
			// with its namespace all the same.
			p.cfg.Logger.Warn("helm could not uninstall the release; deleting its namespace", "namespace", ns, "err", err)
		}
	}
	return p.removeDeploymentNamespace(ctx, ns, d.ID)
}

// uninstallLegacy removes a release from a project namespace of the one-namespace-per-project layout,
// as its in-namespace deployer account, and leaves the namespace to the project's removal.
func (p *Provider) uninstallLegacy(ctx context.Context, ns string, id int64) error {
	cfg, f, err := p.actionConfig(ctx, ns, "system:serviceaccount:"+ns+":marketplace-deployer")
	if err != nil {
		return err
	}
	defer f.Close()
	return p.uninstallRelease(ctx, cfg, ReleaseName(id))
}

// RemoveProject deletes what is left of a deleted project: the namespaces of its deployments (there are
// none once each deployment is uninstalled) and its namespace from the per-project layout. Kubernetes
// finishes the deletion in the background. A namespace the marketplace did not create is left alone.
func (p *Provider) RemoveProject(ctx context.Context, projectID int64) error {
	list, err := p.admin.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: labelInstance + "=" + p.cfg.Instance + "," + labelProject + "=" + strconv.FormatInt(projectID, 10)})
	if err != nil {
		return fmt.Errorf("list the namespaces of project %d: %w", projectID, err)
	}
	names := []string{}
	for _, n := range list.Items {
		names = append(names, n.Name)
	}
	legacy, err := p.admin.CoreV1().Namespaces().Get(ctx, p.legacyNamespace(projectID), metav1.GetOptions{})
	if err == nil && legacy.Labels[labelManagedBy] == "marketplace" && legacy.Labels[labelInstance] == "" {
		names = append(names, legacy.Name)
	} else if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("get namespace %s: %w", p.legacyNamespace(projectID), err)
	}
	for _, ns := range names {
		err := p.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete namespace %s: %w", ns, err)
		}
	}
	return nil
}

// uninstallRelease removes release name. Helm's Uninstall.Run takes no context, so it runs aside and
// ctx bounds how long we listen; its clients are fenced, so once the caller closes the fence nothing of
// a run that outlived ctx reaches the cluster.
func (p *Provider) uninstallRelease(ctx context.Context, cfg *action.Configuration, name string) error {
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.WaitStrategy = kube.StatusWatcherStrategy
	un.Timeout = timeLeft(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := un.Run(name)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("helm uninstall %s: %w", name, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("helm uninstall %s: %w", name, ctx.Err())
	}
}

// chartVersion returns the version of a chart of any API version Helm loads.
func chartVersion(c any) string {
	if ch, ok := c.(*chart.Chart); ok && ch.Metadata != nil {
		return ch.Metadata.Version
	}
	return ""
}

// timeLeft is what remains of ctx's deadline, for Helm's own timeouts.
func timeLeft(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return time.Until(dl)
	}
	return 5 * time.Minute
}

// splitList splits a comma-separated list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func cutEqual(kv string) (string, string, bool) {
	k, v, ok := strings.Cut(kv, "=")
	return strings.TrimSpace(k), strings.TrimSpace(v), ok && strings.TrimSpace(k) != ""
}
