package kubernetes

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"helm.sh/helm/v4/pkg/provenance"

	"github.com/marketplace/marketplace/internal/chartrepo"
	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// TestVerifyChartFromARepository fetches the bundled charts from a real chart repository, through the
// fetch guard, with a .prov beside one of them: it is verified against its signer's key and not against
// another's, and unsigned once the .prov is gone; an install of the verified version refuses any other archive.
func TestVerifyChartFromARepository(t *testing.T) {
	dir := t.TempDir()
	if err := chartrepo.Build(filepath.Join("..", "..", "charts"), dir); err != nil {
		t.Fatal(err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "hello-web-*.tgz"))
	if len(matches) != 1 {
		t.Fatalf("hello-web archives: %v", matches)
	}
	archive, err := os.ReadFile(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := openpgp.NewEntity("publisher", "", "publisher@example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := (&provenance.Signatory{Entity: key}).ClearSign(archive, filepath.Base(matches[0]), []byte("name: hello-web\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(matches[0]+".prov", []byte(prov), 0o644); err != nil {
		t.Fatal(err)
	}
	armored := func(e *openpgp.Entity) string {
		var b bytes.Buffer
		w, _ := armor.Encode(&b, openpgp.PublicKeyType, nil)
		if err := e.Serialize(w); err != nil {
			t.Fatal(err)
		}
		w.Close()
		return b.String()
	}
	other, _ := openpgp.NewEntity("other", "", "other@example.com", nil)

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
	p := &Provider{charts: src}
	app := &marketplace.Application{Version: 1, Deployment: marketplace.DeploymentSpec{Type: "k8s", RepoURL: repo.URL, ChartName: "hello-web"}}

	sig, err := p.VerifyChart(context.Background(), app, []string{armored(other), armored(key)})
	if err != nil || !sig.Verified || sig.Signer == "" {
		t.Fatalf("signed chart: %+v %v", sig, err)
	}
	if bad, err := p.VerifyChart(context.Background(), app, []string{armored(other)}); err != nil || bad.Outcome != marketplace.SignatureBad {
		t.Errorf("another key: %+v %v", bad, err)
	}
	if err := os.Remove(matches[0] + ".prov"); err != nil {
		t.Fatal(err)
	}
	if u, err := p.VerifyChart(context.Background(), app, []string{armored(key)}); err != nil || u.Outcome != marketplace.SignatureUnsigned || u.Verified {
		t.Errorf("without its .prov: %+v %v", u, err)
	}

	app.Signature = sig
	if err := checkDigest(app, archive); err != nil {
		t.Errorf("the verified archive: %v", err)
	}
	if err := checkDigest(app, append(archive, 0)); err == nil || !marketplace.IsFinal(err) || !strings.Contains(err.Error(), "not the one verified") {
		t.Errorf("another archive: %v", err)
	}
}
