package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// metadataNS is the namespace of the marketplace's element in a domain's <metadata>.
const metadataNS = "https://marketplace.dev/libvirt/1"

// owner is the marketplace's element in a domain's metadata: which marketplace and deployment it is,
// and, for upgrades, what the definition runs (Target, a digest of image, size and seed) and, while an
// upgrade has not booted yet, the inactive definition it replaced (Previous), so a retry after a crash
// knows what to return to.
type owner struct {
	XMLName    xml.Name `xml:"https://marketplace.dev/libvirt/1 deployment"`
	Instance   string   `xml:"instance,attr"`
	Deployment int64    `xml:"id,attr"`
	Target     string   `xml:"target,attr,omitempty"`
	Previous   string   `xml:"previous,omitempty"`
}

// shape is what a domain definition is made of: its size, its disks' paths and its metadata.
type shape struct {
	vcpus         int
	mib           int64
	overlay, seed string
	uuid          string // kept across an upgrade: libvirt refuses a new one for the domain's name
	mac           string // kept across an upgrade: its DHCP host entry on network gives it ip
	network       projectNetwork
	ip            netip.Addr
	meta          owner
}

// define creates the deployment's overlay and seed volumes and defines its domain (not started).
func (p *Provider) define(ctx context.Context, l *golibvirt.Libvirt, n names, d *marketplace.Deployment, app *marketplace.Application) (golibvirt.Domain, error) {
	vcpus, err := app.Deployment.VCPUs()
	if err != nil {
		return golibvirt.Domain{}, err
	}
	mib, err := app.Deployment.MemoryMiB()
	if err != nil {
		return golibvirt.Domain{}, err
	}
	size := marketplace.VMSize{VCPUs: vcpus, MemoryMiB: mib}
	// Refused before anything is made for it; checked again below, with the definition, under p.placing.
	if err := p.checkRoom(l, n.domain, size); err != nil {
		return golibvirt.Domain{}, err
	}
	// The guest's network and address are made while its disks are: a DHCP host entry takes libvirtd a
	// second or more here. What an attempt that fails reserved, the uninstall of its deployment removes.
	mac := p.guestMAC(d.ID)
	type place struct {
		network projectNetwork
		ip      netip.Addr
		err     error
	}
	placed := make(chan place, 1)
	go func() {
		var pl place
		if pl.network, pl.err = p.ensureNetwork(ctx, l, d.ProjectID); pl.err == nil {
			pl.ip, pl.err = p.reserveAddress(ctx, l, pl.network, mac)
		}
		placed <- pl
	}()
	base, err := p.baseImage(ctx, l, app.Deployment.Image, app.PublisherID)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	overlay, err := p.ensureOverlay(ctx, l, n.overlay, base)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	values, err := app.Values(d.Inputs)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	seed, err := p.writeSeed(ctx, l, n, d, values)
	if err != nil {
		return golibvirt.Domain{}, err
	}
	if err := os.MkdirAll(p.cfg.LogDir, 0o755); err != nil {
		return golibvirt.Domain{}, fmt.Errorf("console log directory: %w", err)
	}
	pl := <-placed
	if pl.err != nil {
		return golibvirt.Domain{}, pl.err
	}
	text, err := p.domainXML(n, shape{vcpus: vcpus, mib: mib, overlay: overlay, seed: seed, mac: mac, network: pl.network, ip: pl.ip,
		meta: owner{Instance: p.cfg.Instance, Deployment: d.ID}})
	if err != nil {
		return golibvirt.Domain{}, err
	}
	if err := ctx.Err(); err != nil {
		return golibvirt.Domain{}, err
	}
	p.placing.Lock()
	defer p.placing.Unlock()
	if err := p.checkRoom(l, n.domain, size); err != nil {
		return golibvirt.Domain{}, err
	}
	dom, err := l.DomainDefineXMLFlags(text, 0)
	if err != nil {
		return golibvirt.Domain{}, fmt.Errorf("define domain %s: %w", n.domain, err)
	}
	return dom, nil
}

// domainXML is the definition of the deployment's domain of shape s.
func (p *Provider) domainXML(n names, s shape) (string, error) {
	meta, err := xml.Marshal(s.meta)
	if err != nil {
		return "", fmt.Errorf("metadata of %s: %w", n.domain, err)
	}
	port0, bootFirst := uint(0), uint(1)
	dx := &libvirtxml.Domain{
		Type:     "qemu", // TCG: a KVM device may exist on hosts that cannot run guests with it
		Name:     n.domain,
		UUID:     s.uuid,
		Metadata: &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(s.mib), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(s.vcpus)},
		OS:       &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}},
		// A smaller translation cache than QEMU's default keeps each guest's resident memory down.
		Features: &libvirtxml.DomainFeatureList{TCG: &libvirtxml.DomainFeatureTCG{
			TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: 32}}},
		OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.overlay}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				Boot:   &libvirtxml.DomainDeviceBoot{Order: bootFirst},
			}, {
				Device:   "disk",
				Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
				Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.seed}},
				Target:   &libvirtxml.DomainDiskTarget{Dev: "vdb", Bus: "virtio"},
				ReadOnly: &libvirtxml.DomainDiskReadOnly{},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				Source:    &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: s.network.name}},
				Model:     &libvirtxml.DomainInterfaceModel{Type: "virtio"},
				FilterRef: p.filterRef(s.network, s.ip),
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: n.log}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port0},
			}},
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if s.mac != "" {
		dx.Devices.Interfaces[0].MAC = &libvirtxml.DomainInterfaceMAC{Address: s.mac}
	}
	text, err := dx.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain XML of %s: %w", n.domain, err)
	}
	return text, nil
}

// checkOwned refuses a domain of the deployment's name that another marketplace (or someone by hand)
// defined: it is never adopted nor destroyed.
func (p *Provider) checkOwned(l *golibvirt.Libvirt, dom golibvirt.Domain, deploymentID int64) error {
	_, _, _, err := p.owned(l, dom, deploymentID)
	return err
}

// owned reads the domain's persistent (inactive) definition, as text to define again and parsed, and
// its marketplace metadata, refusing a domain this marketplace did not make for the deployment.
func (p *Provider) owned(l *golibvirt.Libvirt, dom golibvirt.Domain, deploymentID int64) (string, *libvirtxml.Domain, owner, error) {
	text, err := l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		return "", nil, owner{}, fmt.Errorf("read domain %s: %w", dom.Name, err)
	}
	var dx libvirtxml.Domain
	if err := dx.Unmarshal(text); err != nil {
		return "", nil, owner{}, fmt.Errorf("parse domain %s: %w", dom.Name, err)
	}
	o := readOwner(&dx)
	if o.Instance != p.cfg.Instance || o.Deployment != deploymentID {
		return "", nil, owner{}, fmt.Errorf("domain %s exists but was not made by this marketplace for deployment %d; it is left alone", dom.Name, deploymentID)
	}
	return text, &dx, o, nil
}

// readOwner finds the marketplace's element wherever libvirt put it among other applications' metadata.
func readOwner(dx *libvirtxml.Domain) owner {
	var o owner
	if dx.Metadata == nil {
		return o
	}
	dec := xml.NewDecoder(strings.NewReader("<m>" + dx.Metadata.XML + "</m>"))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Space == metadataNS && se.Name.Local == "deployment" {
			dec.DecodeElement(&o, &se)
			break
		}
	}
	return o
}

// waitBooted waits until the guest agent reports an IPv4 address inside the guest's network, which it
// can only do once the guest has booted and taken its address. The agent answers for the guest, which
// may be anyone's code: an address outside its network is never taken as the guest's. A guest that
// stops, or does not answer within the boot timeout, fails the attempt with the end of its console.
func (p *Provider) waitBooted(ctx context.Context, l *golibvirt.Libvirt, dom golibvirt.Domain, n names) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.BootTimeout)
	defer cancel()
	subnet, err := guestSubnet(l, dom)
	if err != nil {
		return "", err
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var outside []string // what the agent reported last that is not the guest's to have
	for {
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return "", fmt.Errorf("state of domain %s: %w", n.domain, err)
		}
		if s := golibvirt.DomainState(state); s == golibvirt.DomainShutoff || s == golibvirt.DomainCrashed {
			return "", fmt.Errorf("the guest of %s stopped while booting (%s); its console ends: %s", n.domain, stateName(s), lastLines(n.log, 3))
		}
		if ifaces, err := l.DomainInterfaceAddresses(dom, uint32(golibvirt.DomainInterfaceAddressesSrcAgent), 0); err == nil {
			outside = outside[:0]
			for _, iface := range ifaces {
				for _, a := range iface.Addrs {
					ip, err := netip.ParseAddr(a.Addr)
					if err != nil || !ip.Is4() || ip.IsLoopback() {
						continue
					}
					if guestAddress(ip, subnet) {
						return ip.String(), nil
					}
					outside = append(outside, ip.String())
				}
			}
		}
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				if len(outside) > 0 {
					return "", fmt.Errorf("the guest of %s did not boot within %s: its guest agent reported no address inside its network %s, only %s; its console ends: %s",
						n.domain, p.cfg.BootTimeout, subnet, strings.Join(outside, ", "), lastLines(n.log, 3))
				}
				return "", fmt.Errorf("the guest of %s did not boot within %s (its guest agent never reported an address); its console ends: %s",
					n.domain, p.cfg.BootTimeout, lastLines(n.log, 3))
			}
			return "", ctx.Err()
		case <-tick.C:
		}
	}
}

// guestSubnet is the subnet of the network the domain's interface is on: its project's, or the flat
// network of a domain defined before projects had their own.
func guestSubnet(l *golibvirt.Libvirt, dom golibvirt.Domain) (netip.Prefix, error) {
	text, err := l.DomainGetXMLDesc(dom, 0)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("read domain %s: %w", dom.Name, err)
	}
	var dx libvirtxml.Domain
	if err := dx.Unmarshal(text); err != nil {
		return netip.Prefix{}, fmt.Errorf("parse domain %s: %w", dom.Name, err)
	}
	if dx.Devices == nil || len(dx.Devices.Interfaces) == 0 || dx.Devices.Interfaces[0].Source == nil || dx.Devices.Interfaces[0].Source.Network == nil {
		return netip.Prefix{}, fmt.Errorf("domain %s has no interface on a libvirt network", dom.Name)
	}
	name := dx.Devices.Interfaces[0].Source.Network.Network
	nw, err := l.NetworkLookupByName(name)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network %s of domain %s: %w", name, dom.Name, err)
	}
	pn, err := readNetwork(l, nw)
	if err != nil {
		return netip.Prefix{}, err
	}
	return pn.subnet, nil
}
