package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/libvirt"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/postgres"
)

// localLibvirtSocket is where the local VM host's libvirtd (make vmhost) listens.
const localLibvirtSocket = "/run/libvirt/libvirt-sock"

// vmLimits are the largest VM an application may ask for, from VM_MAX_VCPUS and VM_MAX_MEMORY.
func vmLimits(cfg Config) (marketplace.VMLimits, error) {
	mem := marketplace.DeploymentSpec{Memory: cfg.VMMaxMemory}
	mib, err := mem.MemoryMiB()
	if err != nil {
		return marketplace.VMLimits{}, fmt.Errorf("configuration: VM_MAX_MEMORY: %s", marketplace.ErrorMessage(err))
	}
	return marketplace.VMLimits{MaxVCPUs: cfg.VMMaxVCPUs, MaxMemoryMiB: mib}, nil
}

// newVMProvider connects the libvirt provider to LIBVIRT_URI, or to the local VM host when that is
// unset and `make vmhost` has started one. It returns nil when there is no VM host: vm installs are then
// refused at request time.
func newVMProvider(ctx context.Context, cfg Config, db *postgres.DB, guard *fetch.Guard, log *slog.Logger) (*libvirt.Provider, error) {
	uri := cfg.LibvirtURI
	if uri == "" {
		_, sockErr := os.Stat(localLibvirtSocket)
		_, dirErr := os.Stat(filepath.Join(cfg.VMDir, "images"))
		if sockErr != nil || dirErr != nil {
			log.Warn("LIBVIRT_URI is not set and no local VM host runs: vm applications cannot be installed (make vmhost starts one)")
			return nil, nil
		}
		uri = "qemu:///system"
	}
	instance, err := db.InstanceID(ctx)
	if err != nil {
		return nil, err
	}
	return libvirt.New(ctx, libvirt.Config{URI: uri, Instance: instance,
		ImageDir: filepath.Join(cfg.VMDir, "images"), PoolDir: filepath.Join(cfg.VMDir, "pool"), LogDir: filepath.Join(cfg.VMDir, "logs"),
		Network: cfg.VMNetwork, BootTimeout: cfg.VMBootTimeout, ImageMaxBytes: cfg.VMImageMaxBytes,
		CacheDir: filepath.Join(cfg.CacheDir, "vm"), Fetch: guard, Logger: log.With("provider", "libvirt")})
}
