package libvirt

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Each project's guests share a NAT network of their own (a bridge and a subnet): guests of one project
// reach each other, and libvirt's own forwarding rules reject traffic between two of its NAT networks.
// The guest filter (filter.go) does the rest on every interface.

// projectNetwork is a project's libvirt network.
type projectNetwork struct {
	name   string
	subnet netip.Prefix // its gateway, the VM host's end, is the subnet's first address
}

func (n projectNetwork) gateway() netip.Addr { return n.subnet.Addr().Next() }

// networkName is the name of the project's network: the instance's prefix and the project id, like the
// names of domains, so two marketplaces on one host never share one.
func (p *Provider) networkName(projectID int64) string {
	return fmt.Sprintf("mp-%s-p%d", p.shortInstance(), projectID)
}

// bridgeName is the bridge of the network of subnet: named after the subnet, so libvirt itself refuses
// (bridge name in use) a second network of the same subnet defined by a concurrent attempt. At most 15
// characters, as Linux wants.
func bridgeName(subnet netip.Prefix) string {
	a := subnet.Addr().As4()
	return fmt.Sprintf("mpbr%08x", binary.BigEndian.Uint32(a[:]))
}

// projectNetworkXML is a project's NAT network. dnsmasq's ping check (up to 3 s per offer, one at a
// time) starves guests that ask for addresses together: it is off.
const projectNetworkXML = `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
<name>%s</name><forward mode='nat'/><bridge name='%s' stp='off' delay='0'/>
<ip address='%s' prefix='%d'><dhcp><range start='%s' end='%s'/></dhcp></ip>
<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>`

// ensureNetwork returns the project's network, defining and starting it on the project's first guest
// with a subnet of VM_PROJECT_NETWORKS that no network of the host overlaps. Two attempts racing for the
// same name or subnet both end on one network: libvirt refuses the second definition of a name or a
// bridge, and the loser looks again.
func (p *Provider) ensureNetwork(ctx context.Context, l *golibvirt.Libvirt, projectID int64) (projectNetwork, error) {
	name := p.networkName(projectID)
	tried := map[netip.Prefix]bool{}
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		if err := ctx.Err(); err != nil {
			return projectNetwork{}, err
		}
		nw, err := l.NetworkLookupByName(name)
		if err == nil {
			pn, err := readNetwork(l, nw)
			if err != nil {
				return projectNetwork{}, err
			}
			if err := startNetwork(l, nw); err != nil {
				return projectNetwork{}, err
			}
			return pn, nil
		}
		if !isCode(err, golibvirt.ErrNoNetwork) {
			return projectNetwork{}, fmt.Errorf("look up network %s: %w", name, err)
		}
		subnet, err := p.freeSubnet(l, name, tried)
		if err != nil {
			return projectNetwork{}, err
		}
		tried[subnet] = true
		pn := projectNetwork{name: name, subnet: subnet}
		last := broadcast(subnet).Prev()
		nw, err = l.NetworkDefineXML(fmt.Sprintf(projectNetworkXML, name, bridgeName(subnet), pn.gateway(), subnet.Bits(), pn.gateway().Next(), last))
		if err != nil {
			lastErr = err // the name or the bridge is another attempt's now: look again
			continue
		}
		if err := l.NetworkSetAutostart(nw, 1); err != nil {
			return projectNetwork{}, fmt.Errorf("network %s: %w", name, err)
		}
		if err := startNetwork(l, nw); err != nil {
			// The subnet is in use on the host outside libvirt (a route of another interface): another.
			lastErr = err
			if err := l.NetworkUndefine(nw); err != nil && !isCode(err, golibvirt.ErrNoNetwork) {
				return projectNetwork{}, fmt.Errorf("undefine network %s after it could not start: %w", name, err)
			}
			continue
		}
		p.cfg.Logger.Info("made the project's network", "project", projectID, "network", name, "subnet", subnet)
		return pn, nil
	}
	return projectNetwork{}, fmt.Errorf("network %s: no subnet of %s could be made: %w", name, p.cfg.Networks, lastErr)
}

// startNetwork starts a network that is not active.
func startNetwork(l *golibvirt.Libvirt, nw golibvirt.Network) error {
	active, err := l.NetworkIsActive(nw)
	if err != nil {
		return fmt.Errorf("network %s: %w", nw.Name, err)
	}
	if active != 0 {
		return nil
	}
	if err := l.NetworkCreate(nw); err != nil {
		if active, aerr := l.NetworkIsActive(nw); aerr == nil && active != 0 {
			return nil // started by a concurrent attempt
		}
		return fmt.Errorf("start network %s: %w", nw.Name, err)
	}
	return nil
}

// readNetwork reads a network's name and IPv4 subnet.
func readNetwork(l *golibvirt.Libvirt, nw golibvirt.Network) (projectNetwork, error) {
	text, err := l.NetworkGetXMLDesc(nw, 0)
	if err != nil {
		return projectNetwork{}, fmt.Errorf("read network %s: %w", nw.Name, err)
	}
	var nx libvirtxml.Network
	if err := nx.Unmarshal(text); err != nil {
		return projectNetwork{}, fmt.Errorf("parse network %s: %w", nw.Name, err)
	}
	for _, subnet := range subnets(&nx) {
		if subnet.Addr().Is4() {
			return projectNetwork{name: nw.Name, subnet: subnet}, nil
		}
	}
	return projectNetwork{}, fmt.Errorf("network %s has no IPv4 subnet", nw.Name)
}

// subnets are the subnets of a network's addresses.
func subnets(nx *libvirtxml.Network) []netip.Prefix {
	var out []netip.Prefix
	for _, ip := range nx.IPs {
		addr, err := netip.ParseAddr(ip.Address)
		if err != nil {
			continue
		}
		bits := int(ip.Prefix)
		if ip.Netmask != "" {
			mask, err := netip.ParseAddr(ip.Netmask)
			if err != nil {
				continue
			}
			m := mask.As4()
			bits = 0
			for v := binary.BigEndian.Uint32(m[:]); v&(1<<31) != 0; v <<= 1 {
				bits++
			}
		}
		if prefix, err := addr.Prefix(bits); err == nil {
			out = append(out, prefix)
		}
	}
	return out
}

// freeSubnet picks a subnet of VM_PROJECT_NETWORKS that no network of the host (of any marketplace, or
// anyone's) overlaps and that this attempt has not tried. The search starts at a place given by the
// network's name, so concurrent attempts for different projects seldom pick the same one.
func (p *Provider) freeSubnet(l *golibvirt.Libvirt, name string, tried map[netip.Prefix]bool) (netip.Prefix, error) {
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("list networks: %w", err)
	}
	var used []netip.Prefix
	for _, nw := range nets {
		text, err := l.NetworkGetXMLDesc(nw, 0)
		if err != nil {
			continue // undefined meanwhile
		}
		var nx libvirtxml.Network
		if err := nx.Unmarshal(text); err != nil {
			return netip.Prefix{}, fmt.Errorf("parse network %s: %w", nw.Name, err)
		}
		used = append(used, subnets(&nx)...)
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	subnet, ok := pickSubnet(p.cfg.Networks, p.cfg.NetworkBits, h.Sum32(), func(s netip.Prefix) bool {
		if tried[s] {
			return false
		}
		for _, u := range used {
			if u.Overlaps(s) {
				return false
			}
		}
		return true
	})
	if !ok {
		return netip.Prefix{}, fmt.Errorf("every /%d subnet of VM_PROJECT_NETWORKS %s is in use (%d networks on the host)", p.cfg.NetworkBits, p.cfg.Networks, len(nets))
	}
	return subnet, nil
}

// pickSubnet returns the first subnet of /bits in all, from the start-th on (wrapping), that free takes.
func pickSubnet(all netip.Prefix, bits int, start uint32, free func(netip.Prefix) bool) (netip.Prefix, bool) {
	count := uint64(1) << (bits - all.Bits())
	base := all.Masked().Addr().As4()
	first := binary.BigEndian.Uint32(base[:])
	for i := range count {
		n := (uint64(start) + i) % count
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], first+uint32(n<<(32-bits)))
		s := netip.PrefixFrom(netip.AddrFrom4(a), bits)
		if free(s) {
			return s, true
		}
	}
	return netip.Prefix{}, false
}

// broadcast is the last address of an IPv4 subnet.
func broadcast(subnet netip.Prefix) netip.Addr {
	a := subnet.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-subnet.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// guestAddress reports whether addr may be a guest's address on subnet: inside it, and neither the
// subnet's own address, its gateway (the VM host) nor its broadcast. The guest agent runs inside the
// guest, which may report anything: an address outside its network (the API server, another tenant's
// guest, cloud metadata) would be shown and used as the guest's.
func guestAddress(addr netip.Addr, subnet netip.Prefix) bool {
	return addr.Is4() && subnet.Contains(addr) && addr != subnet.Masked().Addr() &&
		addr != subnet.Masked().Addr().Next() && addr != broadcast(subnet)
}

// projectNetworkIfAny looks up the network of a project; an empty name when it has none.
func (p *Provider) projectNetworkIfAny(l *golibvirt.Libvirt, projectID int64) (golibvirt.Network, string, error) {
	name := p.networkName(projectID)
	nw, err := l.NetworkLookupByName(name)
	if isCode(err, golibvirt.ErrNoNetwork) {
		return nw, "", nil
	} else if err != nil {
		return nw, "", fmt.Errorf("look up network %s: %w", name, err)
	}
	return nw, name, nil
}

// RemoveProject destroys and undefines the network of a deleted project (its guests are gone: a project
// is only deleted once none of its deployments is live). A network already gone counts as removed.
func (p *Provider) RemoveProject(ctx context.Context, projectID int64) error {
	l, err := p.client(ctx)
	if err != nil {
		return err
	}
	nw, name, err := p.projectNetworkIfAny(l, projectID)
	if err != nil || name == "" {
		return err
	}
	if err := l.NetworkDestroy(nw); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) && !isCode(err, golibvirt.ErrNoNetwork) {
		return fmt.Errorf("stop network %s: %w", name, err)
	}
	if err := l.NetworkUndefine(nw); err != nil && !isCode(err, golibvirt.ErrNoNetwork) {
		return fmt.Errorf("undefine network %s: %w", name, err)
	}
	return nil
}
