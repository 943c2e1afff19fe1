package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
)

// TestClassify covers every form an internal address takes; each row must be refused (or, for public
// addresses, let through).
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want string // a word of the reason; "" for public
	}{
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "NAT64"},
		{"64:ff9b::a9fe:a9fe", "NAT64"},
		{"2002:7f00:1::1", "6to4"},
		{"169.254.169.254", "link-local"},
		{"::ffff:169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"10.0.0.1", "private"},
		{"172.16.5.4", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.1.2.3", "private"},
		{"fc00::1", "unique-local"},
		{"fd00:ec2::254", "unique-local"},
		{"fec0::1", "site-local"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"100.100.100.200", "carrier-grade NAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.170", "IETF"},
		{"198.18.0.1", "benchmarking"},
		{"100::1", "discard"},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"172.32.0.1", ""},
		{"100.128.0.1", ""},
		{"::ffff:8.8.8.8", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""},
	} {
		got := Classify(netip.MustParseAddr(tc.addr))
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("Classify(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestParseHost checks which URL hosts are read as addresses: every numbers-only form must be
// suspicious, names must not.
func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		host    string
		addr    string
		numeric bool
	}{
		{"127.0.0.1", "127.0.0.1", false},
		{"127.0.0.1.", "127.0.0.1", false},
		{"::ffff:127.0.0.1", "::ffff:127.0.0.1", false},
		{"[::1]", "::1", false},
		{"2130706433", "", true},
		{"0x7f000001", "", true},
		{"0X7F000001", "", true},
		{"017700000001", "", true},
		{"0177.0.0.1", "", true},
		{"0x7f.0.0.1", "", true},
		{"127.1", "", true},
		{"127.0.1", "", true},
		{"0", "", true},
		{"localhost", "", false},
		{"example.com", "", false},
		{"1e100.net", "", false},
		{"0x7g.example", "", false},
		{"1.2.3.4.5", "", false},
	} {
		a, numeric := parseHost(tc.host)
		got := ""
		if a.IsValid() {
			got = a.String()
		}
		if got != tc.addr || numeric != tc.numeric {
			t.Errorf("parseHost(%q) = %q, %v; want %q, %v", tc.host, got, numeric, tc.addr, tc.numeric)
		}
	}
}

func newGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	g, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestCheckURL is the publish-time check: every form of a forbidden host is refused with a
// *RefusedError naming MARKETPLACE_FETCH_ALLOW; allowed and public hosts pass.
func TestCheckURL(t *testing.T) {
	g := newGuard(t, Config{Allow: "127.0.0.1:8879, 10.1.0.0/16, localhost:5000", Forbid: []string{"https://8.8.4.4:6443"}})
	ctx := context.Background()
	for _, tc := range []struct {
		url     string
		refused string // part of the message; "" when allowed
	}{
		{"http://127.0.0.1:8080", "loopback"},
		{"http://127.0.0.1", "loopback"},
		{"http://localhost:8080/charts", "resolves only to"},
		{"http://LOCALHOST./", "resolves only to"},
		{"http://2130706433:8080", "non-standard form"},
		{"http://0x7f000001/", "non-standard form"},
		{"http://0177.0.0.1/", "non-standard form"},
		{"http://127.1/", "non-standard form"},
		{"http://[::ffff:127.0.0.1]:8080", "loopback"},
		{"http://[::1]/", "loopback"},
		{"http://[fe80::1%25eth0]/", "link-local"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"https://192.168.0.10/charts", "private"},
		{"oci://10.0.0.5:5000/charts", "private"},
		{"oci://[fd00::5]/charts", "unique-local"},
		{"https://8.8.4.4:443/", "API server"},
		{"http://0.0.0.0:8879/", "unspecified"},
		{"http://127.0.0.1:8879", ""},
		{"http://127.0.0.1:8879/sub/path", ""},
		{"http://[::ffff:127.0.0.1]:8879", ""},
		{"http://localhost:5000", ""},
		{"oci://10.1.2.3/charts", ""},
		{"https://8.8.8.8/charts", ""},
		{"https://no-such-host.invalid/charts", ""}, // not resolvable now: checked when dialled
	} {
		err := g.CheckURL(ctx, tc.url)
		if tc.refused == "" {
			if err != nil {
				t.Errorf("CheckURL(%s): %v, want allowed", tc.url, err)
			}
			continue
		}
		var refused *RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("CheckURL(%s) = %v, want a *RefusedError", tc.url, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.refused) || !strings.Contains(err.Error(), AllowSetting) {
			t.Errorf("CheckURL(%s) = %q, want it to say %q and name %s", tc.url, err, tc.refused, AllowSetting)
		}
	}
}

// TestAllowEntries checks that a bad MARKETPLACE_FETCH_ALLOW entry is an error naming it.
func TestAllowEntries(t *testing.T) {
	for _, tc := range []struct{ allow, want string }{
		{"127.0.0.1", `"127.0.0.1": must be host:port`},
		{"10.0.0.0/33", `"10.0.0.0/33": not a CIDR`},
		{"127.0.0.1:http", `port "http" is not a number`},
		{"127.0.0.1:0", `port "0" is not a number`},
		{"127.0.0.1:8879,2130706433:80", `"2130706433:80": 2130706433 is an IP address in a non-standard form`},
		{"no-such-host.invalid:80", `"no-such-host.invalid:80": resolve no-such-host.invalid`},
	} {
		_, err := New(context.Background(), Config{Allow: tc.allow})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), AllowSetting) {
			t.Errorf("allow %q: %v, want an error saying %q", tc.allow, err, tc.want)
		}
	}
	if _, err := New(context.Background(), Config{Allow: " 127.0.0.1:1 , ,[::1]:2,localhost:3,192.168.0.0/24"}); err != nil {
		t.Errorf("valid entries: %v", err)
	}
}

// canary is a server on loopback that counts requests and answers a secret.
func canary(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		io.WriteString(w, "canary-secret")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// TestGetRefusesWhatItDials fetches through the guard: loopback by address and by name, a redirect from
// an allowed server to loopback, all refused at the dial with a *RefusedError, the canary never reached.
func TestGetRefusesWhatItDials(t *testing.T) {
	can, hits := canary(t)
	port := can.Listener.Addr().(*net.TCPAddr).Port
	allowed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, can.URL+"/x", http.StatusFound)
		case "/redirect-by-name":
			http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/x", port), http.StatusFound)
		case "/redirect-file":
			http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
		case "/big":
			w.Write(make([]byte, 2000))
		case "/big-chunked":
			w.(http.Flusher).Flush()
			for range 20 {
				w.Write(make([]byte, 100))
			}
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer allowed.Close()
	g := newGuard(t, Config{Allow: allowed.Listener.Addr().String(), MaxBytes: 1000})
	ctx := context.Background()

	if body, err := g.Get(ctx, allowed.URL+"/", "test page"); err != nil || string(body) != "ok" {
		t.Fatalf("allowed server: %q, %v", body, err)
	}
	for _, u := range []string{
		can.URL + "/",
		fmt.Sprintf("http://localhost:%d/", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
		allowed.URL + "/redirect",
		allowed.URL + "/redirect-by-name",
	} {
		_, err := g.Get(ctx, u, "test page")
		var refused *RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("Get %s: %v, want a *RefusedError", u, err)
		}
		if err != nil && strings.Contains(err.Error(), "canary-secret") {
			t.Errorf("Get %s: the error quotes the body: %v", u, err)
		}
	}
	if _, err := g.Get(ctx, allowed.URL+"/redirect-file", "test page"); err == nil || !strings.Contains(err.Error(), "only http and https") {
		t.Errorf("redirect to file: %v", err)
	}
	for _, path := range []string{"/big", "/big-chunked"} {
		_, err := g.Get(ctx, allowed.URL+path, "test page")
		var tooLarge *TooLargeError
		if !errors.As(err, &tooLarge) || !strings.Contains(err.Error(), "is larger than the limit of 1000 bytes") {
			t.Errorf("Get %s: %v, want larger than the limit", path, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the canary got %d requests", n)
	}
}

// TestForbidAPIServer checks that the API server's address is refused on every port even when an
// allowed range covers it, unless its exact address and port are allowed.
func TestForbidAPIServer(t *testing.T) {
	g := newGuard(t, Config{Allow: "8.8.4.0/24,8.8.4.4:5000", Forbid: []string{"8.8.4.4:6443"}})
	for _, tc := range []struct {
		addr    string
		refused bool
	}{
		{"8.8.4.4:6443", true},
		{"8.8.4.4:10250", true},
		{"8.8.4.4:5000", false},
		{"8.8.4.5:6443", false},
		{"[::ffff:8.8.4.4]:6443", true},
	} {
		err := g.check(netip.MustParseAddrPort(tc.addr))
		if (err != nil) != tc.refused {
			t.Errorf("check(%s) = %v, want refused %v", tc.addr, err, tc.refused)
		}
	}
}
