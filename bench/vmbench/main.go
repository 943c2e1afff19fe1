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
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

type options struct {
	api, libvirtURI, image, network, vmDir, prefix, out string
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
	mp := &client{base: strings.TrimSuffix(o.api, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	var user struct {
		Token string `json:"token"`
	}
	if err := mp.do(ctx, 201, "POST", "/api/users/new", map[string]any{"name": "vmbench"}, &user); err != nil {
		return err
	}
	mp.token = user.Token
	var app, project struct {
		ID int64 `json:"id"`
	}
	if err := mp.do(ctx, 201, "POST", "/api/apps/new", map[string]any{"name": "guest (vmbench)", "hourly_rate": 2,
		"deployment": map[string]any{"type": "vm", "image": o.image, "cpu": strconv.Itoa(o.vcpus), "memory": fmt.Sprintf("%dMi", o.memoryMiB)},
		"inputs":     []map[string]any{{"name": "greeting", "type": "string", "default": "hi"}}}, &app); err != nil {
		return err
	}
	if err := mp.do(ctx, 201, "POST", "/api/user/project/new", map[string]any{"name": "vmbench"}, &project); err != nil {
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
		if err := mp.do(ctx, 202, "POST", "/api/deployments/install",
			map[string]any{"application_id": app.ID, "project_id": project.ID}, &q); err != nil {
			return err
		}
		dep, err := mp.waitFor(ctx, q.DeploymentID, "installed", o.poll, o.timeout)
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
		if err := mp.do(ctx, 202, "DELETE", fmt.Sprintf("/api/deployments/%d", q.DeploymentID), nil, nil); err != nil {
			return err
		}
		if _, err := mp.waitFor(ctx, q.DeploymentID, "uninstalled", o.poll, o.timeout); err != nil {
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

// direct boots guests with go-libvirt alone.
type direct struct {
	l *golibvirt.Libvirt
	o options
	// what the base image is, read once (the provider reads it on every install; a few ms)
	basePath, baseFormat string
	baseCapacity         uint64
	pool                 golibvirt.StoragePool
}

// guestNames are one direct guest's domain, volumes and console log.
type guestNames struct{ domain, overlay, seed, log string }

func (d *direct) guest(i int) guestNames {
	base := fmt.Sprintf("%s-%d", d.o.prefix, i)
	return guestNames{domain: base, overlay: base + ".qcow2", seed: base + "-seed.img",
		log: filepath.Join(d.o.vmDir, "logs", base+".console.log")}
}

// prepare finds the base image and the work pool, checks the network is up, and refuses to start when
// a name of this run is taken (it would not be ours to remove).
func (d *direct) prepare() error {
	images, err := poolAt(d.l, filepath.Join(d.o.vmDir, "images"))
	if err != nil {
		return err
	}
	vol, err := d.l.StorageVolLookupByName(images, d.o.image)
	if err != nil {
		return fmt.Errorf("image %s in pool %s: %w", d.o.image, images.Name, err)
	}
	text, err := d.l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return fmt.Errorf("image %s: %w", d.o.image, err)
	}
	var vx libvirtxml.StorageVolume
	if err := vx.Unmarshal(text); err != nil {
		return fmt.Errorf("image %s: %w", d.o.image, err)
	}
	if vx.Target == nil || vx.Target.Format == nil || vx.Capacity == nil {
		return fmt.Errorf("image %s: no path, format or capacity in its volume XML", d.o.image)
	}
	d.basePath, d.baseFormat, d.baseCapacity = vx.Target.Path, vx.Target.Format.Type, vx.Capacity.Value
	if d.pool, err = poolAt(d.l, filepath.Join(d.o.vmDir, "pool")); err != nil {
		return err
	}
	nw, err := d.l.NetworkLookupByName(d.o.network)
	if err != nil {
		return fmt.Errorf("network %s: %w", d.o.network, err)
	}
	if active, err := d.l.NetworkIsActive(nw); err != nil || active == 0 {
		return fmt.Errorf("network %s is not active (the marketplace starts it when it connects): %v", d.o.network, err)
	}
	for i := 0; i < d.o.warmup+d.o.n; i++ {
		g := d.guest(i)
		if _, err := d.l.DomainLookupByName(g.domain); err == nil {
			return fmt.Errorf("domain %s exists already; use another -prefix", g.domain)
		}
		for _, v := range []string{g.overlay, g.seed} {
			if _, err := d.l.StorageVolLookupByName(d.pool, v); err == nil {
				return fmt.Errorf("volume %s exists already; use another -prefix", v)
			}
		}
	}
	return nil
}

// poolAt is the running storage pool whose directory is dir: the marketplace defines its pools when it
// connects, and their names are its business.
func poolAt(l *golibvirt.Libvirt, dir string) (golibvirt.StoragePool, error) {
	pools, _, err := l.ConnectListAllStoragePools(1, golibvirt.ConnectListStoragePoolsActive)
	if err != nil {
		return golibvirt.StoragePool{}, fmt.Errorf("list storage pools: %w", err)
	}
	for _, pool := range pools {
		text, err := l.StoragePoolGetXMLDesc(pool, 0)
		if err != nil {
			return golibvirt.StoragePool{}, fmt.Errorf("storage pool %s: %w", pool.Name, err)
		}
		var px libvirtxml.StoragePool
		if err := px.Unmarshal(text); err != nil {
			return golibvirt.StoragePool{}, fmt.Errorf("storage pool %s: %w", pool.Name, err)
		}
		if px.Target != nil && filepath.Clean(px.Target.Path) == filepath.Clean(dir) {
			return pool, nil
		}
	}
	return golibvirt.StoragePool{}, fmt.Errorf("no running storage pool at %s (a marketplace with this VM_DIR defines it when it connects)", dir)
}

// install makes the guest's overlay and seed, defines and starts its domain, and waits for the agent's
// IPv4 address. It returns the time from DomainCreate to the address, and the address.
func (d *direct) install(ctx context.Context, g guestNames) (time.Duration, string, error) {
	overlayXML, err := (&libvirtxml.StorageVolume{Name: g.overlay,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: d.baseCapacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: d.basePath,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: d.baseFormat}}}).Marshal()
	if err != nil {
		return 0, "", err
	}
	overlay, err := d.l.StorageVolCreateXML(d.pool, overlayXML, 0)
	if err != nil {
		return 0, "", fmt.Errorf("create overlay %s: %w", g.overlay, err)
	}
	overlayPath, err := d.l.StorageVolGetPath(overlay)
	if err != nil {
		return 0, "", fmt.Errorf("overlay %s: %w", g.overlay, err)
	}
	seedPath, err := d.seed(ctx, g)
	if err != nil {
		return 0, "", err
	}
	domXML, err := domainXML(g, d.o, overlayPath, seedPath)
	if err != nil {
		return 0, "", err
	}
	dom, err := d.l.DomainDefineXMLFlags(domXML, 0)
	if err != nil {
		return 0, "", fmt.Errorf("define domain %s: %w", g.domain, err)
	}
	start := time.Now()
	if err := d.l.DomainCreate(dom); err != nil {
		return 0, "", fmt.Errorf("start domain %s: %w", g.domain, err)
	}
	ip, err := waitAgentIPv4(ctx, d.l, dom, d.o.agentPoll, d.o.timeout)
	if err != nil {
		return 0, "", fmt.Errorf("domain %s: %w", g.domain, err)
	}
	return time.Since(start), ip, nil
}

// seed writes the guest's NoCloud seed, the same files and filesystem as the provider's
// (internal/libvirt/seed.go) with the application's default inputs, and uploads it as a raw volume.
func (d *direct) seed(ctx context.Context, g guestNames) (string, error) {
	dir, err := os.MkdirTemp("", "vmbench-seed-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"meta-data":   "instance-id: " + g.domain + "\nlocal-hostname: " + g.domain + "\n",
		"user-data":   "#cloud-config\nhostname: \"" + g.domain + "\"\nwrite_files:\n  - path: /etc/marketplace/inputs.json\n    content: \"{\\\"greeting\\\":\\\"hi\\\"}\"\n",
		"inputs.json": `{"greeting":"hi"}`,
	}
	img := filepath.Join(dir, "seed.img")
	cmds := [][]string{{"mkfs.vfat", "-n", "CIDATA", "-C", img, "1024"}}
	for name, content := range files {
		local := filepath.Join(dir, name)
		if err := os.WriteFile(local, []byte(content), 0o644); err != nil {
			return "", err
		}
		cmds = append(cmds, []string{"mcopy", "-i", img, local, "::/" + name})
	}
	for _, c := range cmds {
		if out, err := exec.CommandContext(ctx, c[0], c[1:]...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("seed of %s: %s: %w: %s", g.domain, c[0], err, out)
		}
	}
	f, err := os.Open(img)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	x, err := (&libvirtxml.StorageVolume{Name: g.seed, Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: uint64(st.Size())},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "raw"}}}).Marshal()
	if err != nil {
		return "", err
	}
	vol, err := d.l.StorageVolCreateXML(d.pool, x, 0)
	if err != nil {
		return "", fmt.Errorf("create seed volume %s: %w", g.seed, err)
	}
	if err := d.l.StorageVolUpload(vol, f, 0, uint64(st.Size()), 0); err != nil {
		return "", fmt.Errorf("upload seed volume %s: %w", g.seed, err)
	}
	path, err := d.l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("seed volume %s: %w", g.seed, err)
	}
	return path, nil
}

// remove destroys and undefines the guest's domain and deletes its volumes and console log; what is
// missing already counts as removed (a failed round calls it on a half-made guest).
func (d *direct) remove(g guestNames) error {
	var errs []error
	if dom, err := d.l.DomainLookupByName(g.domain); err == nil {
		if err := d.l.DomainDestroy(dom); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) {
			errs = append(errs, fmt.Errorf("destroy domain %s: %w", g.domain, err))
		}
		if err := d.l.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram); err != nil {
			errs = append(errs, fmt.Errorf("undefine domain %s: %w", g.domain, err))
		}
	} else if !golibvirt.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("look up domain %s: %w", g.domain, err))
	}
	for _, name := range []string{g.overlay, g.seed} {
		vol, err := d.l.StorageVolLookupByName(d.pool, name)
		if isCode(err, golibvirt.ErrNoStorageVol) {
			continue
		}
		if err == nil {
			err = d.l.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete volume %s: %w", name, err))
		}
	}
	if err := os.Remove(g.log); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove console log: %w", err))
	}
	return errors.Join(errs...)
}

// domainXML is the domain internal/libvirt/domain.go defines, element for element, with this run's
// names and a metadata element of its own.
func domainXML(g guestNames, o options, overlay, seed string) (string, error) {
	meta, err := xml.Marshal(struct {
		XMLName xml.Name `xml:"https://marketplace.dev/vmbench/1 guest"`
		Name    string   `xml:"name,attr"`
	}{Name: g.domain})
	if err != nil {
		return "", err
	}
	port0, bootFirst := uint(0), uint(1)
	dx := &libvirtxml.Domain{
		Type:     "qemu",
		Name:     g.domain,
		Metadata: &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(o.memoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(o.vcpus)},
		OS:       &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}},
		Features: &libvirtxml.DomainFeatureList{TCG: &libvirtxml.DomainFeatureTCG{
			TBCache: &libvirtxml.DomainFeatureTCGTBCache{Unit: "MiB", Size: 32}}},
		OnCrash: "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: overlay}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
				Boot:   &libvirtxml.DomainDeviceBoot{Order: bootFirst},
			}, {
				Device:   "disk",
				Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
				Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: seed}},
				Target:   &libvirtxml.DomainDiskTarget{Dev: "vdb", Bus: "virtio"},
				ReadOnly: &libvirtxml.DomainDiskReadOnly{},
			}},
			Interfaces: []libvirtxml.DomainInterface{{
				Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: o.network}},
				Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: g.log}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port0},
			}},
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: "org.qemu.guest_agent.0"}},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	text, err := dx.Marshal()
	if err != nil {
		return "", fmt.Errorf("domain XML of %s: %w", g.domain, err)
	}
	return text, nil
}

// waitAgentIPv4 asks the guest agent for the guest's addresses every poll until it reports an IPv4
// one: the provider's proof of boot (internal/libvirt/domain.go waitBooted).
func waitAgentIPv4(ctx context.Context, l *golibvirt.Libvirt, dom golibvirt.Domain, poll, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		state, _, err := l.DomainGetState(dom, 0)
		if err != nil {
			return "", fmt.Errorf("state: %w", err)
		}
		if s := golibvirt.DomainState(state); s == golibvirt.DomainShutoff || s == golibvirt.DomainCrashed {
			return "", fmt.Errorf("the guest stopped while booting (state %d)", s)
		}
		if ifaces, err := l.DomainInterfaceAddresses(dom, uint32(golibvirt.DomainInterfaceAddressesSrcAgent), 0); err == nil {
			for _, iface := range ifaces {
				for _, a := range iface.Addrs {
					if ip, err := netip.ParseAddr(a.Addr); err == nil && ip.Is4() && !ip.IsLoopback() {
						return ip.String(), nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no IPv4 address from the guest agent within %s: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
}

// qemuRSS is the VmRSS in KiB of the QEMU process running domain name, found by the -name
// guest=<name>, argument libvirt gives it (libvirtd runs in another network namespace, but the same
// PID namespace).
func qemuRSS(domain string) (int64, error) {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return 0, err
	}
	want := []byte("guest=" + domain + ",")
	for _, p := range procs {
		cmdline, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		args := bytes.Split(cmdline, []byte{0})
		if !bytes.Contains(args[0], []byte("qemu-system")) || !slices.ContainsFunc(args, func(a []byte) bool { return bytes.HasPrefix(a, want) }) {
			continue
		}
		status, err := os.ReadFile(filepath.Join(filepath.Dir(p), "status"))
		if err != nil {
			return 0, fmt.Errorf("QEMU of %s: %w", domain, err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				return strconv.ParseInt(f[1], 10, 64)
			}
		}
		return 0, fmt.Errorf("QEMU of %s: no VmRSS in %s/status", domain, filepath.Dir(p))
	}
	return 0, fmt.Errorf("no qemu-system process with -name guest=%s", domain)
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

// isCode reports whether err is libvirt's error code.
func isCode(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}

// client calls the marketplace's API.
type client struct {
	base, token string
	http        *http.Client
}

// do sends a JSON request and decodes the answer into out, failing unless the status is want.
func (c *client) do(ctx context.Context, want int, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		buf, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(buf)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, buf)
	}
	if out != nil {
		if err := json.Unmarshal(buf, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// deployment is what the benchmark reads of GET /api/deployments/{id}.
type deployment struct {
	Status        string `json:"status"`
	FailureReason string `json:"failure_reason"`
	Placement     struct {
		VMName    string `json:"vm_name"`
		IPAddress string `json:"ip_address"`
	} `json:"placement"`
}

// waitFor polls deployment id every poll until it has status want; failed is an error.
func (c *client) waitFor(ctx context.Context, id int64, want string, poll, timeout time.Duration) (deployment, error) {
	deadline := time.Now().Add(timeout)
	for {
		var d deployment
		if err := c.do(ctx, 200, "GET", fmt.Sprintf("/api/deployments/%d", id), nil, &d); err != nil {
			return d, err
		}
		switch {
		case d.Status == want:
			return d, nil
		case d.Status == "failed":
			return d, fmt.Errorf("deployment %d failed: %s", id, d.FailureReason)
		case time.Now().After(deadline):
			return d, fmt.Errorf("deployment %d still %s after %v, want %s (%s)", id, d.Status, timeout, want, d.FailureReason)
		}
		time.Sleep(poll)
	}
}
