package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// direct boots guests with go-libvirt alone: the yardstick, so it builds its domains itself (the same
// shape as internal/libvirt's) rather than through the provider it is measuring against.
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
				Source:    &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: o.network}},
				Model:     &libvirtxml.DomainInterfaceModel{Type: "virtio"},
				FilterRef: filterRef(o),
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

// filterRef is the marketplace's reference to its guest filter (internal/libvirt/filter.go), when
// -filter names it: the same rules, with the direct side's network as the project's.
func filterRef(o options) *libvirtxml.DomainInterfaceFilterRef {
	if o.filter == "" {
		return nil
	}
	peers, mask, _ := strings.Cut(o.filterPeers, "/")
	learn := []libvirtxml.DomainInterfaceFilterParam{{Name: "CTRL_IP_LEARNING", Value: "dhcp"}}
	if o.filterIP != "" {
		learn = []libvirtxml.DomainInterfaceFilterParam{{Name: "CTRL_IP_LEARNING", Value: "none"}, {Name: "IP", Value: o.filterIP}}
	}
	return &libvirtxml.DomainInterfaceFilterRef{Filter: o.filter, Parameters: append(learn,
		libvirtxml.DomainInterfaceFilterParam{Name: "DHCPSERVER", Value: o.filterGateway},
		libvirtxml.DomainInterfaceFilterParam{Name: "GATEWAY", Value: o.filterGateway},
		libvirtxml.DomainInterfaceFilterParam{Name: "PEERNET", Value: peers},
		libvirtxml.DomainInterfaceFilterParam{Name: "PEERMASK", Value: mask})}
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

// isCode reports whether err is libvirt's error code.
func isCode(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}
