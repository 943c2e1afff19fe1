package kubernetes

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Client-side rate limits. client-go's default (5 requests a second, bursts of 10) is meant for one
// command line tool: the admin client is shared by every attempt of the process (a namespace, its
// deployer identity and fences, six requests or so per install), so under it a burst of installs queues
// behind a limiter that the API server never asked for. The API server's priority and fairness is what
// protects it; these only stop a runaway.
const (
	adminQPS, adminBurst     = 100, 200
	attemptQPS, attemptBurst = 50, 100 // one attempt's Helm, which makes its own new client (Helm's burst is 100 too)
)

// attemptClients is the genericclioptions.RESTClientGetter an attempt's Helm gets: the attempt's own REST
// configuration (impersonating the deployment's identity, every request through the attempt's fence)
// with the discovery client and REST mapper the provider keeps for all attempts. Discovery is read-only
// and the same for every identity, so it needs no fence; sharing it spares each attempt reading (and
// Helm's invalidation rewriting) the discovery cache on disk.
type attemptClients struct {
	config    *rest.Config
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
	loader    clientcmd.ClientConfig
}

func (c *attemptClients) ToRESTConfig() (*rest.Config, error) { return rest.CopyConfig(c.config), nil }
func (c *attemptClients) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	return c.discovery, nil
}
func (c *attemptClients) ToRESTMapper() (meta.RESTMapper, error)        { return c.mapper, nil }
func (c *attemptClients) ToRawKubeConfigLoader() clientcmd.ClientConfig { return c.loader }

// sharedDiscovery is the discovery client and REST mapper of the provider, in memory.
func sharedDiscovery(admin discovery.DiscoveryInterface) (discovery.CachedDiscoveryInterface, meta.RESTMapper) {
	cached := memory.NewMemCacheClient(admin)
	return cached, restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(cached), cached, nil)
}

// clientsFor returns the clients of one attempt in namespace ns as user, through fence f.
func (p *Provider) clientsFor(ns, user string, f *fence) *attemptClients {
	cfg := rest.CopyConfig(p.restConfig)
	cfg.QPS, cfg.Burst = attemptQPS, attemptBurst
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	cfg.Wrap(f.wrap)
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: p.cfg.Kubeconfig},
		&clientcmd.ConfigOverrides{Context: clientcmdapi.Context{Namespace: ns}})
	return &attemptClients{config: cfg, discovery: p.discovery, mapper: p.mapper, loader: loader}
}
