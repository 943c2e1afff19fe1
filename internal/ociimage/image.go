// Package ociimage builds the marketplace's OCI image without Docker: one layer made from a statically
// linked marketplace binary and the few files it needs (a CA bundle for HTTPS chart repositories and
// registries, a passwd entry for its non-root user, a writable /tmp), on no base image, and pushes it to
// a registry. Nothing else is in the image: no shell, no package manager, nothing to patch but the
// binary. It imports nothing of the marketplace.
package ociimage

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user: distroless's "nonroot", so a cluster's policies written for those images hold.
const (
	UID  = 65532
	Home = "/home/nonroot"
	// Entrypoint is where the binary lives in the image.
	Entrypoint = "/usr/local/bin/marketplace"
)

// Config is what an image is made of.
type Config struct {
	// Binary is the marketplace binary: statically linked (CGO_ENABLED=0), as the image has no libc.
	Binary string
	// CACerts is a PEM bundle put at /etc/ssl/certs/ca-certificates.crt, where Go's crypto/x509 looks
	// on Linux; "" for none (the marketplace then trusts no HTTPS server).
	CACerts string
	// Arch is the binary's GOARCH; "" is this machine's.
	Arch string
	// Created is the image's creation time and every file's modification time: the same inputs and
	// Created make the same digest. Zero is the Unix epoch.
	Created time.Time
	// Labels are the image's labels (org.opencontainers.image.*).
	Labels map[string]string
}

// Build returns the image of cfg: entrypoint the marketplace, command `serve`, user 65532.
func Build(cfg Config) (v1.Image, error) {
	if cfg.Arch == "" {
		cfg.Arch = runtime.GOARCH
	}
	if cfg.Created.IsZero() {
		cfg.Created = time.Unix(0, 0)
	}
	cfg.Created = cfg.Created.UTC()
	for _, f := range []string{cfg.Binary, cfg.CACerts} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("image file: %w", err)
		}
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return layerTar(cfg), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{Created: v1.Time{Time: cfg.Created}, CreatedBy: "ociimage: the marketplace binary, CA bundle, passwd"}})
	if err != nil {
		return nil, fmt.Errorf("image layer: %w", err)
	}
	file, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	file = file.DeepCopy()
	file.Architecture, file.OS = cfg.Arch, "linux"
	file.Created = v1.Time{Time: cfg.Created}
	file.Config = v1.Config{
		Entrypoint: []string{Entrypoint},
		Cmd:        []string{"serve"},
		User:       fmt.Sprintf("%d:%d", UID, UID),
		WorkingDir: Home,
		// HOME holds the marketplace's caches (MARKETPLACE_CACHE_DIR's default) and Helm's
		// configuration: a pod with a read-only root file system mounts a volume there.
		Env:          []string{"PATH=/usr/local/bin", "HOME=" + Home},
		ExposedPorts: map[string]struct{}{"3000/tcp": {}},
		Labels:       cfg.Labels,
	}
	return mutate.ConfigFile(img, file)
}

// layerTar streams the layer's tar: made again each time it is opened (once for its digest, once to
// push), so the binary is never held in memory whole.
func layerTar(cfg Config) io.ReadCloser {
	r, w := io.Pipe()
	go func() { w.CloseWithError(writeLayer(w, cfg)) }()
	return r
}

func writeLayer(w io.Writer, cfg Config) error {
	tw := tar.NewWriter(w)
	at := cfg.Created
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: at, Format: tar.FormatPAX})
	}
	file := func(name string, mode int64, size int64, from io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: at, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.CopyN(tw, from, size)
		return err
	}
	text := func(name, s string) error { return file(name, 0o644, int64(len(s)), strings.NewReader(s)) }
	fromDisk := func(name string, mode int64, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := file(name, mode, st.Size(), f); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	}
	for _, d := range []struct {
		name string
		mode int64
		uid  int
	}{{"etc", 0o755, 0}, {"etc/ssl", 0o755, 0}, {"etc/ssl/certs", 0o755, 0}, {"home", 0o755, 0}, {"home/nonroot", 0o700, UID},
		{"tmp", 0o1777, 0}, {"usr", 0o755, 0}, {"usr/local", 0o755, 0}, {"usr/local/bin", 0o755, 0}} {
		if err := dir(d.name, d.mode, d.uid); err != nil {
			return err
		}
	}
	if err := text("etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:%s:/sbin/nologin\n", UID, UID, Home)); err != nil {
		return err
	}
	if err := text("etc/group", fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)); err != nil {
		return err
	}
	if cfg.CACerts != "" {
		if err := fromDisk("etc/ssl/certs/ca-certificates.crt", 0o644, cfg.CACerts); err != nil {
			return err
		}
	}
	if err := fromDisk(Entrypoint[1:], 0o755, cfg.Binary); err != nil {
		return err
	}
	return tw.Close()
}

// Push writes img to ref (registry/repository:tag) and returns the reference by digest
// (registry/repository@sha256:...). It sends no credentials: the operator's Docker configuration is not
// read; plainHTTP speaks HTTP to the registry (a local one).
func Push(ctx context.Context, img v1.Image, ref string, plainHTTP bool) (string, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(authn.Anonymous), remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(digest.String()).String(), nil
}
