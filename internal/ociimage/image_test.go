package ociimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestBuild: the image holds the binary (its bytes, executable), the CA bundle, passwd and group, and
// directories, owned and moded as a non-root process needs; its config runs the binary as 65532; the
// same inputs make the same digest.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	bin, ca := filepath.Join(dir, "marketplace"), filepath.Join(dir, "ca.crt")
	os.WriteFile(bin, []byte("\x7fELF not really"), 0o755)
	os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644)
	cfg := Config{Binary: bin, CACerts: ca, Arch: "amd64", Created: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Labels: map[string]string{"org.opencontainers.image.version": "1.2.3"}}
	img, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("media type %s, want an OCI manifest", mt)
	}
	file, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := file.Config
	if c.User != "65532:65532" || c.Entrypoint[0] != Entrypoint || c.Cmd[0] != "serve" || file.Architecture != "amd64" || file.OS != "linux" ||
		c.Labels["org.opencontainers.image.version"] != "1.2.3" || !file.Created.Time.Equal(cfg.Created) {
		t.Errorf("config: %+v (%s/%s, created %v)", c, file.OS, file.Architecture, file.Created)
	}

	want := map[string]struct {
		mode    int64
		uid     int
		content string
	}{
		"usr/local/bin/marketplace":         {0o755, 0, "\x7fELF not really"},
		"etc/ssl/certs/ca-certificates.crt": {0o644, 0, "-----BEGIN CERTIFICATE-----\n"},
		"home/nonroot":                      {0o700, UID, ""},
		"tmp":                               {0o1777, 0, ""},
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		h.Name = strings.TrimSuffix(h.Name, "/")
		seen[h.Name] = true
		if !h.ModTime.Equal(cfg.Created) {
			t.Errorf("%s modified at %v, want the image's creation time", h.Name, h.ModTime)
		}
		w, ok := want[h.Name]
		if !ok {
			continue
		}
		b, _ := io.ReadAll(tr)
		if h.Mode != w.mode || h.Uid != w.uid || string(b) != w.content {
			t.Errorf("%s: mode %o uid %d content %q, want %o %d %q", h.Name, h.Mode, h.Uid, b, w.mode, w.uid, w.content)
		}
	}
	for _, f := range []string{"usr/local/bin/marketplace", "etc/ssl/certs/ca-certificates.crt", "etc/passwd", "etc/group", "home/nonroot", "tmp"} {
		if !seen[f] {
			t.Errorf("the image has no %s", f)
		}
	}

	again, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Errorf("the same inputs made %s and %s", d1, d2)
	}
	if _, err := Build(Config{Binary: filepath.Join(dir, "missing")}); err == nil {
		t.Errorf("an image of a binary that is not there was built")
	}
}
