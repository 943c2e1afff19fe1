package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

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

// remoteProviders are the api role's providers: the same types as a worker of the same configuration
// offers (k8s with KUBECONFIG set, vm with a VM host), each a stand-in whose previews, health and console
// a worker answers, with the optional methods the worker's provider of that type has
// (TestRemoteProvidersMirrorLocal checks they match). The API never opens KUBECONFIG's credentials or
// the VM host.
func remoteProviders(cfg Config, calls *workerrpc.Client, log *slog.Logger) (map[string]marketplace.Provider, httpapi.ConsoleReader) {
	providers := map[string]marketplace.Provider{}
	var consoles httpapi.ConsoleReader
	if cfg.Kubeconfig != "" {
		k8s := calls.Provider(marketplace.TypeK8s)
		providers[marketplace.TypeK8s] = struct {
			workerrpc.Provider
			workerrpc.Previewer
			workerrpc.HealthChecker
			workerrpc.ValuesSchemaReader
			workerrpc.PackageInfoReader
		}{k8s, k8s.Previewer(), k8s.HealthChecker(), k8s.ValuesSchemaReader(), k8s.PackageInfoReader()}
	} else {
		log.Warn("KUBECONFIG is not set: k8s applications cannot be installed (make run starts a local cluster)")
	}
	if vmHostURI(cfg, log) != "" {
		vm := calls.Provider(marketplace.TypeVM)
		providers[marketplace.TypeVM] = struct {
			workerrpc.Provider
			workerrpc.HealthChecker
		}{vm, vm.HealthChecker()}
		consoles = vm.ConsoleReader()
	}
	return providers, consoles
}

// kubeconfigServer reads the address of the current context's API server from a kubeconfig file, which
// the fetch guard refuses: only that field, so the api role reads no credentials and links no client-go.
func kubeconfigServer(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("kubeconfig: %w", err)
	}
	var kc struct {
		CurrentContext string `yaml:"current-context"`
		Contexts       []struct {
			Name    string `yaml:"name"`
			Context struct {
				Cluster string `yaml:"cluster"`
			} `yaml:"context"`
		} `yaml:"contexts"`
		Clusters []struct {
			Name    string `yaml:"name"`
			Cluster struct {
				Server string `yaml:"server"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
	}
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return "", fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	cluster := ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			cluster = c.Context.Cluster
		}
	}
	for _, c := range kc.Clusters {
		if (c.Name == cluster || len(kc.Clusters) == 1 && kc.CurrentContext == "") && c.Cluster.Server != "" {
			return c.Cluster.Server, nil
		}
	}
	return "", fmt.Errorf("kubeconfig %s: no API server for its current context %q", path, kc.CurrentContext)
}
