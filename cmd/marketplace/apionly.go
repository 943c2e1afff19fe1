//go:build apionly

// The API-only build (`go build -tags apionly`, .local/bin/marketplace-api): the api and migrate roles, without
// Helm, client-go or go-libvirt linked (full.go), so an API replica neither holds cluster or VM host
// credentials nor pays the memory of their packages. Previews, health and consoles come from workers,
// exactly as in the api role of the full build.

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

const apiOnly = true

type localProviders struct {
	installers map[string]marketplace.Installer
	inspectors map[string]marketplace.Inspector
	vmHost     func(context.Context) (marketplace.VMHost, error)
	close      func()
	// collectImages deletes the downloaded VM images whose URLs are not among those given; nil without
	// a VM host.
	collectImages func(context.Context, []string) (int, error)
	// metrics are the providers' own, registered with the process's.
	metrics []prometheus.Collector
}

// renderChild: the API-only build renders nothing (workers do).
func renderChild([]string) (int, bool) { return 0, false }

func newLocalProviders(context.Context, Config, string, *fetch.Guard, *slog.Logger) (*localProviders, error) {
	return nil, errors.New(apiOnlyRefusal)
}

// newTargetChecker: the API-only build reaches no target (workers check them).
func newTargetChecker(Config, marketplace.TargetHealthStore, *slog.Logger) func(context.Context) error {
	return nil
}

func serveChartRepo(context.Context, Config, *slog.Logger) error { return errors.New(apiOnlyRefusal) }
