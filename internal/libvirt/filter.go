package libvirt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// Every guest's interface is filtered by libvirt's nwfilter (ebtables for frames, iptables with
// connection tracking for addresses and ports), with the rules of clean-traffic and the egress of a pod
// of the Kubernetes side:
//   - frames: only from the interface's own MAC; IPv4 only from the guest's fixed address (its DHCP
//     host entry's, given to the filter as $IP: address.go); ARP only with that
//     MAC and address; no DHCP server (nothing sent from port 67); nothing but IPv4 and ARP (no IPv6,
//     hence no fc00::/7 nor fe80::/10);
//   - from the guest: to the VM host (its gateway) only DHCP and DNS; to its project's subnet (its
//     peers); not to loopback, link-local (cloud metadata), private, CGNAT, multicast or reserved
//     addresses, nor to VM_DENY_NETWORKS; anything else (the internet, through the network's NAT);
//   - to the guest: replies, and connections from its project's subnet (its peers, and the VM host,
//     whose connections to a guest are how an operator reaches it).
//
// The filters are host-wide: they are named after a digest of their rules, so two marketplaces (or two
// versions) on one host each use their own and a filter is never redefined under a running guest.

// deniedNetworks are the destinations a guest may not reach outside its own subnet, as the Kubernetes
// NetworkPolicy refuses them to pods, with this network's multicast and reserved ranges.
func deniedNetworks() []string {
	return []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.168.0.0/16", "224.0.0.0/4", "240.0.0.0/4"}
}

// guestFilters are the nwfilter definitions (referenced ones first) and the name of the one an
// interface references. deny adds destinations to deniedNetworks.
func guestFilters(deny []netip.Prefix) (defs []string, root string) {
	var egress strings.Builder
	for _, cidr := range deniedNetworks() {
		fmt.Fprintf(&egress, "<rule action='drop' direction='out' priority='400'><all dstipaddr='%s' dstipmask='%s'/></rule>\n",
			strings.Split(cidr, "/")[0], strings.Split(cidr, "/")[1])
	}
	for _, p := range deny {
		fmt.Fprintf(&egress, "<rule action='drop' direction='out' priority='400'><all dstipaddr='%s' dstipmask='%d'/></rule>\n",
			p.Masked().Addr(), p.Bits())
	}
	parts := []string{
		// MAC spoofing
		`<filter name='%[1]s-mac' chain='mac' priority='-800'>
<rule action='return' direction='out'><mac srcmacaddr='$MAC'/></rule>
<rule action='drop' direction='out'><mac/></rule>
</filter>`,
		// IP spoofing and DHCP servers
		`<filter name='%[1]s-ipv4' chain='ipv4-ip' priority='-710'>
<rule action='drop' direction='out' priority='50'><ip protocol='udp' srcportstart='67'/></rule>
<rule action='return' direction='out' priority='100'><ip srcipaddr='0.0.0.0' protocol='udp' dstportstart='67'/></rule>
<rule action='return' direction='out' priority='500'><ip srcipaddr='$IP'/></rule>
<rule action='drop' direction='out' priority='1000'/>
</filter>`,
		// ARP spoofing
		`<filter name='%[1]s-arp' chain='arp-mp' priority='-500'>
<rule action='drop' direction='out' priority='300'><arp match='no' arpsrcmacaddr='$MAC'/></rule>
<rule action='return' direction='out' priority='400'><arp arpsrcipaddr='$IP'/></rule>
<rule action='drop' direction='out' priority='1000'/>
</filter>`,
		`<filter name='%[1]s' chain='root'>
<filterref filter='%[1]s-mac'/>
<filterref filter='%[1]s-ipv4'/>
<filterref filter='%[1]s-arp'/>
<rule action='accept' direction='inout' priority='-650'><mac protocolid='ipv4'/></rule>
<rule action='accept' direction='inout' priority='-450'><mac protocolid='arp'/></rule>
<rule action='drop' direction='inout' priority='1000'><mac/></rule>
<rule action='accept' direction='inout' priority='-100'><all state='ESTABLISHED,RELATED'/></rule>
<rule action='accept' direction='out' priority='100'><udp dstportstart='67'/></rule>
<rule action='accept' direction='out' priority='110'><udp dstipaddr='$GATEWAY' dstportstart='53'/></rule>
<rule action='accept' direction='out' priority='110'><tcp dstipaddr='$GATEWAY' dstportstart='53'/></rule>
<rule action='drop' direction='out' priority='200'><all dstipaddr='$GATEWAY'/></rule>
<rule action='accept' direction='out' priority='300'><all dstipaddr='$PEERNET' dstipmask='$PEERMASK'/></rule>
` + egress.String() + `<rule action='accept' direction='out' priority='500'><all/></rule>
<rule action='accept' direction='in' priority='300'><all srcipaddr='$PEERNET' srcipmask='$PEERMASK'/></rule>
<rule action='drop' direction='in' priority='1000'><all/></rule>
</filter>`,
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\n")))
	root = "mp-guest-" + hex.EncodeToString(sum[:4])
	for _, part := range parts {
		defs = append(defs, fmt.Sprintf(part, root))
	}
	return defs, root
}

// ensureFilters defines the guest filters that are missing. One of the same name has the same rules.
func ensureFilters(l *golibvirt.Libvirt, defs []string) error {
	for _, def := range defs {
		var fx libvirtxml.NWFilter
		if err := fx.Unmarshal(def); err != nil {
			return fmt.Errorf("guest filter: %w", err)
		}
		if _, err := l.NwfilterLookupByName(fx.Name); err == nil {
			continue
		} else if !isCode(err, golibvirt.ErrNoNwfilter) {
			return fmt.Errorf("look up network filter %s (is libvirt's nwfilter driver there? make vmhost installs it): %w", fx.Name, err)
		}
		if _, err := l.NwfilterDefineXML(def); err != nil {
			if _, lerr := l.NwfilterLookupByName(fx.Name); lerr == nil {
				continue // defined by a concurrent start
			}
			return fmt.Errorf("define network filter %s: %w", fx.Name, err)
		}
	}
	return nil
}

// filterRef is the filter reference of an interface on network n whose DHCP host entry gives it ip. The
// address is given, not learned (CTRL_IP_LEARNING=none): libvirt's learning from the guest's DHCP made
// every destroy of a guest seconds longer, and left the guest's traffic undecided until its first lease.
func (p *Provider) filterRef(n projectNetwork, ip netip.Addr) *libvirtxml.DomainInterfaceFilterRef {
	gw := n.gateway().String()
	return &libvirtxml.DomainInterfaceFilterRef{Filter: p.filter, Parameters: []libvirtxml.DomainInterfaceFilterParam{
		{Name: "CTRL_IP_LEARNING", Value: "none"}, {Name: "IP", Value: ip.String()}, {Name: "GATEWAY", Value: gw},
		{Name: "PEERNET", Value: n.subnet.Masked().Addr().String()}, {Name: "PEERMASK", Value: fmt.Sprint(n.subnet.Bits())},
	}}
}
