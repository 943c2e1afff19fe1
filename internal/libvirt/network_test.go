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
