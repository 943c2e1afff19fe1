// Command vmbench measures, in one run on one VM host, VM installs and uninstalls of the test guest
// through a running marketplace against a direct go-libvirt program that boots the same image the same
// way: the TARGETS.md row "VM install → installed with an IP (TCG) ≤ libvirt's own start + boot of the
// same image + 1 s", and the resident memory of each guest's QEMU process.
//
// Marketplace side: POST /api/deployments/install of a vm application of the base image, then GET
// /api/deployments/{id} every -poll until the status is installed (which the provider only sets once the
// guest agent reported an IPv4 address); DELETE /api/deployments/{id}, then poll until uninstalled.
//
// Direct side: what a Go program on go-libvirt alone does to boot the image: a qcow2 overlay of the base
// volume in the work pool, a NoCloud seed disk (FAT, label cidata, the same three files the provider
// writes), a domain of the same XML shape as internal/libvirt/domain.go (TCG, q35, virtio disks and NIC,
// serial console to a file, guest agent channel, no balloon), DomainCreate, then DomainInterfaceAddresses
// from the agent every -agent-poll until an IPv4 address is known. Its "uninstall" is destroy, undefine,
// and the deletion of both volumes and the console log. Its volumes, domain and log are named bench-*,
// in the marketplace's own storage pools (found by their directories under -vm-dir, the marketplace's
// VM_DIR, whatever libvirt names them).
//
// The two sides alternate (marketplace first on even iterations, direct first on odd ones) so drifting
// background load hits both alike, and only one guest runs at a time. bench/vm.sh starts the
// marketplace and runs this.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/bench/mpapi"
)

type options struct {
	api, libvirtURI, image, network, vmDir, prefix, out string
	filter, filterGateway, filterPeers, filterIP        string
	vcpus, memoryMiB, n, warmup                         int
	poll, agentPoll, timeout                            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.api, "api", "http://127.0.0.1:3103", "the marketplace's base URL")
	flag.StringVar(&o.libvirtURI, "libvirt-uri", "qemu:///system", "the VM host (the marketplace's LIBVIRT_URI)")
	flag.StringVar(&o.image, "image", "test-guest.qcow2", "the base image, a file of <vm-dir>/images")
	flag.StringVar(&o.network, "network", "marketplace", "the libvirt network guests join (the marketplace's VM_NETWORK)")
	flag.StringVar(&o.vmDir, "vm-dir", "", "the marketplace's VM_DIR: its storage pools are at images/ and pool/, consoles in logs/")
	flag.StringVar(&o.prefix, "prefix", "", "the direct side's domain and volume names start with this (default bench-<pid>)")
	flag.StringVar(&o.out, "out", "", "write the measurements as JSON here")
	flag.StringVar(&o.filter, "filter", "", "the nwfilter the direct side's interface references as the marketplace's does (its mp-guest-* filter; empty: none)")
	flag.StringVar(&o.filterGateway, "filter-gateway", "10.213.0.1", "with -filter: the network's gateway (the filter's GATEWAY and DHCPSERVER)")
	flag.StringVar(&o.filterPeers, "filter-peers", "10.213.0.0/24", "with -filter: the network's subnet (the filter's PEERNET/PEERMASK)")
	flag.StringVar(&o.filterIP, "filter-ip", "", "with -filter: the guest's address given to the filter (IP), so libvirt learns none (CTRL_IP_LEARNING=none)")
	flag.IntVar(&o.vcpus, "vcpus", 1, "vCPUs of the guest, both sides")
	flag.IntVar(&o.memoryMiB, "memory-mib", 256, "memory of the guest in MiB, both sides")
	flag.IntVar(&o.n, "n", 5, "measured installs (and uninstalls) per side")
	flag.IntVar(&o.warmup, "warmup", 1, "unmeasured installs and uninstalls per side first")
	flag.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often to poll a deployment's status")
	flag.DurationVar(&o.agentPoll, "agent-poll", 50*time.Millisecond, "how often the direct side asks the guest agent for addresses")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound of one install or uninstall")
	flag.Parse()
	if o.vmDir == "" {
		fmt.Fprintln(os.Stderr, "vmbench: -vm-dir is required")
		os.Exit(2)
	}
	if o.prefix == "" {
		o.prefix = fmt.Sprintf("bench-%d", os.Getpid())
	}
	if !strings.HasPrefix(o.prefix, "bench-") {
		fmt.Fprintln(os.Stderr, "vmbench: -prefix must start with bench- (the names the VM host leaves to benchmarks)")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "vmbench:", err)
		os.Exit(1)
	}
}

// sample is one measured operation.
type sample struct {
	Side      string `json:"side"` // marketplace or direct
	Op        string `json:"op"`   // install or uninstall
	Iteration int    `json:"iteration"`
	Warmup    bool   `json:"warmup"`
	Domain    string `json:"domain"`
	IP        string `json:"ip,omitempty"`
	// Took is the whole operation; for a direct install, Boot is its part from DomainCreate to the address.
	Took time.Duration `json:"took_ns"`
	Boot time.Duration `json:"boot_ns,omitempty"`
	// RSSKiB is the VmRSS of the guest's QEMU process when its address became known (installs only).
	RSSKiB int64 `json:"vmrss_kib,omitempty"`
}

func run(ctx context.Context, o options) error {
	u, err := url.Parse(o.libvirtURI)
	if err != nil {
		return fmt.Errorf("libvirt URI %q: %w", o.libvirtURI, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return fmt.Errorf("connect to libvirt at %s: %w", o.libvirtURI, err)
	}
	defer l.Disconnect()
	d := &direct{l: l, o: o}
	if err := d.prepare(); err != nil {
		return err
	}

	// A user who publishes the vm application and deploys it, as cmd/marketplace/vm_test.go does.
	mp := mpapi.New(o.api)
	var user struct {
		Token string `json:"token"`
	}
	if err := mp.Do(ctx, 201, "POST", "/api/users/new", map[string]any{"name": "vmbench"}, &user); err != nil {
		return err
	}
	mp.Token = user.Token
	var app, project struct {
		ID int64 `json:"id"`
	}
	if err := mp.Do(ctx, 201, "POST", "/api/apps/new", map[string]any{"name": "guest (vmbench)", "hourly_rate": 2,
		"deployment": map[string]any{"type": "vm", "image": o.image, "cpu": strconv.Itoa(o.vcpus), "memory": fmt.Sprintf("%dMi", o.memoryMiB)},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}}, &app); err != nil {
		return err
	}
	if err := mp.Do(ctx, 201, "POST", "/api/user/project/new", map[string]any{"name": "vmbench"}, &project); err != nil {
		return err
	}

	total := o.warmup + o.n
	var samples []sample
	record := func(s sample, i int) {
		s.Iteration, s.Warmup = i-o.warmup, i < o.warmup
		samples = append(samples, s)
		tag := ""
		if s.Warmup {
			tag = " (warm-up)"
		}
		extra := ""
		if s.Op == "install" {
			extra = fmt.Sprintf("  ip %-13s VmRSS %6.1f MiB", s.IP, float64(s.RSSKiB)/1024)
			if s.Boot > 0 {
				extra += fmt.Sprintf("  start→IP %8.1f ms", ms(s.Boot))
			}
		}
		fmt.Printf("%-9s %-11s #%-2d %-28s %8.1f ms%s%s\n", s.Op, s.Side, s.Iteration, s.Domain, ms(s.Took), extra, tag)
	}

	mpRound := func(i int) error {
		start := time.Now()
		var q struct {
			DeploymentID int64 `json:"deploymentID"`
		}
		if err := mp.Do(ctx, 202, "POST", "/api/deployments/install",
			map[string]any{"application_id": app.ID, "project_id": project.ID}, &q); err != nil {
			return err
		}
		dep, err := mp.WaitFor(ctx, q.DeploymentID, "installed", o.poll, o.timeout)
		if err != nil {
			return err
		}
		took := time.Since(start)
		rss, err := qemuRSS(dep.Placement.VMName)
		if err != nil {
			return err
		}
		record(sample{Side: "marketplace", Op: "install", Domain: dep.Placement.VMName, IP: dep.Placement.IPAddress, Took: took, RSSKiB: rss}, i)

		start = time.Now()
		if err := mp.Do(ctx, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", q.DeploymentID), nil, nil); err != nil {
			return err
		}
		if _, err := mp.WaitFor(ctx, q.DeploymentID, "uninstalled", o.poll, o.timeout); err != nil {
			return err
		}
		record(sample{Side: "marketplace", Op: "uninstall", Domain: dep.Placement.VMName, Took: time.Since(start)}, i)
		return nil
	}
	directRound := func(i int) (err error) {
		g := d.guest(i)
		defer func() {
			// A failed round leaves nothing behind; a good one has removed everything already.
			if err != nil {
				if cerr := d.remove(g); cerr != nil {
					err = errors.Join(err, cerr)
				}
			}
		}()
		start := time.Now()
		boot, ip, err := d.install(ctx, g)
		if err != nil {
			return err
		}
		took := time.Since(start)
		rss, err := qemuRSS(g.domain)
		if err != nil {
			return err
		}
		record(sample{Side: "direct", Op: "install", Domain: g.domain, IP: ip, Took: took, Boot: boot, RSSKiB: rss}, i)

		start = time.Now()
		if err := d.remove(g); err != nil {
			return err
		}
		record(sample{Side: "direct", Op: "uninstall", Domain: g.domain, Took: time.Since(start)}, i)
		return nil
	}

	// Each round is an install and its uninstall, so one guest runs at a time; the sides alternate.
	sides := []func(int) error{mpRound, directRound}
	for i := 0; i < total; i++ {
		for k := range sides {
			if err := sides[(i+k)%len(sides)](i); err != nil {
				return err
			}
		}
	}

	report(os.Stdout, samples, o)
	if o.out != "" {
		buf, err := json.MarshalIndent(samples, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.out, buf, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", o.out, err)
		}
	}
	return nil
}

// report prints the medians, the ratios and the verdict against TARGETS.md.
func report(w io.Writer, samples []sample, o options) {
	get := func(side, op string, f func(sample) float64) []float64 {
		var v []float64
		for _, s := range samples {
			if s.Side == side && s.Op == op && !s.Warmup {
				v = append(v, f(s))
			}
		}
		return v
	}
	took := func(s sample) float64 { return ms(s.Took) }
	boot := func(s sample) float64 { return ms(s.Boot) }
	rss := func(s sample) float64 { return float64(s.RSSKiB) / 1024 }

	fmt.Fprintf(w, "\n%d measured rounds per side (after %d warm-up), guest %d vCPU %d MiB, image %s, median:\n\n", o.n, o.warmup, o.vcpus, o.memoryMiB, o.image)
	mi, di, db := median(get("marketplace", "install", took)), median(get("direct", "install", took)), median(get("direct", "install", boot))
	fmt.Fprintln(w, "| operation | marketplace median ms | direct go-libvirt median ms | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	verdict := func(m, limit float64) string {
		if m <= limit {
			return "yes"
		}
		return fmt.Sprintf("**no** (over by %.0f ms)", m-limit)
	}
	fmt.Fprintf(w, "| install → installed with an IP (direct: overlay + seed + define + start → agent IPv4) | %.0f | %.0f | %.2f | ≤ %.0f ms (direct + 1 s) | %s |\n",
		mi, di, mi/di, di+1000, verdict(mi, di+1000))
	fmt.Fprintf(w, "| the same against the direct side's DomainCreate → agent IPv4 only | %.0f | %.0f | %.2f | ≤ %.0f ms (start + boot + 1 s) | %s |\n",
		mi, db, mi/db, db+1000, verdict(mi, db+1000))
	mu, du := median(get("marketplace", "uninstall", took)), median(get("direct", "uninstall", took))
	fmt.Fprintf(w, "| uninstall → uninstalled (direct: destroy + undefine + 2 volume deletes) | %.0f | %.0f | %.2f | (none in TARGETS.md) | |\n",
		mu, du, mu/du)
	fmt.Fprintf(w, "\nVmRSS of the guest's QEMU process once its address is known, median: marketplace %.1f MiB, direct %.1f MiB\n\n",
		median(get("marketplace", "install", rss)), median(get("direct", "install", rss)))
	list := func(v []float64, format string) string {
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprintf(format, x))
		}
		return strings.Join(out, " ")
	}
	for _, op := range []string{"install", "uninstall"} {
		for _, side := range []string{"marketplace", "direct"} {
			fmt.Fprintf(w, "%s %s, ms: %s\n", side, op, list(get(side, op, took), "%.0f"))
		}
	}
	fmt.Fprintf(w, "direct DomainCreate → agent IPv4, ms: %s\n", list(get("direct", "install", boot), "%.0f"))
	for _, side := range []string{"marketplace", "direct"} {
		fmt.Fprintf(w, "%s guest VmRSS, MiB: %s\n", side, list(get(side, "install", rss), "%.1f"))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Sorted(slices.Values(v))
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
