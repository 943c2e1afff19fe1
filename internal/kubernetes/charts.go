package kubernetes

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// chartSource fetches publishers' charts: chart repository indexes and archives over HTTP(S), and OCI
// registries.
type chartSource struct {
	getters  getter.Providers
	registry *registry.Client

	mu     sync.Mutex
	charts map[string]*chart.Chart // by chart URL or OCI reference with version
}

func newChartSource(cfg Config) (*chartSource, error) {
	// Helm's registry client takes no context: its HTTP client's timeout is what bounds a registry
	// that accepts a connection and never answers.
	opts := []registry.ClientOption{registry.ClientOptEnableCache(true),
		registry.ClientOptHTTPClient(&http.Client{Timeout: time.Minute, Transport: http.DefaultTransport})}
	if cfg.OCIPlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	return &chartSource{
		getters:  getter.Getters(getter.WithRegistryClient(rc), getter.WithTimeout(time.Minute)),
		registry: rc,
		charts:   map[string]*chart.Chart{},
	}, nil
}

// load fetches the chart of spec, from memory when the same chart version was fetched before.
func (c *chartSource) load(spec marketplace.DeploymentSpec) (*chart.Chart, error) {
	ref, err := c.ref(spec)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	ch := c.charts[ref]
	c.mu.Unlock()
	if ch != nil {
		return ch, nil
	}
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("chart reference %q: %w", ref, err)
	}
	g, err := c.getters.ByScheme(u.Scheme)
	if err != nil {
		return nil, fmt.Errorf("chart reference %q: %w", ref, err)
	}
	buf, err := g.Get(ref)
	if err != nil {
		return nil, fmt.Errorf("download chart %s: %w", ref, err)
	}
	ch, err = loader.LoadArchive(buf)
	if err != nil {
		return nil, fmt.Errorf("load chart %s: %w", ref, err)
	}
	c.mu.Lock()
	c.charts[ref] = ch
	c.mu.Unlock()
	return ch, nil
}

// ref resolves spec to a downloadable reference: the chart URL from the repository's index for
// http(s) repositories, or the oci:// reference with the registry's tag; either way the newest version
// that matches ChartVersion (an exact version, a range, or empty for the newest stable one).
func (c *chartSource) ref(spec marketplace.DeploymentSpec) (string, error) {
	if ref, ok := strings.CutPrefix(spec.RepoURL, "oci://"); ok {
		ref = strings.TrimSuffix(ref, "/")
		if spec.ChartName != "" && path.Base(ref) != spec.ChartName {
			ref += "/" + spec.ChartName
		}
		tags, err := c.registry.Tags(ref)
		if err != nil {
			return "", fmt.Errorf("list the versions of oci://%s: %w", ref, err)
		}
		tag, err := registry.GetTagMatchingVersionOrConstraint(tags, spec.ChartVersion)
		if err != nil {
			return "", fmt.Errorf("chart oci://%s has no version matching %q (it has %s)", ref, spec.ChartVersion, strings.Join(tags, ", "))
		}
		return "oci://" + ref + ":" + tag, nil
	}
	indexURL := strings.TrimSuffix(spec.RepoURL, "/") + "/index.yaml"
	g, err := c.getters.ByScheme(strings.SplitN(indexURL, ":", 2)[0])
	if err != nil {
		return "", fmt.Errorf("chart repository %s: %w", spec.RepoURL, err)
	}
	buf, err := g.Get(indexURL)
	if err != nil {
		return "", fmt.Errorf("chart repository %s cannot be read: %w", spec.RepoURL, err)
	}
	var idx repo.IndexFile
	if err := yaml.Unmarshal(buf.Bytes(), &idx); err != nil {
		return "", fmt.Errorf("chart repository %s has an invalid index.yaml: %w", spec.RepoURL, err)
	}
	idx.SortEntries()
	cv, err := idx.Get(spec.ChartName, spec.ChartVersion)
	if err != nil {
		return "", fmt.Errorf("chart %q version %q is not in repository %s", spec.ChartName, spec.ChartVersion, spec.RepoURL)
	}
	if len(cv.URLs) == 0 {
		return "", fmt.Errorf("chart %q %s in repository %s has no download URL", spec.ChartName, cv.Version, spec.RepoURL)
	}
	return repo.ResolveReferenceURL(spec.RepoURL, cv.URLs[0])
}
