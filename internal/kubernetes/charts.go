package kubernetes

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/getter"
	"helm.sh/helm/v4/pkg/registry"
	repo "helm.sh/helm/v4/pkg/repo/v1"
	"k8s.io/utils/lru"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"sigs.k8s.io/yaml"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// chartSource fetches publishers' charts: chart repository indexes and archives over HTTP(S), and OCI
// registries. Every fetch goes through the fetch guard (no internal addresses, capped sizes), and no
// fetch carries credentials of the operator's: not Docker's, not Helm's.
type chartSource struct {
	fetch      *fetch.Guard
	oci        getter.Getter
	registry   *registry.Client // the same client as oci's: for a chart with its provenance layer (signed)
	authorizer *auth.Client     // anonymous, through the guard's client: for tag lists (ociTags)
	plainHTTP  bool

	archives *lru.Cache // []byte chart archives by chart URL or OCI reference with version; the least recent go
}

// The archives kept in memory: at most archiveCacheSize of at most maxCachedArchive bytes each, since
// a publisher can list any number of versions.
const (
	archiveCacheSize = 64
	maxCachedArchive = 1 << 20
)

func newChartSource(cfg Config) (*chartSource, error) {
	if cfg.Fetch == nil {
		return nil, errors.New("kubernetes provider: no fetch guard configured")
	}
	credentials, err := emptyRegistryCredentials(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	// Helm's registry client takes no context: the guard's client timeout is what bounds a registry
	// that accepts a connection and never answers. Left to itself, the client reads credentials from
	// Helm's registry config, ~/.docker/config.json and credential helpers, and would hand the
	// operator's registry passwords to any publisher's registry: an authorizer of our own that knows no
	// credentials (anonymous tokens still work) and an empty credentials file of the marketplace's
	// replace all of that.
	client := cfg.Fetch.HTTPClient()
	authorizer := auth.Client{Client: client, Cache: auth.NewCache(),
		Credential: func(context.Context, string) (auth.Credential, error) { return auth.EmptyCredential, nil }}
	authorizer.SetUserAgent("marketplace")
	opts := []registry.ClientOption{registry.ClientOptHTTPClient(client), registry.ClientOptCredentialsFile(credentials),
		registry.ClientOptAuthorizer(authorizer)}
	if cfg.OCIPlainHTTP {
		opts = append(opts, registry.ClientOptPlainHTTP())
	}
	rc, err := registry.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("helm registry client: %w", err)
	}
	oci, err := getter.NewOCIGetter(getter.WithRegistryClient(rc))
	if err != nil {
		return nil, fmt.Errorf("helm OCI getter: %w", err)
	}
	return &chartSource{fetch: cfg.Fetch, oci: oci, registry: rc, authorizer: &authorizer, plainHTTP: cfg.OCIPlainHTTP,
		archives: lru.New(archiveCacheSize)}, nil
}

// emptyRegistryCredentials writes the registry credentials file the marketplace gives Helm: one with
// no credentials in it, in the marketplace's cache directory.
func emptyRegistryCredentials(cacheDir string) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	file := filepath.Join(cacheDir, "registry-credentials.json")
	if err := os.WriteFile(file, []byte("{}\n"), 0o600); err != nil {
		return "", fmt.Errorf("registry credentials file: %w", err)
	}
	return file, nil
}

// load fetches the chart of spec, its archive from memory when the same chart version was fetched
// before. Each call loads a chart of its own from the archive: Helm changes the chart it installs (it
// drops disabled subcharts), so one consumer's values must never shape what the next one gets. A chart
// whose values schema refers to anything outside itself is refused (see checkSchemaRefs). The archive
// is returned too: a render child loads the chart from it again (package render).
func (c *chartSource) load(ctx context.Context, spec marketplace.DeploymentSpec) (*chart.Chart, []byte, error) {
	ref, err := c.ref(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	archive, cached := c.archives.Get(ref)
	if !cached {
		if strings.HasPrefix(ref, "oci://") {
			buf, err := c.oci.Get(ref)
			if err != nil {
				return nil, nil, fmt.Errorf("download chart %s: %w", ref, withoutRegistryText(err))
			}
			archive = buf.Bytes()
		} else if archive, err = c.fetch.Get(ctx, ref, "chart archive"); err != nil {
			return nil, nil, err
		}
	}
	if err := checkUnpackedSize(archive.([]byte), maxUnpackedChart); err != nil {
		return nil, nil, fmt.Errorf("chart %s: %w", ref, err)
	}
	ch, err := loader.LoadArchive(bytes.NewReader(archive.([]byte)))
	if err != nil {
		return nil, nil, fmt.Errorf("load chart %s: %w", ref, err)
	}
	if err := checkSchemaRefs(ch); err != nil {
		return nil, nil, err
	}
	if !cached && len(archive.([]byte)) <= maxCachedArchive {
		c.archives.Add(ref, archive)
	}
	return ch, archive.([]byte), nil
}

// maxUnpackedChart bounds what a chart archive may unpack to: a release is stored in one Secret of at
// most 1 MiB, so no installable chart comes near it, and a small archive of zeros cannot fill a worker's
// memory.
const maxUnpackedChart = 16 << 20

// checkUnpackedSize refuses an archive that unpacks to more than max bytes, reading it as a stream.
func checkUnpackedSize(archive []byte, max int64) error {
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		return fmt.Errorf("not a gzipped chart archive: %w", err)
	}
	defer zr.Close()
	n, err := io.Copy(io.Discard, io.LimitReader(zr, max+1))
	if err != nil {
		return fmt.Errorf("not a gzipped chart archive: %w", err)
	}
	if n > max {
		return fmt.Errorf("the archive unpacks to more than %d bytes", max)
	}
	return nil
}

// ref resolves spec to a downloadable reference: the chart URL from the repository's index for
// http(s) repositories, or the oci:// reference with the registry's tag; either way the newest version
// that matches ChartVersion (an exact version, a range, or empty for the newest stable one).
func (c *chartSource) ref(ctx context.Context, spec marketplace.DeploymentSpec) (string, error) {
	if ref, ok := strings.CutPrefix(spec.RepoURL, "oci://"); ok {
		ref = strings.TrimSuffix(ref, "/")
		if spec.ChartName != "" && path.Base(ref) != spec.ChartName {
			ref += "/" + spec.ChartName
		}
		tags, err := ociTags(ctx, c.authorizer, c.plainHTTP, ref)
		if err != nil {
			return "", fmt.Errorf("list the versions of oci://%s: %w", ref, withoutRegistryText(err))
		}
		tag, err := registry.GetTagMatchingVersionOrConstraint(tags, spec.ChartVersion)
		if err != nil {
			return "", fmt.Errorf("chart oci://%s has no version matching %q (it has %s)", ref, spec.ChartVersion, someTags(tags))
		}
		return "oci://" + ref + ":" + tag, nil
	}
	indexURL := strings.TrimSuffix(spec.RepoURL, "/") + "/index.yaml"
	buf, err := c.fetch.Get(ctx, indexURL, "index")
	if err != nil {
		return "", fmt.Errorf("chart repository %s cannot be read: %w", spec.RepoURL, err)
	}
	// The YAML parser's errors quote the document: they are not repeated, the document is not ours.
	var idx repo.IndexFile
	if err := yaml.Unmarshal(buf, &idx); err != nil || idx.APIVersion == "" {
		return "", fmt.Errorf("chart repository %s has no valid index.yaml: %s is not a Helm repository index", spec.RepoURL, indexURL)
	}
	idx.SortEntries()
	cv, err := idx.Get(spec.ChartName, spec.ChartVersion)
	if err != nil {
		return "", fmt.Errorf("chart %q version %q is not in repository %s", spec.ChartName, spec.ChartVersion, spec.RepoURL)
	}
	if len(cv.URLs) == 0 {
		return "", fmt.Errorf("chart %q %s in repository %s has no download URL", spec.ChartName, cv.Version, spec.RepoURL)
	}
	chartURL, err := repo.ResolveReferenceURL(spec.RepoURL, cv.URLs[0])
	if err != nil {
		return "", fmt.Errorf("chart %q %s in repository %s has an invalid download URL", spec.ChartName, cv.Version, spec.RepoURL)
	}
	// An index may name any URL; it is fetched like the repository itself, and said so early.
	if !strings.HasPrefix(chartURL, "http://") && !strings.HasPrefix(chartURL, "https://") {
		return "", fmt.Errorf("chart %q %s in repository %s has a download URL that is not http or https", spec.ChartName, cv.Version, spec.RepoURL)
	}
	if err := c.fetch.CheckURL(ctx, chartURL); err != nil {
		return "", fmt.Errorf("chart %q %s in repository %s is downloaded from %s: %w", spec.ChartName, cv.Version, spec.RepoURL, chartURL, err)
	}
	return chartURL, nil
}

// withoutRegistryText replaces an error answer of a registry with its status: the text of the answer is
// the remote's, not ours to repeat.
func withoutRegistryText(err error) error {
	var answer *errcode.ErrorResponse
	if errors.As(err, &answer) {
		where := ""
		if answer.URL != nil {
			where = " " + answer.URL.Redacted()
		}
		return fmt.Errorf("the registry answered %d %s to %s%s", answer.StatusCode, http.StatusText(answer.StatusCode), answer.Method, where)
	}
	return err
}

// someTags names a registry's first tags, not all of them: the registry is a publisher's, its tag list
// as long as it likes.
func someTags(tags []string) string {
	const shown = 10
	if len(tags) <= shown {
		return strings.Join(tags, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(tags[:shown], ", "), len(tags)-shown)
}
