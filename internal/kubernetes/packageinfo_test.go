package kubernetes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestPackageInfoReadsTheChart reads a chart's Chart.yaml, README.md and Artifact Hub annotations from a
// real chart repository, the README cut at MaxReadmeBytes.
func TestPackageInfoReadsTheChart(t *testing.T) {
	src, built := t.TempDir(), t.TempDir()
	files := map[string]string{
		"Chart.yaml": `apiVersion: v2
name: described
version: 0.3.0
appVersion: "9.9"
icon: https://example.com/icon.png
keywords: [one, two]
home: https://example.com
sources: [https://git.example.com/described]
maintainers: [{name: Ada, email: ada@example.com, url: https://ada.example.com}]
annotations:
  artifacthub.io/license: MIT
  category: not Artifact Hub's
`,
		"README.md":        "# Described\n" + strings.Repeat("x", marketplace.MaxReadmeBytes),
		"values.yaml":      "{}\n",
		"templates/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
	}
	for name, content := range files {
		path := filepath.Join(src, "described", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := chartrepo.Build(src, built); err != nil {
		t.Fatal(err)
	}
	repo := httptest.NewServer(http.FileServer(http.Dir(built)))
	defer repo.Close()
	guard, err := fetch.New(context.Background(), fetch.Config{Allow: repo.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	charts, err := newChartSource(Config{CacheDir: t.TempDir(), Fetch: guard})
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{charts: charts}
	info, err := p.PackageInfo(context.Background(), &marketplace.Application{
		Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: repo.URL, ChartName: "described"}})
	if err != nil {
		t.Fatal(err)
	}
	if info.AppVersion != "9.9" || info.Icon != "https://example.com/icon.png" || len(info.Keywords) != 2 || info.Home != "https://example.com" ||
		len(info.Sources) != 1 || len(info.Maintainers) != 1 || info.Maintainers[0] != (marketplace.Maintainer{Name: "Ada", Email: "ada@example.com", URL: "https://ada.example.com"}) {
		t.Errorf("package info: %+v", info)
	}
	if len(info.Annotations) != 1 || info.Annotations["artifacthub.io/license"] != "MIT" {
		t.Errorf("annotations %v: want Artifact Hub's only", info.Annotations)
	}
	if len(info.Readme) != marketplace.MaxReadmeBytes || !strings.HasPrefix(info.Readme, "# Described\n") {
		t.Errorf("README of %d bytes, want its first %d", len(info.Readme), marketplace.MaxReadmeBytes)
	}
}
