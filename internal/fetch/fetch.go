// Package fetch is the one guard every outbound fetch made for a publisher goes through: chart
// repository indexes, chart archives, OCI registries. A publisher's URL is fetched from inside the
// operator's network, so the guard checks the address actually dialled — after DNS, on every redirect,
// in the dialer itself — and refuses loopback, link-local (cloud metadata), private, unique-local,
// multicast and other special addresses, and the Kubernetes API server, unless the operator allowed the
// address (MARKETPLACE_FETCH_ALLOW). It never uses the environment's proxy, caps what a download may
// weigh, and its errors never carry what a refused or oversized response said.
//
// This package imports nothing of the marketplace.
package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AllowSetting is the environment variable that allows addresses the guard refuses by default.
const AllowSetting = "MARKETPLACE_FETCH_ALLOW"

// MaxBytesSetting is the environment variable that caps the size of a download.
const MaxBytesSetting = "MARKETPLACE_FETCH_MAX_BYTES"

// DefaultMaxBytes is the default cap of one download: 20 MiB, well above any chart archive or index.
const DefaultMaxBytes = 20 << 20

// maxRedirects is how many redirects one fetch follows.
const maxRedirects = 5

// Config is what the guard is built from.
type Config struct {
	// Allow is MARKETPLACE_FETCH_ALLOW: comma-separated entries, each host:port (an IP and port, or a name
	// and port; a name is resolved when the guard is built) or a CIDR (10.20.0.0/16), that the guard lets
	// through although their addresses are private, loopback and so on.
	Allow string
	// Forbid are further hosts, host:port or URLs whose addresses are refused on every port unless an
	// Allow entry names that address and port exactly: the Kubernetes API server.
	Forbid []string
	// MaxBytes caps one response body; 0 means DefaultMaxBytes.
	MaxBytes int64
	// Timeout bounds one whole fetch, redirects and body included; 0 means one minute.
	Timeout time.Duration
	// Resolver resolves names; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Guard checks and makes outbound fetches for publishers. It is safe for concurrent use.
type Guard struct {
	allowAddrs  map[netip.AddrPort]bool // exact address and port
	allowRanges []netip.Prefix
	forbidAddrs map[netip.Addr]bool // every port of the API server's addresses
	maxBytes    int64
	timeout     time.Duration
	resolver    *net.Resolver
	transport   *http.Transport
}

// New builds a Guard from cfg, resolving the names of its allow and forbid entries with ctx. An entry
// that cannot be read or resolved is an error that names the entry.
func New(ctx context.Context, cfg Config) (*Guard, error) {
	g := &Guard{
		allowAddrs:  map[netip.AddrPort]bool{},
		forbidAddrs: map[netip.Addr]bool{},
		maxBytes:    cfg.MaxBytes,
		timeout:     cfg.Timeout,
		resolver:    cfg.Resolver,
	}
	if g.maxBytes < 0 {
		return nil, fmt.Errorf("%s must not be negative, got %d", MaxBytesSetting, g.maxBytes)
	}
	if g.maxBytes == 0 {
		g.maxBytes = DefaultMaxBytes
	}
	if g.timeout <= 0 {
		g.timeout = time.Minute
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	for entry := range strings.SplitSeq(cfg.Allow, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if err := g.allow(ctx, entry); err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", AllowSetting, entry, err)
		}
	}
	for _, host := range cfg.Forbid {
		if err := g.forbid(ctx, host); err != nil {
			return nil, fmt.Errorf("address to refuse %q: %w", host, err)
		}
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, ControlContext: g.control}
	g.transport = &http.Transport{
		Proxy:                 nil, // never the environment's proxy: it would dial for us, unchecked
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          64,
	}
	return g, nil
}

// allow adds one MARKETPLACE_FETCH_ALLOW entry.
func (g *Guard) allow(ctx context.Context, entry string) error {
	if strings.Contains(entry, "/") {
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return fmt.Errorf("not a CIDR such as 10.20.0.0/16: %w", err)
		}
		g.allowRanges = append(g.allowRanges, p.Masked())
		return nil
	}
	host, portText, err := net.SplitHostPort(entry)
	if err != nil {
		return fmt.Errorf("must be host:port (such as 127.0.0.1:8879 or registry.internal:5000) or a CIDR (such as 10.20.0.0/16)")
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", portText)
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		g.allowAddrs[netip.AddrPortFrom(a, uint16(port))] = true
	}
	return nil
}

// forbid adds the addresses of host (a name or IP, with or without a port, or a URL).
func (g *Guard) forbid(ctx context.Context, host string) error {
	if u, err := url.Parse(host); err == nil && u.Host != "" {
		host = u.Host
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	addrs, err := g.resolve(ctx, host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		g.forbidAddrs[a] = true
	}
	return nil
}

// resolve returns the addresses of a host name or literal IP, unmapped.
func (g *Guard) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, numeric := parseHost(host); a.IsValid() {
		return []netip.Addr{a.WithZone("").Unmap()}, nil
	} else if numeric {
		return nil, fmt.Errorf("%s is an IP address in a non-standard form: write it as a dotted IPv4 or an IPv6 address", host)
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	for i, a := range addrs {
		addrs[i] = a.WithZone("").Unmap()
	}
	return addrs, nil
}

// RefusedError is a fetch, or a URL, the guard refuses. It says which address and why, never what the
// address would have answered.
type RefusedError struct {
	// Host is what was asked for: a URL's host, or an address and port being dialled.
	Host string
	// Address is the refused address, when Host is a name that resolved to it.
	Address string
	// Reason is why: the class of the address ("loopback", "private", ...).
	Reason string
}

func (e *RefusedError) Error() string {
	what := e.Host
	if e.Address != "" && e.Address != e.Host {
		what += " (" + e.Address + ")"
	}
	return fmt.Sprintf("the marketplace does not fetch from %s: %s; the operator can allow it with %s", what, e.Reason, AllowSetting)
}

// check decides one address and port about to be dialled.
func (g *Guard) check(ap netip.AddrPort) error {
	a := ap.Addr().WithZone("").Unmap()
	exact := netip.AddrPortFrom(a, ap.Port())
	if g.allowAddrs[exact] {
		return nil
	}
	if g.forbidAddrs[a] {
		return &RefusedError{Host: exact.String(), Reason: "the Kubernetes API server's address"}
	}
	for _, p := range g.allowRanges {
		if p.Contains(a) {
			return nil
		}
	}
	if reason := Classify(a); reason != "" {
		return &RefusedError{Host: exact.String(), Reason: "a " + reason + " address"}
	}
	return nil
}

// control is the dialer's hook: it sees the address after DNS resolution, for every connection of
// every request and redirect, so neither DNS rebinding nor a redirect gets past it.
func (g *Guard) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("the marketplace fetches over TCP only, not %s", network)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: not an address and port: %w", address, err)
	}
	return g.check(ap)
}

// CheckURL refuses, at publish time, a URL the guard would refuse to fetch from whatever it resolves to
// later: a host that is a forbidden literal IP, a numbers-only host (2130706433, 0x7f.1: other resolvers
// read those as addresses), or a name that resolves only to forbidden addresses. A name that does not
// resolve now is let through: the fetch checks again when it dials. The error is a *RefusedError, or
// a plain error for a URL that cannot be parsed.
func (g *Guard) CheckURL(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", rawURL, err)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%q has no host", rawURL)
	}
	ports, err := urlPorts(u)
	if err != nil {
		return err
	}
	a, numeric := parseHost(host)
	switch {
	case numeric:
		return &RefusedError{Host: host, Reason: "an IP address written in a non-standard form (decimal, octal or hex); write it as a dotted IPv4 or an IPv6 address"}
	case a.IsValid():
		return g.checkPorts([]netip.Addr{a}, ports)
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", name)
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// RFC 6761: whatever DNS says, resolvers may answer loopback for these names.
		addrs, err = []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}, nil
	}
	if err != nil || len(addrs) == 0 {
		return nil
	}
	if err := g.checkPorts(addrs, ports); err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			refused.Address, refused.Host = refused.Host, host
			refused.Reason = "it resolves only to addresses the marketplace does not fetch from, such as " + refused.Reason
		}
		return err
	}
	return nil
}

// checkPorts passes when one of addrs is allowed on one of ports, and otherwise returns the first
// refusal.
func (g *Guard) checkPorts(addrs []netip.Addr, ports []uint16) error {
	var first error
	for _, a := range addrs {
		for _, p := range ports {
			err := g.check(netip.AddrPortFrom(a, p))
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

// urlPorts are the ports a fetch of u may dial: its explicit port, or its scheme's defaults (an OCI
// registry is HTTPS, or plain HTTP when the operator says so).
func urlPorts(u *url.URL) ([]uint16, error) {
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("port %q of %s is not a number from 0 to 65535", p, u.Redacted())
		}
		return []uint16{uint16(n)}, nil
	}
	switch u.Scheme {
	case "http":
		return []uint16{80}, nil
	case "https":
		return []uint16{443}, nil
	default:
		return []uint16{443, 80}, nil
	}
}
