package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/marketplace/marketplace/internal/httpapi"
	"github.com/marketplace/marketplace/internal/marketplace"
	"github.com/marketplace/marketplace/internal/workerrpc"
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

// vmHostURI is the libvirt URI of the VM host: LIBVIRT_URI, or the local VM host's when that is unset
// and `make vmhost` has started one; "" when there is none.
func vmHostURI(cfg Config, log *slog.Logger) string {
	if cfg.LibvirtURI != "" {
		return cfg.LibvirtURI
	}
	_, sockErr := os.Stat(localLibvirtSocket)
	_, dirErr := os.Stat(filepath.Join(cfg.VMDir, "images"))
	if sockErr != nil || dirErr != nil {
		log.Warn("LIBVIRT_URI is not set and no local VM host runs: vm applications cannot be installed (make vmhost starts one)")
		return ""
	}
	return "qemu:///system"
}

// remoteInspectors are the api role's inspectors: one per type a worker of the same configuration
// installs (k8s with KUBECONFIG set, vm with a VM host), each forwarding to a worker (package workerrpc).
// What each type offers is marketplace.Offers, the same record the worker's follows. The API never
// opens KUBECONFIG's credentials or the VM host.
func remoteInspectors(cfg Config, calls *workerrpc.Client, log *slog.Logger) map[string]marketplace.Inspector {
	inspectors := map[string]marketplace.Inspector{}
	if cfg.Kubeconfig != "" {
		inspectors[marketplace.TypeK8s] = calls.Inspector(marketplace.TypeK8s)
	} else {
		log.Warn("KUBECONFIG is not set: k8s applications cannot be installed (make run starts a local cluster)")
	}
	if vmHostURI(cfg, log) != "" {
		inspectors[marketplace.TypeVM] = calls.Inspector(marketplace.TypeVM)
	}
	return inspectors
}

// consoleReader reads VM consoles through the vm type's inspector; nil without one (no VM host).
func consoleReader(inspectors map[string]marketplace.Inspector) httpapi.ConsoleReader {
	if vm := inspectors[marketplace.TypeVM]; vm != nil && marketplace.Offers(marketplace.TypeVM).Console {
		return vm
	}
	return nil
}

// kubeconfigServer reads the address of the current context's API server from a kubeconfig file, which
// the fetch guard refuses: only that field, so the api role reads no credentials and links no client-go.
func kubeconfigServer(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	server, err := marketplace.KubeconfigServer(b)
	if err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return server, nil
}
