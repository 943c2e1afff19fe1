package kubernetes

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/registry"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/testenv"
)

// TestCheckSchemaRefs checks that a chart whose values schema (or a subchart's) would make Helm load
// anything from outside the schema is refused, naming what it refers to, and that self-contained schemas
// pass.
func TestCheckSchemaRefs(t *testing.T) {
	for _, tc := range []struct {
		name, schema, subchartSchema string
		refused                      string // the URL the error names; "" when the chart passes
	}{
		{name: "http ref", schema: `{"properties": {"a": {"$ref": "http://127.0.0.1:1/schema.json"}}}`, refused: "http://127.0.0.1:1/schema.json"},
		{name: "https ref", schema: `{"$ref": "https://169.254.169.254/latest"}`, refused: "https://169.254.169.254/latest"},
		{name: "file ref", schema: `{"$ref": "file:///etc/passwd"}`, refused: "file:///etc/passwd"},
		{name: "relative ref", schema: `{"$ref": "other.json#/x"}`, refused: "file:///other.json"},
		{name: "absolute path ref", schema: `{"$ref": "/etc/passwd"}`, refused: "file:///etc/passwd"},
		{name: "ref relative to an $id", schema: `{"$id": "http://127.0.0.1:1/base.json", "properties": {"a": {"$ref": "other.json"}}}`, refused: "http://127.0.0.1:1/other.json"},
		{name: "unknown $schema", schema: `{"$schema": "http://127.0.0.1:1/meta.json", "type": "object"}`, refused: "http://127.0.0.1:1/meta.json"},
		{name: "dynamic ref", schema: `{"$schema": "https://json-schema.org/draft/2020-12/schema", "$dynamicRef": "http://127.0.0.1:1/d.json"}`, refused: "http://127.0.0.1:1/d.json"},
		{name: "subchart", schema: `{"type": "object"}`, subchartSchema: `{"$ref": "http://127.0.0.1:1/sub.json"}`, refused: "http://127.0.0.1:1/sub.json"},
		{name: "local refs", schema: `{"$defs": {"port": {"type": "integer"}}, "properties": {"port": {"$ref": "#/$defs/port"}}}`},
		{name: "local ref under an $id", schema: `{"$id": "http://127.0.0.1:1/base.json", "definitions": {"p": {"type": "integer"}}, "properties": {"port": {"$ref": "#/definitions/p"}}}`},
		{name: "draft-07 over https", schema: `{"$schema": "https://json-schema.org/draft-07/schema#", "type": "object"}`},
		{name: "draft-07 over http", schema: `{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}`},
		{name: "draft 2020-12", schema: `{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}`},
		{name: "urn", schema: `{"$ref": "urn:example:thing"}`},
		{name: "not JSON (Helm says so)", schema: `{not json`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := &chart.Chart{Metadata: &chart.Metadata{Name: "app", Version: "0.1.0"}, Schema: []byte(tc.schema)}
			if tc.subchartSchema != "" {
				ch.AddDependency(&chart.Chart{Metadata: &chart.Metadata{Name: "sub", Version: "1.0.0"}, Schema: []byte(tc.subchartSchema)})
			}
			err := checkSchemaRefs(ch)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "refers to "+tc.refused+",") {
				t.Fatalf("error %v, want one saying it refers to %s", err, tc.refused)
			}
		})
	}
}

// TestHelmFetchesSchemaRefs shows the hole checkSchemaRefs closes: Helm's own validation fetches a
// schema's http $ref, from wherever it points.
func TestHelmFetchesSchemaRefs(t *testing.T) {
	var hits atomic.Int64
	canary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, `{"type": "object"}`)
	}))
	defer canary.Close()
	schema := fmt.Sprintf(`{"$ref": "%s/schema.json"}`, canary.URL)
	chartutil.ValidateAgainstSingleSchema(map[string]any{}, []byte(schema))
	if hits.Load() == 0 {
		t.Fatal("Helm did not fetch the schema's $ref: checkSchemaRefs would guard nothing")
	}
	ch := &chart.Chart{Metadata: &chart.Metadata{Name: "app", Version: "0.1.0"}, Schema: []byte(schema)}
	hits.Store(0)
	if err := checkSchemaRefs(ch); err == nil || hits.Load() != 0 {
		t.Fatalf("checkSchemaRefs: %v, %d fetches; want refused without fetching", err, hits.Load())
	}
}

// fakeRegistry is an OCI registry that wants credentials for everything and records the Authorization
// headers it receives.
type fakeRegistry struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
}

func newFakeRegistry(t *testing.T) *fakeRegistry {
	r := &fakeRegistry{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auths = append(r.auths, req.Header.Get("Authorization"))
		r.mu.Unlock()
		if strings.Contains(req.URL.Path, "/missing/") {
			http.Error(w, `{"errors": [{"code": "NAME_UNKNOWN", "message": "registry-secret-text"}]}`, http.StatusNotFound)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		http.Error(w, `{"errors": [{"code": "UNAUTHORIZED", "message": "registry-secret-text"}]}`, http.StatusUnauthorized)
	}))
	t.Cleanup(r.Close)
	return r
}

// sentCredentials reports whether any request carried the operator's credentials.
func (r *fakeRegistry) sentCredentials(secret string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.auths {
		if strings.Contains(a, secret) {
			return true
		}
	}
	return false
}

// TestRegistryGetsNoOperatorCredentials checks that an OCI registry a publisher names never receives
// the credentials of the operator's Docker or Helm configuration, and that the failure reason does not
// repeat what the registry answered. Helm's default client, for contrast, sends them.
func TestRegistryGetsNoOperatorCredentials(t *testing.T) {
	reg := newFakeRegistry(t)
	host := reg.Listener.Addr().String()
	_, secret := testenv.OperatorCredentials(t, host)

	helmDefault, err := registry.NewClient(registry.ClientOptPlainHTTP())
	if err != nil {
		t.Fatal(err)
	}
	helmDefault.Tags(host + "/charts/app")
	if !reg.sentCredentials(secret) {
		t.Fatal("Helm's default registry client did not send the operator's credentials: this test proves nothing")
	}

	reg.auths = nil
	guard, err := fetch.New(context.Background(), fetch.Config{Allow: host})
	if err != nil {
		t.Fatal(err)
	}
	src, err := newChartSource(Config{CacheDir: t.TempDir(), OCIPlainHTTP: true, Fetch: guard})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = src.load(context.Background(), marketplace.DeploymentSpec{Type: "k8s", RepoURL: "oci://" + host + "/charts", ChartName: "app"})
	if err == nil {
		t.Fatal("a registry that answers only 401 served a chart")
	}
	if len(reg.auths) == 0 {
		t.Fatal("the registry was never asked")
	}
	if reg.sentCredentials(secret) {
		t.Fatalf("the operator's credentials were sent to a publisher's registry: %q", reg.auths)
	}
	if strings.Contains(err.Error(), "registry-secret-text") {
		t.Fatalf("error %q repeats the registry's text", err)
	}
	_, _, err = src.load(context.Background(), marketplace.DeploymentSpec{Type: "k8s", RepoURL: "oci://" + host + "/charts/missing"})
	if err == nil || strings.Contains(err.Error(), "registry-secret-text") || !strings.Contains(err.Error(), "answered 404 Not Found") {
		t.Fatalf("error %v: want the registry's status, not its text", err)
	}
}

// TestEachLoadIsAChartOfItsOwn checks that two installs of the same chart version get charts of their
// own: Helm drops disabled subcharts from the chart it installs, and one consumer's values must not shape
// what the next one installs.
func TestEachLoadIsAChartOfItsOwn(t *testing.T) {
	dir := t.TempDir()
	if err := chartrepo.Build(filepath.Join("..", "..", "charts"), dir); err != nil {
		t.Fatal(err)
	}
	repo := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer repo.Close()
	guard, err := fetch.New(context.Background(), fetch.Config{Allow: repo.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	src, err := newChartSource(Config{CacheDir: t.TempDir(), Fetch: guard})
	if err != nil {
		t.Fatal(err)
	}
	spec := marketplace.DeploymentSpec{Type: "k8s", RepoURL: repo.URL, ChartName: "hello-web"}
	first, _, err := src.load(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	templates := len(first.Templates)
	first.Templates = nil // what Helm's processing of one install may do to its chart
	second, _, err := src.load(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if second == first || len(second.Templates) != templates || templates == 0 {
		t.Fatalf("the second load shares the first's chart: %d templates, want %d", len(second.Templates), templates)
	}
}

// TestArchiveBombIsRefused checks that an archive unpacking past the limit is refused without being
// unpacked into memory.
func TestArchiveBombIsRefused(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(make([]byte, maxUnpackedChart+1))
	zw.Close()
	if err := checkUnpackedSize(buf.Bytes(), maxUnpackedChart); err == nil || !strings.Contains(err.Error(), "unpacks to more than") {
		t.Fatalf("a %d-byte archive of zeros: %v, want refused", buf.Len(), err)
	}
	buf.Reset()
	zw = gzip.NewWriter(&buf)
	zw.Write([]byte("small"))
	zw.Close()
	if err := checkUnpackedSize(buf.Bytes(), maxUnpackedChart); err != nil {
		t.Fatalf("a small archive: %v", err)
	}
}
