package libvirt

import (
	"net/netip"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// TestGuestAddress: the address a guest's agent reports is taken only inside the guest's network, and
// never as the network's own, gateway (the VM host) or broadcast address.
func TestGuestAddress(t *testing.T) {
	subnet := netip.MustParsePrefix("10.214.7.0/24")
	for addr, want := range map[string]bool{
		"10.214.7.23":     true,
		"10.214.7.254":    true,
		"10.214.7.0":      false, // the network
		"10.214.7.1":      false, // the gateway: the VM host
		"10.214.7.255":    false, // broadcast
		"10.214.8.23":     false, // another project's network
		"169.254.169.254": false, // cloud metadata
		"127.0.0.1":       false,
		"8.8.8.8":         false, // anything public the guest would like the marketplace to show
		"fd00::1":         false,
	} {
		if got := guestAddress(netip.MustParseAddr(addr), subnet); got != want {
			t.Errorf("guestAddress(%s, %s) = %v, want %v", addr, subnet, got, want)
		}
	}
}

// TestPickSubnet: subnets are taken from the range, wrapping from the starting place, skipping those in
// use; bridges named after them fit Linux's 15 characters.
func TestPickSubnet(t *testing.T) {
	all := netip.MustParsePrefix("10.214.0.0/16")
	used := map[string]bool{"10.214.255.0/24": true, "10.214.0.0/24": true}
	got, ok := pickSubnet(all, 24, 255, func(s netip.Prefix) bool { return !used[s.String()] })
	if !ok || got.String() != "10.214.1.0/24" {
		t.Fatalf("pickSubnet = %v %v, want 10.214.1.0/24 (255 and 0 are used, the search wraps)", got, ok)
	}
	if _, ok := pickSubnet(netip.MustParsePrefix("10.214.0.0/23"), 24, 0, func(netip.Prefix) bool { return false }); ok {
		t.Fatal("pickSubnet found a subnet in a full range")
	}
	if b := bridgeName(netip.MustParsePrefix("10.214.255.0/24")); len(b) > 15 || b != "mpbr0ad6ff00" {
		t.Fatalf("bridgeName = %q", b)
	}
	if b := broadcast(netip.MustParsePrefix("10.214.4.0/22")); b.String() != "10.214.7.255" {
		t.Fatalf("broadcast = %s", b)
	}
	nx := libvirtxml.Network{IPs: []libvirtxml.NetworkIP{{Address: "10.213.0.1", Netmask: "255.255.255.0"}, {Address: "10.214.3.1", Prefix: 24}}}
	if s := subnets(&nx); len(s) != 2 || s[0].String() != "10.213.0.0/24" || s[1].String() != "10.214.3.0/24" {
		t.Fatalf("subnets = %v", s)
	}
}

// TestGuestFilters: the filters parse, the root references the others, an extra denied range is among
// the rules and changes the filters' name (a filter is never redefined under running guests).
func TestGuestFilters(t *testing.T) {
	defs, root := guestFilters(nil)
	defs2, root2 := guestFilters([]netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")})
	if root == root2 || len(root) > 20 {
		t.Fatalf("filter names %q and %q", root, root2)
	}
	if !strings.Contains(defs2[len(defs2)-1], "dstipaddr='203.0.113.7' dstipmask='32'") {
		t.Fatal("the denied range is not in the root filter")
	}
	for _, def := range defs {
		var fx libvirtxml.NWFilter
		if err := fx.Unmarshal(def); err != nil {
			t.Fatalf("%v: %s", err, def)
		}
		if !strings.HasPrefix(fx.Name, root) {
			t.Fatalf("filter %s is not named after %s", fx.Name, root)
		}
	}
}

// TestGuestMAC: a deployment's MAC is libvirt's locally administered 52:54:00, the same at every call,
// and consecutive deployments of one marketplace never share one.
func TestGuestMAC(t *testing.T) {
	p := &Provider{cfg: Config{Instance: "0f4cac21-880c-4e6f-9d3a-6c1b2a3f4e5d"}}
	seen := map[string]bool{}
	for id := int64(1); id <= 1000; id++ {
		mac := p.guestMAC(id)
		if !strings.HasPrefix(mac, "52:54:00:") || len(mac) != 17 || mac != p.guestMAC(id) || seen[mac] {
			t.Fatalf("guestMAC(%d) = %q (seen before: %v)", id, mac, seen[mac])
		}
		seen[mac] = true
	}
}

// TestFirstFree: a guest's address is the lowest free one of the network's DHCP range, never the
// gateway, and none when the range is full.
func TestFirstFree(t *testing.T) {
	subnet := netip.MustParsePrefix("10.214.7.0/24")
	ipx := &libvirtxml.NetworkIP{DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: "10.214.7.2", End: "10.214.7.254"}}}}
	taken := map[string]bool{"10.214.7.2": true, "10.214.7.3": true}
	free := func(a netip.Addr) bool { return guestAddress(a, subnet) && !taken[a.String()] }
	if a, ok := firstFree(ipx, subnet, free); !ok || a.String() != "10.214.7.4" {
		t.Fatalf("firstFree = %v %v, want 10.214.7.4", a, ok)
	}
	if a, ok := firstFree(&libvirtxml.NetworkIP{}, subnet, func(a netip.Addr) bool { return guestAddress(a, subnet) }); !ok || a.String() != "10.214.7.2" {
		t.Fatalf("firstFree without a range = %v %v, want 10.214.7.2 (not the network nor its gateway)", a, ok)
	}
	if a, ok := firstFree(ipx, subnet, func(netip.Addr) bool { return false }); ok {
		t.Fatalf("firstFree in a full range = %v", a)
	}
}
