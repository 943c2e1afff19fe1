package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Each guest has a fixed address: a DHCP host entry of its project's network gives its MAC that address,
// and its interface's filter is told the address (IP, with CTRL_IP_LEARNING=none) instead of learning it
// by snooping the guest's DHCP. Learning is what made every destroy of a guest take seconds longer, and
// left the guest's traffic undecided until its first lease.
//
// The network's entries are the record of which address is whose: libvirt refuses an entry whose MAC or
// address another entry has, under its own lock of the network, so two attempts (of one process or of
// several workers) never give one address twice; the loser takes the next free one.

// guestMAC is the MAC of the deployment's interface. It is fixed, so a retried install, an upgrade and the
// uninstall find the deployment's DHCP host entry without the domain. 52:54:00 is libvirt's (QEMU's)
// locally administered prefix; the rest is the deployment id offset by a digest of the instance id, so
// one marketplace's deployments never share a MAC (below 2^24 of them) and are the only guests on their
// project's network.
func (p *Provider) guestMAC(deploymentID int64) string {
	sum := sha256.Sum256([]byte(p.cfg.Instance))
	v := (binary.BigEndian.Uint32(sum[:4]) + uint32(deploymentID)) & 0xffffff
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", byte(v>>16), byte(v>>8), byte(v))
}

// reserveAddress returns the address the DHCP host entry for mac gives on network n, adding the entry
// with a free address when there is none: a retry finds its own entry again. A free address is inside
// the network's DHCP range, a guest's (guestAddress), and neither another entry's nor leased to another
// MAC (a removed guest's lease outlives it, and dnsmasq would not give its address to the new MAC). The
// address mac holds a lease of already (a guest defined before addresses were fixed) is kept.
func (p *Provider) reserveAddress(ctx context.Context, l *golibvirt.Libvirt, n projectNetwork, mac string) (netip.Addr, error) {
	mac = strings.ToLower(mac)
	tried := map[netip.Addr]bool{}
	var lastErr error
	for attempt := 0; attempt < 32; attempt++ {
		if err := ctx.Err(); err != nil {
			return netip.Addr{}, err
		}
		nw, err := l.NetworkLookupByName(n.name)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("look up network %s: %w", n.name, err)
		}
		ipx, err := networkIP(l, nw, n.subnet)
		if err != nil {
			return netip.Addr{}, err
		}
		used := map[netip.Addr]bool{}
		if ipx.DHCP != nil {
			for _, h := range ipx.DHCP.Hosts {
				addr, _ := netip.ParseAddr(h.IP)
				if strings.EqualFold(h.MAC, mac) {
					if !guestAddress(addr, n.subnet) {
						return netip.Addr{}, fmt.Errorf("network %s gives MAC %s the address %q, not a guest's of %s", n.name, mac, h.IP, n.subnet)
					}
					return addr, nil
				}
				used[addr] = true
			}
		}
		leases, _, err := l.NetworkGetDhcpLeases(nw, nil, 1, 0)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("leases of network %s: %w", n.name, err)
		}
		var own netip.Addr
		for _, lease := range leases {
			addr, err := netip.ParseAddr(lease.Ipaddr)
			if err != nil {
				continue
			}
			if len(lease.Mac) > 0 && strings.EqualFold(lease.Mac[0], mac) {
				own = addr
				continue
			}
			used[addr] = true
		}
		free := func(a netip.Addr) bool { return guestAddress(a, n.subnet) && !used[a] && !tried[a] }
		addr := own
		if !free(addr) {
			var ok bool
			if addr, ok = firstFree(ipx, n.subnet, free); !ok {
				if lastErr != nil {
					return netip.Addr{}, fmt.Errorf("network %s has no free address for MAC %s: %w", n.name, mac, lastErr)
				}
				return netip.Addr{}, fmt.Errorf("network %s has no free address for MAC %s: every one of its DHCP range has a guest", n.name, mac)
			}
		}
		entry := fmt.Sprintf("<host mac='%s' ip='%s'/>", mac, addr)
		err = l.NetworkUpdateCompat(nw, golibvirt.NetworkUpdateCommandAddLast, golibvirt.NetworkSectionIPDhcpHost, -1, entry,
			golibvirt.NetworkUpdateAffectLive|golibvirt.NetworkUpdateAffectConfig)
		if err == nil {
			return addr, nil
		}
		if !isCode(err, golibvirt.ErrOperationInvalid) {
			return netip.Addr{}, fmt.Errorf("reserve %s for MAC %s on network %s: %w", addr, mac, n.name, err)
		}
		// Another entry has the address (a concurrent install took it) or the MAC (a concurrent attempt
		// of this deployment): read the network again.
		tried[addr], lastErr = true, err
	}
	return netip.Addr{}, fmt.Errorf("reserve an address for MAC %s on network %s: %w", mac, n.name, lastErr)
}

// firstFree is the lowest address of the network's DHCP range (of the whole subnet when it has none) that
// free takes.
func firstFree(ipx *libvirtxml.NetworkIP, subnet netip.Prefix, free func(netip.Addr) bool) (netip.Addr, bool) {
	start, end := subnet.Masked().Addr(), broadcast(subnet)
	if ipx.DHCP != nil && len(ipx.DHCP.Ranges) > 0 {
		s, serr := netip.ParseAddr(ipx.DHCP.Ranges[0].Start)
		e, eerr := netip.ParseAddr(ipx.DHCP.Ranges[0].End)
		if serr == nil && eerr == nil && subnet.Contains(s) && subnet.Contains(e) {
			start, end = s, e
		}
	}
	for a := start; a.IsValid() && a.Compare(end) <= 0; a = a.Next() {
		if free(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// networkIP is the network's <ip> element of subnet.
func networkIP(l *golibvirt.Libvirt, nw golibvirt.Network, subnet netip.Prefix) (*libvirtxml.NetworkIP, error) {
	text, err := l.NetworkGetXMLDesc(nw, 0)
	if err != nil {
		return nil, fmt.Errorf("read network %s: %w", nw.Name, err)
	}
	var nx libvirtxml.Network
	if err := nx.Unmarshal(text); err != nil {
		return nil, fmt.Errorf("parse network %s: %w", nw.Name, err)
	}
	for i := range nx.IPs {
		one := libvirtxml.Network{IPs: nx.IPs[i : i+1]}
		if s := subnets(&one); len(s) == 1 && s[0] == subnet {
			return &nx.IPs[i], nil
		}
	}
	return nil, fmt.Errorf("network %s has no address in %s", nw.Name, subnet)
}

// releaseAddresses removes the DHCP host entries of macs from the project's network. An entry or a
// network already gone counts as removed.
func (p *Provider) releaseAddresses(l *golibvirt.Libvirt, projectID int64, macs ...string) error {
	nw, name, err := p.projectNetworkIfAny(l, projectID)
	if err != nil || name == "" {
		return err
	}
	flags := golibvirt.NetworkUpdateAffectConfig
	if active, err := l.NetworkIsActive(nw); err == nil && active != 0 {
		flags |= golibvirt.NetworkUpdateAffectLive
	}
	for _, mac := range macs {
		if mac == "" {
			continue
		}
		err := l.NetworkUpdateCompat(nw, golibvirt.NetworkUpdateCommandDelete, golibvirt.NetworkSectionIPDhcpHost, -1,
			fmt.Sprintf("<host mac='%s'/>", strings.ToLower(mac)), flags)
		switch {
		case err == nil, isCode(err, golibvirt.ErrNoNetwork):
		case isCode(err, golibvirt.ErrOperationInvalid) && !hasHost(l, nw, mac):
			// libvirt found no entry to delete: a retry, or a guest that never had one.
		default:
			return fmt.Errorf("remove the DHCP host entry of MAC %s from network %s: %w", mac, name, err)
		}
	}
	return nil
}

// hasHost reports whether the network has (or may have: it could not be read) a DHCP host entry for mac.
func hasHost(l *golibvirt.Libvirt, nw golibvirt.Network, mac string) bool {
	text, err := l.NetworkGetXMLDesc(nw, 0)
	if err != nil {
		return !isCode(err, golibvirt.ErrNoNetwork)
	}
	var nx libvirtxml.Network
	if err := nx.Unmarshal(text); err != nil {
		return true
	}
	for _, ip := range nx.IPs {
		if ip.DHCP == nil {
			continue
		}
		for _, h := range ip.DHCP.Hosts {
			if strings.EqualFold(h.MAC, mac) {
				return true
			}
		}
	}
	return false
}
