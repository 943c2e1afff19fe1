package libvirt

import (
	"context"
	"fmt"
	"net/url"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Probe connects to the libvirt daemon at uri (a target's health) and returns its libvirt version and
// the host's CPUs and memory (node info), without the overcommit ratios, which are the caller's. The
// connection is closed before it returns; timeout bounds the whole.
func Probe(ctx context.Context, uri string, timeout time.Duration) (string, marketplace.VMHost, error) {
	type result struct {
		version string
		host    marketplace.VMHost
		err     error
	}
	done := make(chan result, 1)
	go func() {
		v, h, err := probe(uri)
		done <- result{v, h, err}
	}()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case r := <-done:
		return r.version, r.host, r.err
	case <-ctx.Done():
		// The dial goes on in its goroutine until its own timeout; its connection is closed then.
		return "", marketplace.VMHost{}, fmt.Errorf("connect to libvirt at %s: no answer within %s", uri, timeout)
	}
}

func probe(uri string) (string, marketplace.VMHost, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", marketplace.VMHost{}, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return "", marketplace.VMHost{}, fmt.Errorf("connect to libvirt at %s: %w", uri, err)
	}
	defer l.Disconnect()
	ver, err := l.ConnectGetLibVersion()
	if err != nil {
		return "", marketplace.VMHost{}, fmt.Errorf("libvirt version at %s: %w", uri, err)
	}
	_, kib, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil {
		return "", marketplace.VMHost{}, fmt.Errorf("the VM host's CPUs and memory at %s: %w", uri, err)
	}
	name, err := l.ConnectGetHostname()
	if err != nil {
		return "", marketplace.VMHost{}, fmt.Errorf("the VM host's name at %s: %w", uri, err)
	}
	// libvirt writes its version as major * 1,000,000 + minor * 1,000 + release.
	version := fmt.Sprintf("%d.%d.%d", ver/1_000_000, ver/1_000%1_000, ver%1_000)
	return version, marketplace.VMHost{Name: name, CPUs: int(cpus), MemoryMiB: int64(kib / 1024), RefreshedAt: time.Now().UTC()}, nil
}
