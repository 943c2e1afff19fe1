// Package kubernetes is the Provider for k8s applications: the Helm v4 SDK in process, one namespace per
// project and one release per deployment, charts from HTTP(S) chart repositories or OCI registries.
//
// A chart is a publisher's code running against the cluster, so Helm does not act with the
// marketplace's own credentials: the provider creates each project's namespace with a service account
// bound to the namespaced "admin" role, and Helm impersonates that account. A chart can then create
// nothing cluster-scoped and touch nothing in another tenant's namespace.
package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/kube"
	"helm.sh/helm/v4/pkg/release"
	"helm.sh/helm/v4/pkg/storage/driver"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// Config says which cluster to use.
type Config struct {
	// Kubeconfig is the path of the kubeconfig file.
	Kubeconfig string
	// CacheDir holds client-go's discovery cache (instead of ~/.kube/cache).
	CacheDir string
	// NamespacePrefix starts every namespace the provider creates (<prefix>-project-<id>), so several
	// marketplaces can share one cluster.
	NamespacePrefix string
	// OCIPlainHTTP talks plain HTTP to OCI registries (Helm's --plain-http), for registries on loopback.
	OCIPlainHTTP bool
	Fetch        *fetch.Guard // every chart index, archive and registry is fetched through it
	Logger       *slog.Logger
}

// Provider installs Helm charts. It implements marketplace.Provider.
type Provider struct {
	cfg    Config
	charts *chartSource

	admin kubernetes.Interface // the marketplace's own identity: namespaces and their RBAC only

	mu      sync.Mutex
	clients map[string]*genericclioptions.ConfigFlags // per namespace, impersonating its deployer; each caches its discovery
	ready   map[string]bool                           // namespaces whose deployer account exists

	uninstalling map[string]chan struct{} // "namespace/release" -> closed when its Helm uninstall returns
}

// deployer is the service account Helm impersonates in each project namespace.
const deployer = "marketplace-deployer"

// New returns a Provider for the cluster of cfg.Kubeconfig.
func New(cfg Config) (*Provider, error) {
	charts, err := newChartSource(cfg)
	if err != nil {
		return nil, err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	admin, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Provider{
		cfg:          cfg,
		charts:       charts,
		admin:        admin,
		clients:      map[string]*genericclioptions.ConfigFlags{},
		ready:        map[string]bool{},
		uninstalling: map[string]chan struct{}{},
	}, nil
}

// ensureNamespace creates a project's namespace, its deployer service account and the binding of that
// account to the namespaced "admin" cluster role, each unless it exists.
func (p *Provider) ensureNamespace(ctx context.Context, ns string) error {
	p.mu.Lock()
	done := p.ready[ns]
	p.mu.Unlock()
	if done {
		return nil
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "marketplace"}
	create := func(what string, err error) error {
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s in namespace %s: %w", what, ns, err)
		}
		return nil
	}
	// Pod Security "baseline": no privileged pods, host namespaces or hostPath volumes, which would let a
	// chart out of its namespace through the node. Patched too, for namespaces made before this rule.
	nsLabels := map[string]string{"app.kubernetes.io/managed-by": "marketplace",
		"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "baseline"}
	_, err := p.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": nsLabels}})
		_, err = p.admin.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{})
	}
	if err := create("namespace", err); err != nil {
		return err
	}
	_, err = p.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: deployer, Labels: labels}}, metav1.CreateOptions{})
	if err := create("service account", err); err != nil {
		return err
	}
	_, err = p.admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: deployer, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: deployer, Namespace: ns}},
	}, metav1.CreateOptions{})
	if err := create("role binding", err); err != nil {
		return err
	}
	p.mu.Lock()
	p.ready[ns] = true
	p.mu.Unlock()
	return nil
}

// Namespace is the namespace of a project.
func (p *Provider) Namespace(projectID int64) string {
	return fmt.Sprintf("%s-project-%d", p.cfg.NamespacePrefix, projectID)
}

// ReleaseName is the Helm release of a deployment.
func ReleaseName(deploymentID int64) string { return fmt.Sprintf("deployment-%d", deploymentID) }

// actionConfig returns a Helm action configuration for namespace ns.
func (p *Provider) actionConfig(ns string) (*action.Configuration, error) {
	p.mu.Lock()
	flags := p.clients[ns]
	if flags == nil {
		impersonate := "system:serviceaccount:" + ns + ":" + deployer
		flags = genericclioptions.NewConfigFlags(true)
		flags.KubeConfig = &p.cfg.Kubeconfig
		flags.Namespace = &ns
		flags.CacheDir = &p.cfg.CacheDir
		flags.Impersonate = &impersonate
		p.clients[ns] = flags
	}
	p.mu.Unlock()
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(p.cfg.Logger.Handler()))
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		return nil, fmt.Errorf("helm configuration for namespace %s: %w", ns, err)
	}
	return cfg, nil
}

// Install installs the application's chart as the deployment's release in its project's namespace and
// waits until its resources are ready. Install is idempotent: a deployed release is returned as is, and a
// release left half-done by a crashed attempt is removed and installed again, so a retry converges on
// exactly one release.
func (p *Provider) Install(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (marketplace.Placement, error) {
	placement := marketplace.Placement{
		Namespace:   p.Namespace(d.ProjectID),
		ReleaseName: ReleaseName(d.ID),
	}
	values, err := app.Values(d.Inputs)
	if err != nil {
		return placement, err
	}
	if err := p.ensureNamespace(ctx, placement.Namespace); err != nil {
		return placement, err
	}
	cfg, err := p.actionConfig(placement.Namespace)
	if err != nil {
		return placement, err
	}

	last, err := cfg.Releases.Last(placement.ReleaseName)
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
		if err := p.uninstall(ctx, cfg, placement.Namespace, placement.ReleaseName); err != nil {
			return placement, fmt.Errorf("remove release %s left %s by an earlier attempt: %w", placement.ReleaseName, rel.Status(), err)
		}
	}

	ch, err := p.charts.load(ctx, app.Deployment)
	if err != nil {
		return placement, err
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName = placement.ReleaseName
	inst.Namespace = placement.Namespace
	inst.WaitStrategy = kube.StatusWatcherStrategy
	inst.Timeout = timeLeft(ctx)
	if _, err := inst.RunWithContext(ctx, ch, values); err != nil {
		return placement, fmt.Errorf("helm install %s (chart %s %s) into namespace %s: %w",
			placement.ReleaseName, ch.Metadata.Name, ch.Metadata.Version, placement.Namespace, err)
	}
	placement.ChartVersion = ch.Metadata.Version
	return placement, nil
}

// Uninstall removes the deployment's release and waits until its resources are gone. A release that
// does not exist counts as removed.
func (p *Provider) Uninstall(ctx context.Context, d *marketplace.Deployment) error {
	ns := d.Placement.Namespace
	if ns == "" {
		ns = p.Namespace(d.ProjectID)
	}
	if _, err := p.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil // no namespace, no release
	} else if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if err := p.ensureNamespace(ctx, ns); err != nil {
		return err
	}
	cfg, err := p.actionConfig(ns)
	if err != nil {
		return err
	}
	return p.uninstall(ctx, cfg, ns, ReleaseName(d.ID))
}

// RemoveProject deletes a deleted project's namespace (Kubernetes finishes the deletion in the
// background). A namespace the marketplace did not create is left alone.
func (p *Provider) RemoveProject(ctx context.Context, projectID int64) error {
	ns := p.Namespace(projectID)
	p.mu.Lock()
	delete(p.ready, ns)
	delete(p.clients, ns)
	p.mu.Unlock()
	n, err := p.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if n.Labels["app.kubernetes.io/managed-by"] != "marketplace" {
		p.cfg.Logger.Warn("not deleting a namespace the marketplace did not create", "namespace", ns)
		return nil
	}
	err = p.admin.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	return nil
}

// uninstall removes release name of namespace ns and waits for its resources to go. Helm's
// Uninstall.Run takes no context: its Timeout bounds the wait, ctx bounds how long we listen, and a run
// that outlives its ctx is waited for before the next attempt on the same release starts another.
func (p *Provider) uninstall(ctx context.Context, cfg *action.Configuration, ns, name string) error {
	key := ns + "/" + name
	p.mu.Lock()
	previous := p.uninstalling[key]
	p.mu.Unlock()
	if previous != nil {
		select {
		case <-previous:
		case <-ctx.Done():
			return fmt.Errorf("helm uninstall %s: an earlier uninstall is still running: %w", name, ctx.Err())
		}
	}
	un := action.NewUninstall(cfg)
	un.IgnoreNotFound = true
	un.WaitStrategy = kube.StatusWatcherStrategy
	un.Timeout = timeLeft(ctx)
	running := make(chan struct{})
	p.mu.Lock()
	p.uninstalling[key] = running
	p.mu.Unlock()
	var err error
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.uninstalling, key)
			p.mu.Unlock()
			close(running)
		}()
		_, err = un.Run(name)
	}()
	select {
	case <-running:
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
