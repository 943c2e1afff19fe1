package marketplace

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultTarget is the name of the targets the environment gives (KUBECONFIG, LIBVIRT_URI): every
// process with them registers or updates its kind's default at start, and a deployment placed nowhere
// else lands on it.
const DefaultTarget = "default"

// Target is where deployments run: a Kubernetes cluster (kind k8s) or a VM host (kind vm). Its
// credentials (a cluster's kubeconfig) are sealed at rest and never part of it.
type Target struct {
	ID     int64             `json:"id"`
	Kind   string            `json:"kind" enum:"k8s,vm"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	// Address is a cluster's API server (from its kubeconfig) or a VM host's libvirt URI.
	Address string `json:"address,omitempty"`
	// FromEnvironment: a default target, whose credentials are the processes' own KUBECONFIG or
	// LIBVIRT_URI, not stored.
	FromEnvironment bool            `json:"from_environment"`
	Health          TargetHealth    `json:"health"`
	Capacity        *TargetCapacity `json:"capacity,omitempty"`
	// Deployments is how many deployments hold resources on it (every one not uninstalled, nor failed
	// and cleaned up).
	Deployments int       `json:"deployments"`
	CreatedAt   time.Time `json:"created_at"`
}

// TargetHealth is what a worker saw when it last reached the target.
type TargetHealth struct {
	Reachable bool `json:"reachable"`
	// Version is the cluster's Kubernetes version or the VM host's libvirt version.
	Version   string     `json:"version,omitempty"`
	Error     string     `json:"error,omitempty"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
}

// TargetCapacity is a VM host's room: its CPUs and memory (libvirt's node info), what its guests may
// take with the overcommit ratios (allocatable), what the marketplace placed on it and what is free.
type TargetCapacity struct {
	Total            VMSize  `json:"total"`
	CPUOvercommit    float64 `json:"cpu_overcommit"`
	MemoryOvercommit float64 `json:"memory_overcommit"`
	Allocatable      VMSize  `json:"allocatable"`
	Placed           VMSize  `json:"placed"`
	Free             VMSize  `json:"free"`
}

// NewTargetCapacity is host's room with placed taken.
func NewTargetCapacity(host VMHost, placed VMSize) *TargetCapacity {
	room := host.Capacity()
	return &TargetCapacity{Total: VMSize{VCPUs: host.CPUs, MemoryMiB: host.MemoryMiB},
		CPUOvercommit: host.CPUOvercommit, MemoryOvercommit: host.MemoryOvercommit, Allocatable: room, Placed: placed,
		Free: VMSize{VCPUs: max(room.VCPUs-placed.VCPUs, 0), MemoryMiB: max(room.MemoryMiB-placed.MemoryMiB, 0)}}
}

// TargetInput is what the operator registers: a cluster with its kubeconfig, or a VM host by URI.
type TargetInput struct {
	Kind       string
	Name       string
	Labels     map[string]string
	Kubeconfig []byte
	URI        string
}

var (
	targetNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	labelKeyRE   = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
	labelValueRE = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// MaxKubeconfigBytes bounds a registered kubeconfig.
const MaxKubeconfigBytes = 256 << 10

// vmHostSchemes are the libvirt URIs a VM host is registered by.
func vmHostSchemes() []string { return []string{"qemu+tcp", "qemu+ssh", "qemu+unix"} }

// Validate checks a registration and returns the target's address (the API server, the URI).
func (in TargetInput) Validate() (string, error) {
	switch {
	case !targetNameRE.MatchString(in.Name):
		return "", Errorf(EINVALID, "name %q: lower-case letters, digits and dashes, at most 63, starting and ending with a letter or digit", in.Name)
	case in.Name == DefaultTarget:
		return "", Errorf(EINVALID, "name %q is the target KUBECONFIG and LIBVIRT_URI give: choose another name", in.Name)
	case len(in.Labels) > 32:
		return "", Errorf(EINVALID, "labels: at most 32, not %d", len(in.Labels))
	}
	for k, v := range in.Labels {
		if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
			return "", Errorf(EINVALID, "label %q=%q: keys and values as Kubernetes labels have them (region=eu, env=prod)", k, v)
		}
	}
	switch in.Kind {
	case TypeK8s:
		if in.URI != "" {
			return "", Errorf(EINVALID, "a k8s target is registered by its kubeconfig, not a uri")
		}
		if len(in.Kubeconfig) == 0 || len(in.Kubeconfig) > MaxKubeconfigBytes {
			return "", Errorf(EINVALID, "kubeconfig: the cluster's kubeconfig, 1 byte to %d KiB", MaxKubeconfigBytes>>10)
		}
		var server string
		kc, err := parseKubeconfig(in.Kubeconfig)
		if err == nil {
			server, err = kc.server()
		}
		if err == nil {
			err = kc.selfContained()
		}
		if err != nil {
			return "", Errorf(EINVALID, "kubeconfig: %v", err)
		}
		return server, nil
	case TypeVM:
		if len(in.Kubeconfig) != 0 {
			return "", Errorf(EINVALID, "a vm target is registered by its libvirt uri, not a kubeconfig")
		}
		u, err := url.Parse(in.URI)
		if err != nil || !slices.Contains(vmHostSchemes(), u.Scheme) {
			return "", Errorf(EINVALID, "uri %q: a libvirt URI of qemu+tcp, qemu+ssh or qemu+unix (qemu+tcp://host/system)", in.URI)
		}
		if _, secret := u.User.Password(); secret {
			return "", Errorf(EINVALID, "uri: no password in the URI (it would be shown): qemu+ssh authenticates with the workers' SSH keys")
		}
		if u.Path != "/system" && u.Path != "/session" {
			return "", Errorf(EINVALID, "uri %q: its path is /system or /session", in.URI)
		}
		return u.String(), nil
	default:
		return "", Errorf(EINVALID, "kind %q: k8s (a cluster, by kubeconfig) or vm (a VM host, by libvirt uri)", in.Kind)
	}
}

// KubeconfigServer is the API server of a kubeconfig's current context (of its only cluster when it
// names no context): only that field is read.
func KubeconfigServer(b []byte) (string, error) {
	kc, err := parseKubeconfig(b)
	if err != nil {
		return "", err
	}
	return kc.server()
}

// kubeconfig is what the marketplace reads of a kubeconfig: its current context's API server, and its
// users' and clusters' fields (kubeconfigOutside).
type kubeconfig struct {
	CurrentContext string `yaml:"current-context"`
	Contexts       []struct {
		Name    string `yaml:"name"`
		Context struct {
			Cluster string `yaml:"cluster"`
		} `yaml:"context"`
	} `yaml:"contexts"`
	Clusters []struct {
		Name    string         `yaml:"name"`
		Cluster map[string]any `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string         `yaml:"name"`
		User map[string]any `yaml:"user"`
	} `yaml:"users"`
}

func parseKubeconfig(b []byte) (*kubeconfig, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	return &kc, nil
}

// server is the API server of the current context's cluster (of the only cluster, without a context).
func (kc *kubeconfig) server() (string, error) {
	cluster := ""
	for _, c := range kc.Contexts {
		if c.Name == kc.CurrentContext {
			cluster = c.Context.Cluster
		}
	}
	for _, c := range kc.Clusters {
		server, _ := c.Cluster["server"].(string)
		if (c.Name == cluster || len(kc.Clusters) == 1 && kc.CurrentContext == "") && server != "" {
			return server, nil
		}
	}
	return "", fmt.Errorf("no API server for its current context %q", kc.CurrentContext)
}

// kubeconfigOutside are the kubeconfig fields that make a worker reach outside the kubeconfig itself:
// run a program (exec, auth-provider), read a file of the worker's (its service account's token, its
// keys), or send the cluster's traffic through another host. A registered kubeconfig is read by every
// worker, so it carries its credentials inline (token, client-certificate-data, ...) or is refused.
var kubeconfigOutside = map[string][]string{
	"users":    {"exec", "auth-provider", "tokenFile", "client-certificate", "client-key"},
	"clusters": {"certificate-authority", "proxy-url"},
}

// selfContained refuses a kubeconfig with any of kubeconfigOutside's fields, naming the entry.
func (kc *kubeconfig) selfContained() error {
	for _, u := range kc.Users {
		for _, f := range kubeconfigOutside["users"] {
			if _, ok := u.User[f]; ok {
				return fmt.Errorf("user %q has %s: a registered kubeconfig carries its credentials inline (token, client-certificate-data, client-key-data), since every worker reads it", u.Name, f)
			}
		}
	}
	for _, c := range kc.Clusters {
		for _, f := range kubeconfigOutside["clusters"] {
			if _, ok := c.Cluster[f]; ok {
				return fmt.Errorf("cluster %q has %s: a registered kubeconfig carries its CA inline (certificate-authority-data) and reaches its API server directly", c.Name, f)
			}
		}
	}
	return nil
}

// TargetService is the operator's registry of targets: anyone else finds none (ENOTFOUND).
type TargetService interface {
	// RegisterTarget adds a target; a name its kind already has is refused (ECONFLICT).
	RegisterTarget(ctx context.Context, in TargetInput) (*Target, error)
	FindTargets(ctx context.Context) ([]*Target, error)
	FindTarget(ctx context.Context, id int64) (*Target, error)
	// RemoveTarget removes a target nothing runs on (ECONFLICT otherwise, and for a default target).
	RemoveTarget(ctx context.Context, id int64) error
}

// TargetAccess is a target with what reaches it: a registered cluster's kubeconfig, opened.
type TargetAccess struct {
	Target
	Kubeconfig []byte
}

// TargetHealthStore is what the workers keep of the targets: the defaults they are configured with, and
// what they see when they reach each one.
type TargetHealthStore interface {
	// RegisterDefaultTarget registers, or updates, kind's default target at address.
	RegisterDefaultTarget(ctx context.Context, kind, address string) (*Target, error)
	// TargetsToCheck are every target with its credentials opened (a sealed one that cannot be opened is
	// returned without, and Err says why).
	TargetsToCheck(ctx context.Context) ([]TargetCheck, error)
	// RecordTargetHealth stores what a worker saw of a target, with a VM host's capacity.
	RecordTargetHealth(ctx context.Context, id int64, h TargetHealth, host *VMHost) error
}

// TargetCheck is a target to reach: its access, or why its credentials could not be opened.
type TargetCheck struct {
	TargetAccess
	Err error
}

// Sealer seals credentials for storage and opens them (package secretbox).
type Sealer interface {
	Seal(plaintext, context []byte) ([]byte, error)
	Open(sealed, context []byte) ([]byte, error)
	// Current reports whether sealed is sealed under the current key (not an old one).
	Current(sealed []byte) bool
}
