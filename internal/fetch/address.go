package fetch

import (
	"net/netip"
	"strings"
)

// Classify says why the marketplace must not fetch from address a on a publisher's behalf: "loopback",
// "private", "link-local" and so on, or "" for an address on the public internet. IPv4-mapped and
// IPv4-compatible IPv6 forms, and NAT64 and 6to4 addresses, are classified by the IPv4 address they
// carry, so ::ffff:127.0.0.1 is loopback like 127.0.0.1.
func Classify(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return classify4(a)
	}
	// IPv6 forms that carry an IPv4 address a gateway or the host itself may turn into it.
	for _, embedding := range []struct {
		prefix string
		offset int // byte where the IPv4 address starts
		what   string
	}{
		{"::/96", 12, "IPv4-compatible IPv6 of a "},
		{"64:ff9b::/96", 12, "NAT64 of a "},
		{"64:ff9b:1::/48", 12, "NAT64 of a "},
		{"2002::/16", 2, "6to4 of a "},
	} {
		if netip.MustParsePrefix(embedding.prefix).Contains(a) {
			b := a.As16()
			v4 := netip.AddrFrom4([4]byte(b[embedding.offset : embedding.offset+4]))
			if a.IsLoopback() || a.IsUnspecified() {
				break
			}
			if reason := classify4(v4); reason != "" {
				return embedding.what + reason
			}
		}
	}
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate():
		return "unique-local (private)"
	}
	for _, r := range []struct{ prefix, what string }{
		{"fec0::/10", "site-local (private)"},
		{"100::/64", "discard-only"},
		{"::/96", "IPv4-compatible IPv6"},
	} {
		if netip.MustParsePrefix(r.prefix).Contains(a) {
			return r.what
		}
	}
	return ""
}

// classify4 is Classify for an IPv4 address.
func classify4(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local (where cloud metadata services answer)"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast():
		return "multicast"
	}
	for _, r := range []struct{ prefix, what string }{
		{"0.0.0.0/8", "unspecified"},
		{"100.64.0.0/10", "shared (carrier-grade NAT)"},
		{"192.0.0.0/24", "IETF protocol assignment"},
		{"198.18.0.0/15", "benchmarking (private)"},
		{"255.255.255.255/32", "broadcast"},
		{"240.0.0.0/4", "reserved"},
	} {
		if netip.MustParsePrefix(r.prefix).Contains(a) {
			return r.what
		}
	}
	return ""
}

// parseHost reads the host of a URL the way a resolver that accepts every form of IPv4 address would:
// it returns the address for a literal IP, numeric == true for a host that is numbers only (decimal,
// octal or hex parts, such as 2130706433, 0x7f000001, 0177.0.0.1 or 127.1), which Go's resolver does
// not read as an address but inet_aton, curl and some proxies do, and neither for a name.
func parseHost(host string) (addr netip.Addr, numeric bool) {
	host = strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return a, false
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	for _, p := range parts {
		if !numericPart(p) {
			return netip.Addr{}, false
		}
	}
	return netip.Addr{}, true
}

// numericPart reports whether p is a decimal, octal or 0x-hex number, as inet_aton reads the parts of
// an IPv4 address.
func numericPart(p string) bool {
	if p == "" {
		return false
	}
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(strings.ToLower(p), "0x"); ok {
		p, digits = rest, "0123456789abcdef"
		if p == "" {
			return true // "0x" alone is 0 to inet_aton
		}
	}
	for _, c := range strings.ToLower(p) {
		if !strings.ContainsRune(digits, c) {
			return false
		}
	}
	return true
}
