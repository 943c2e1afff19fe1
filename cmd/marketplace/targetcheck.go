//go:build !apionly

package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/marketplace/marketplace/internal/kubernetes"
	"github.com/marketplace/marketplace/internal/libvirt"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// targetProbeTimeout bounds one target's check: a target that does not answer is unreachable.
const targetProbeTimeout = 10 * time.Second

// targetChecker records each target's health (reachable, version) and a VM host's size, as this worker
// sees them: what GET /api/targets shows, since an API replica reaches no target.
type targetChecker struct {
	cfg   Config
	store marketplace.TargetHealthStore
	log   *slog.Logger
}

// newTargetChecker is a worker's round of target checks.
func newTargetChecker(cfg Config, store marketplace.TargetHealthStore, log *slog.Logger) func(context.Context) error {
	return targetChecker{cfg: cfg, store: store, log: log}.check
}

// check reaches every target, a few at a time. A default target this worker is not configured with
// (no KUBECONFIG, no VM host) is left to the workers that are.
func (c targetChecker) check(ctx context.Context) error {
	targets, err := c.store.TargetsToCheck(ctx)
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, t := range targets {
		g.Go(func() error {
			h, host, ok := c.probe(ctx, t)
			if !ok {
				return nil
			}
			return c.store.RecordTargetHealth(ctx, t.ID, h, host)
		})
	}
	return g.Wait()
}

// probe reaches one target; ok is false when this worker has no way to it of its own to judge by.
func (c targetChecker) probe(ctx context.Context, t marketplace.TargetCheck) (marketplace.TargetHealth, *marketplace.VMHost, bool) {
	var h marketplace.TargetHealth
	if t.Err != nil {
		h.Error = t.Err.Error()
		return h, nil, true
	}
	var err error
	switch t.Kind {
	case marketplace.TypeK8s:
		kubeconfig := t.Kubeconfig
		if t.FromEnvironment {
			if c.cfg.Kubeconfig == "" {
				return h, nil, false
			}
			if kubeconfig, err = os.ReadFile(c.cfg.Kubeconfig); err != nil {
				h.Error = "KUBECONFIG: " + err.Error()
				return h, nil, true
			}
		}
		h.Version, err = kubernetes.Probe(ctx, kubeconfig, targetProbeTimeout)
	case marketplace.TypeVM:
		uri := t.Address
		if t.FromEnvironment {
			if uri = vmHostURI(c.cfg, slog.New(slog.DiscardHandler)); uri == "" {
				return h, nil, false
			}
		}
		var host marketplace.VMHost
		h.Version, host, err = libvirt.Probe(ctx, uri, targetProbeTimeout)
		if err == nil {
			host.CPUOvercommit, host.MemoryOvercommit = overcommit(c.cfg)
			h.Reachable = true
			return h, &host, true
		}
	default:
		return h, nil, false
	}
	if err != nil {
		h.Error = err.Error()
		c.log.Debug("a target is unreachable", "target", t.Name, "kind", t.Kind, "err", err)
	} else {
		h.Reachable = true
	}
	return h, nil, true
}

// overcommit are the ratios this worker's VM hosts run with (VM_CPU_OVERCOMMIT, VM_MEMORY_OVERCOMMIT).
func overcommit(cfg Config) (cpu, memory float64) {
	cpu, memory = cfg.VMCPUOvercommit, cfg.VMMemOvercommit
	if cpu <= 0 {
		cpu = libvirt.DefaultCPUOvercommit
	}
	if memory <= 0 {
		memory = libvirt.DefaultMemoryOvercommit
	}
	return cpu, memory
}
