package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// vmHostRefresh is how often a worker records the VM host's capacity again (a host given more memory, a
// ratio changed with a restart is recorded at start).
const vmHostRefresh = time.Minute

// vmHostRecorder records the capacity of the VM host a worker is connected to, which the API's
// admission of vm installs and upgrades reads (it has no connection to the host).
type vmHostRecorder struct {
	store marketplace.VMHostStore
	host  func(context.Context) (marketplace.VMHost, error)
	log   *slog.Logger
}

// record reads the host's capacity and stores it.
func (r vmHostRecorder) record(ctx context.Context) error {
	h, err := r.host(ctx)
	if err != nil {
		return err
	}
	if err := r.store.RecordVMHost(ctx, h); err != nil {
		return err
	}
	r.log.Debug("VM host capacity recorded", "host", h.Name, "cpus", h.CPUs, "memory_mib", h.MemoryMiB,
		"guest_vcpus", h.Capacity().VCPUs, "guest_memory_mib", h.Capacity().MemoryMiB)
	return nil
}

// run records the capacity every vmHostRefresh until ctx is done; a failure is logged and tried again
// at the next tick (the record before it stays, and the worker's own check stands behind it).
func (r vmHostRecorder) run(ctx context.Context) error {
	return every(ctx, vmHostRefresh, "could not record the VM host's capacity", r.log, r.record)
}

// every runs do each interval until ctx is done; a failed round is logged as what and the next one
// tries again.
func every(ctx context.Context, interval time.Duration, what string, log *slog.Logger, do func(context.Context) error) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := do(ctx); err != nil && ctx.Err() == nil {
				log.Warn(what, "err", err)
			}
		}
	}
}
