package libvirt

import (
	"context"
	"fmt"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// The overcommit ratios of a Config that sets none: a TCG vCPU is a thread, which a host's CPU can run
// several of; memory is not overcommitted: guests never promise more than the host has.
const (
	DefaultCPUOvercommit    = 4.0
	DefaultMemoryOvercommit = 1.0
)

// Host is the VM host's capacity as libvirt reports it (its CPUs and memory), with the overcommit ratios
// this provider runs with. A worker records it for the API's admission of installs and upgrades.
func (p *Provider) Host(ctx context.Context) (marketplace.VMHost, error) {
	l, err := p.client(ctx)
	if err != nil {
		return marketplace.VMHost{}, err
	}
	return p.host(l)
}

func (p *Provider) host(l *golibvirt.Libvirt) (marketplace.VMHost, error) {
	_, kib, cpus, _, _, _, _, _, err := l.NodeGetInfo()
	if err != nil {
		return marketplace.VMHost{}, fmt.Errorf("the VM host's CPUs and memory: %w", err)
	}
	name, err := l.ConnectGetHostname()
	if err != nil {
		return marketplace.VMHost{}, fmt.Errorf("the VM host's name: %w", err)
	}
	h := marketplace.VMHost{Name: name, CPUs: int(cpus), MemoryMiB: int64(kib / 1024),
		CPUOvercommit: p.cfg.CPUOvercommit, MemoryOvercommit: p.cfg.MemoryOvercommit, RefreshedAt: time.Now().UTC()}
	if h.CPUOvercommit <= 0 {
		h.CPUOvercommit = DefaultCPUOvercommit
	}
	if h.MemoryOvercommit <= 0 {
		h.MemoryOvercommit = DefaultMemoryOvercommit
	}
	return h, nil
}

// checkRoom is the last line behind the API's admission (which a stale record of the host could let
// through): it refuses to define the guest of domain at size need when, with every other domain of this
// marketplace on the host (running or not: each is a guest it placed), the host's guests would take more
// than its capacity. Its caller holds p.placing, so two attempts of this process cannot both pass it
// before either defines.
func (p *Provider) checkRoom(l *golibvirt.Libvirt, domain string, need marketplace.VMSize) error {
	h, err := p.host(l)
	if err != nil {
		return err
	}
	doms, _, err := l.ConnectListAllDomains(1, 0)
	if err != nil {
		return fmt.Errorf("list the VM host's domains: %w", err)
	}
	var used marketplace.VMSize
	prefix := p.namePrefix()
	for _, dom := range doms {
		if dom.Name == domain || !strings.HasPrefix(dom.Name, prefix) {
			continue
		}
		_, maxKiB, _, vcpus, _, err := l.DomainGetInfo(dom)
		if golibvirt.IsNotFound(err) {
			continue // removed meanwhile
		} else if err != nil {
			return fmt.Errorf("size of domain %s: %w", dom.Name, err)
		}
		used = used.Add(marketplace.VMSize{VCPUs: int(vcpus), MemoryMiB: int64(maxKiB / 1024)})
	}
	if err := h.Admit(used, need); err != nil {
		return fmt.Errorf("refusing to place domain %s: %s (counted from the VM host's own domains)", domain, marketplace.ErrorMessage(err))
	}
	return nil
}
