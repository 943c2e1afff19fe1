// Package chartrepo serves a directory of chart sources as a real Helm chart repository (index.yaml and
// packaged .tgz files), so the marketplace has something to deploy on a machine without internet.
package chartrepo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	repo "helm.sh/helm/v4/pkg/repo/v1"
)

// Build packages every chart directory under srcDir into outDir and writes outDir/index.yaml with chart
// URLs relative to the repository, so the repository works at whatever address serves it.
func Build(srcDir, outDir string) error {
	entries, err := os.ReadDir(srcDir)
	if err != nil {
		return fmt.Errorf("read charts: %w", err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("chart repository: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		ch, err := loader.LoadDir(filepath.Join(srcDir, e.Name()))
		if err != nil {
			return fmt.Errorf("load chart %s: %w", e.Name(), err)
		}
		if _, err := chartutil.Save(ch, outDir); err != nil {
			return fmt.Errorf("package chart %s: %w", e.Name(), err)
		}
	}
	idx, err := repo.IndexDirectory(outDir, "")
	if err != nil {
		return fmt.Errorf("index charts: %w", err)
	}
	idx.SortEntries()
	if err := idx.WriteFile(filepath.Join(outDir, "index.yaml"), 0o644); err != nil {
		return fmt.Errorf("write index.yaml: %w", err)
	}
	return nil
}

// Serve builds the repository of srcDir into outDir and serves it on ln until ctx is done.
func Serve(ctx context.Context, srcDir, outDir string, ln net.Listener) error {
	if err := Build(srcDir, outDir); err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(outDir)), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve chart repository: %w", err)
	}
	return nil
}
