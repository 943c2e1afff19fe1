package main

import (
	"encoding/xml"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marketplace/marketplace/internal/testenv"
)

// guestRun runs a shell command inside a test guest through its /cgi-bin/run, from the VM host's
// namespace (a connection the host opens to the guest), and returns the guest's answer: "exit=N" and the
// output.
func guestRun(t *testing.T, ip, cmd string) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tenv.VMNetNS, "curl", "-sS", "-m", "30",
		"http://"+ip+"/cgi-bin/run?"+url.QueryEscape(cmd)).CombinedOutput()
	if err != nil {
		t.Fatalf("run %q in the guest at %s: %v: %s", cmd, ip, err, out)
	}
	return string(out)
}

// reaches reports whether the guest at from fetches url (busybox wget, a short timeout), and what it got.
func reaches(t *testing.T, from, url string) (bool, string) {
	t.Helper()
	out := guestRun(t, from, "timeout 6 wget -q -O - "+url) // (busybox 1.35 wget -T crashes)
	return strings.HasPrefix(out, "exit=0"), out
}

// hostListener serves a page on port on every address of the VM host's namespace, with two more of its
// addresses: cloud metadata's and a private one outside every project. It is what a guest must not reach.
func hostListener(t *testing.T, port int, secret string) (metadata, private string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(secret+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := testenv.Name("mpt")
	if len(link) > 15 {
		link = link[:15]
	}
	metadata, private = "169.254.169.254", "192.168.231.1"
	netns := func(args ...string) {
		if out, err := exec.Command("ip", append([]string{"-n", tenv.VMNetNS}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	netns("link", "add", link, "type", "bridge") // a bridge with no port: addresses of the host, no more (no dummy driver here)
	t.Cleanup(func() { exec.Command("ip", "-n", tenv.VMNetNS, "link", "del", link).Run() })
	netns("addr", "add", metadata+"/32", "dev", link)
	netns("addr", "add", private+"/32", "dev", link)
	netns("link", "set", link, "up")
	httpd := exec.Command("ip", "netns", "exec", tenv.VMNetNS, "busybox", "httpd", "-f", "-p", fmt.Sprint(port), "-h", dir)
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpd.Process.Kill(); httpd.Wait() })
	waitFor(t, 10*time.Second, "the host's listener", func() bool {
		out, err := exec.Command("ip", "netns", "exec", tenv.VMNetNS, "curl", "-sS", "-m", "2",
			fmt.Sprintf("http://%s:%d/", metadata, port)).CombinedOutput()
		return err == nil && strings.Contains(string(out), secret)
	})
	return metadata, private
}

// TestVMNetworkIsolation plays a tenant's guest against its neighbours and the VM host: two consumers'
// projects, two guests in one of them. Guests of one project reach each other; a guest of another
// project, the VM host (but for DHCP and DNS), cloud metadata's address and a private address outside
// its project are out of reach; a guest that takes another address or MAC loses its peers; the host
// still reaches every guest (as every command here does). The project's network goes with the project.
func TestVMNetworkIsolation(t *testing.T) {
	mp := startMarketplace(t, "serve", vmEnv(nil))
	tokA := publishVM(t, mp, "test-guest.qcow2") // consumer A, project 1
	_, tokB := mp.user(t, "tenant-b")
	mp.must(t, 201, "POST", "/api/user/project/new", tokB, map[string]any{"name": "other"})
	install := func(tok string, project int) int64 {
		return num(t, mp.must(t, 202, "POST", "/api/deployments/install", tok,
			map[string]any{"application_id": 1, "project_id": project}).JSON(t)["deploymentID"])
	}
	ids := []int64{install(tokA, 1), install(tokA, 1), install(tokB, 2)}
	toks := []string{tokA, tokA, tokB}
	ips := make([]string, len(ids))
	for i, id := range ids {
		ips[i] = mp.waitForStatus(t, toks[i], id, "installed", 4*time.Minute)["placement"].(map[string]any)["ip_address"].(string)
	}
	a1, a2, b1 := ips[0], ips[1], ips[2]
	t.Logf("project 1: %s, %s; project 2: %s", a1, a2, b1)
	for _, ip := range ips {
		waitFor(t, 30*time.Second, "the guest at "+ip+" to answer the host", func() bool { _, err := guestHTTP(t, ip, ""); return err == nil })
	}
	// Each guest's address is the one its project's network reserved for its MAC, and two guests of one
	// project have two.
	vms := make([]string, len(ids))
	for i, id := range ids {
		vms[i] = mp.must(t, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), toks[i], nil).JSON(t)["placement"].(map[string]any)["vm_name"].(string)
	}
	instance := strings.Split(strings.TrimPrefix(vms[0], "mp-"), "-")[0]
	networks := []string{"mp-" + instance + "-p1", "mp-" + instance + "-p1", "mp-" + instance + "-p2"}
	for i := range ids {
		mac := guestMAC(t, vms[i])
		if got := dhcpHosts(t, networks[i])[mac]; got != ips[i] {
			t.Errorf("guest %s (MAC %s) is at %s; its network %s reserves %q for it", vms[i], mac, ips[i], networks[i], got)
		}
	}
	if a1 == a2 {
		t.Errorf("both guests of project 1 are at %s", a1)
	}
	subnet := func(ip string) netip.Prefix { return netip.PrefixFrom(netip.MustParseAddr(ip), 24).Masked() }
	gateway := func(ip string) string { return subnet(ip).Addr().Next().String() }
	if subnet(a1) != subnet(a2) || subnet(a1) == subnet(b1) {
		t.Errorf("project 1's guests are on %s and %s, project 2's on %s: want one subnet per project", subnet(a1), subnet(a2), subnet(b1))
	}

	// One project's guests reach each other; two projects' never do.
	if ok, out := reaches(t, a1, "http://"+a2+"/"); !ok || !strings.Contains(out, "MARKETPLACE-HTTP-OK") {
		t.Errorf("a guest does not reach its project's other guest: %s", out)
	}
	if ok, out := reaches(t, a1, "http://"+b1+"/inputs.json"); ok {
		t.Errorf("a guest of project 1 reaches project 2's guest: %s", out)
	}
	if ok, out := reaches(t, b1, "http://"+a1+"/inputs.json"); ok {
		t.Errorf("a guest of project 2 reaches project 1's guest: %s", out)
	}

	// The VM host: DNS yes; anything else on its addresses no, nor cloud metadata or private addresses.
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	secret := testenv.Name("host-secret-")
	metadata, private := hostListener(t, port, secret)
	for _, target := range []string{gateway(a1), gateway(b1), metadata, private} {
		if ok, out := reaches(t, a1, fmt.Sprintf("http://%s:%d/", target, port)); ok || strings.Contains(out, secret) {
			t.Errorf("a guest reaches the VM host's port %d on %s: %s", port, target, out)
		}
	}
	if out := guestRun(t, a1, "nslookup marketplace.invalid "+gateway(a1)); strings.Contains(out, "no servers could be reached") || strings.Contains(out, "timed out") {
		t.Errorf("a guest cannot ask its gateway for DNS: %s", out)
	}

	// A guest that takes another address, or another MAC, no longer reaches its peer. The command runs
	// in the background (the guest is cut off meanwhile), puts its address back and leaves its result.
	iface := `IF=$(ls /sys/class/net | grep -v '^lo$' | head -1); `
	restore := fmt.Sprintf(`ip addr flush dev $IF; ip addr add %s/24 dev $IF; ip route add default via %s`, a2, gateway(a2))
	other := subnet(a2).Addr().As4()
	other[3] = 253
	if s := netip.AddrFrom4(other).String(); s == a1 || s == a2 {
		other[3] = 252
	}
	spoofs := map[string]string{
		"another address": fmt.Sprintf(`ip addr flush dev $IF; ip addr add %s/24 dev $IF; ip route add default via %s`,
			netip.AddrFrom4(other), gateway(a2)),
		"another MAC": `ip link set dev $IF down; ip link set dev $IF address 52:54:00:5f:00:01; ip link set dev $IF up; ` + restore,
	}
	for what, spoof := range spoofs {
		result := "/tmp/spoof-" + strings.ReplaceAll(what, " ", "-")
		oldMAC := strings.TrimSpace(strings.TrimPrefix(guestRun(t, a2, iface+"cat /sys/class/net/$IF/address"), "exit=0"))
		guestRun(t, a2, fmt.Sprintf(`setsid sh -c '%s%s; sleep 1; timeout 6 wget -q -O - http://%s/ > %s.out 2>&1; echo "exit=$?" >> %s.out; ip link set dev $IF down; ip link set dev $IF address %s; ip link set dev $IF up; %s; mv %s.out %s' > /dev/null 2>&1 &`,
			iface, spoof, a1, result, result, oldMAC, restore, result, result))
		var out string
		waitFor(t, time.Minute, "the guest's "+what+" probe", func() bool {
			b, err := exec.Command("ip", "netns", "exec", tenv.VMNetNS, "curl", "-sS", "-m", "5",
				"http://"+a2+"/cgi-bin/run?"+url.QueryEscape("cat "+result)).CombinedOutput()
			out = string(b)
			return err == nil && strings.HasPrefix(out, "exit=0")
		})
		t.Logf("the guest with %s fetching its peer: %s", what, out)
		if strings.Contains(out, "MARKETPLACE-HTTP-OK") || !strings.Contains(out, "exit=") {
			t.Errorf("a guest with %s reaches its peer: %s", what, out)
		}
		if ok, out := reaches(t, a2, "http://"+a1+"/"); !ok {
			t.Fatalf("the guest, its own address and MAC back, does not reach its peer: %s", out)
		}
	}

	// An upgrade (a reboot into a new definition) keeps the guest's address; it runs while project 2's
	// guest goes.
	mp.must(t, 201, "POST", "/api/apps/1/versions", tokA, map[string]any{"hourly_rate": 2,
		"deployment": map[string]any{"type": "vm", "image": "test-guest.qcow2", "cpu": "1 vCPU", "memory": "256Mi"},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}})
	mp.must(t, 202, "POST", fmt.Sprintf("/api/deployments/%d/upgrade", ids[0]), tokA, map[string]any{"version": 2})

	// A deleted guest's address goes with it, and a deleted project's network with the project.
	network := networks[2]
	if exec.Command("virsh", "-c", "qemu:///system", "net-info", network).Run() != nil {
		t.Fatalf("project 2 has no network %s", network)
	}
	macB := guestMAC(t, vms[2])
	mp.must(t, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", ids[2]), tokB, nil)
	mp.waitForStatus(t, tokB, ids[2], "uninstalled", 2*time.Minute)
	if ip, ok := dhcpHosts(t, network)[macB]; ok {
		t.Errorf("the deleted guest's DHCP host entry (%s for %s) is still in %s", ip, macB, network)
	}
	mp.must(t, 204, "DELETE", "/api/user/project/2", tokB, nil)
	waitFor(t, 30*time.Second, "the deleted project's network to go", func() bool {
		return exec.Command("virsh", "-c", "qemu:///system", "net-info", network).Run() != nil
	})

	d := mp.waitForStatus(t, tokA, ids[0], "installed", 4*time.Minute)
	if num(t, d["version"]) != 2 {
		t.Fatalf("after the upgrade: version %v (%v), want 2", d["version"], d["failure_reason"])
	}
	if ip := d["placement"].(map[string]any)["ip_address"].(string); ip != a1 || dhcpHosts(t, networks[0])[guestMAC(t, vms[0])] != a1 {
		t.Errorf("the upgraded guest is at %s, reserved %v; it was at %s", ip, dhcpHosts(t, networks[0]), a1)
	}
	waitFor(t, 30*time.Second, "the upgraded guest to answer at "+a1, func() bool { _, err := guestHTTP(t, a1, ""); return err == nil })
}

// guestMAC is the MAC of the domain's interface.
func guestMAC(t *testing.T, domain string) string {
	t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "domiflist", domain).Output()
	if err != nil {
		t.Fatalf("domiflist %s: %v", domain, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 5 && strings.Count(f[4], ":") == 5 {
			return strings.ToLower(f[4])
		}
	}
	t.Fatalf("domain %s has no interface: %s", domain, out)
	return ""
}

// dhcpHosts are the network's DHCP host entries: address by MAC.
func dhcpHosts(t *testing.T, network string) map[string]string {
	t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "net-dumpxml", network).Output()
	if err != nil {
		t.Fatalf("net-dumpxml %s: %v", network, err)
	}
	var nx struct {
		IPs []struct {
			Hosts []struct {
				MAC string `xml:"mac,attr"`
				IP  string `xml:"ip,attr"`
			} `xml:"dhcp>host"`
		} `xml:"ip"`
	}
	if err := xml.Unmarshal(out, &nx); err != nil {
		t.Fatalf("network %s: %v", network, err)
	}
	hosts := map[string]string{}
	for _, ip := range nx.IPs {
		for _, h := range ip.Hosts {
			hosts[strings.ToLower(h.MAC)] = h.IP
		}
	}
	return hosts
}
