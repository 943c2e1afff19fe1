package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// Upgrade moves the deployment's virtual machine to app's size and image and to the target inputs
// d.Inputs, with a reboot:
//   - same image (a resize, or new inputs): the domain is destroyed (a hard power-off: the guest is not
//     asked to shut down, as QEMU's TCG guests can take minutes to and the overlay's filesystems recover
//     from it like from a power cut), redefined with the new size and a fresh seed, keeping its overlay,
//     and started;
//   - new image: the same, with a fresh overlay of the new base image in place of the old disk.
//
// It waits until the guest has booted. If it does not, the previous definition and its disks, kept
// under the other of two volume names until then, are defined and started again, and the error is
// returned: the previous version runs. It is idempotent: until the new revision has booted its
// definition carries the previous one in its metadata, so a retry after a crash starts from that again.
//
// The provider keeps no count of revisions: it returns 0 and the store numbers the revision after the
// last one it recorded.
func (p *Provider) Upgrade(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (marketplace.Placement, int, error) {
	n := p.names(d.ID)
	placement := marketplace.Placement{VMName: n.domain}
	l, err := p.client(ctx)
	if err != nil {
		return placement, 0, err
	}
	dom, err := l.DomainLookupByName(n.domain)
	if err != nil {
		return placement, 0, fmt.Errorf("look up domain %s to upgrade: %w", n.domain, err)
	}
	current, cx, o, err := p.owned(l, dom, d.ID)
	if err != nil {
		return placement, 0, err
	}
	vcpus, err := app.Deployment.VCPUs()
	if err != nil {
		return placement, 0, err
	}
	mib, err := app.Deployment.MemoryMiB()
	if err != nil {
		return placement, 0, err
	}
	base, err := p.baseImage(ctx, l, app.Deployment.Image, app.PublisherID)
	if err != nil {
		return placement, 0, err
	}
	values, err := app.Values(d.Inputs)
	if err != nil {
		return placement, 0, err
	}
	target, err := targetDigest(n, base, vcpus, mib, values)
	if err != nil {
		return placement, 0, err
	}

	if o.Previous == "" && o.Target == target {
		// A retry after this upgrade booted but before it was recorded: only make sure it still runs.
		if err := startIfStopped(l, dom); err != nil {
			return placement, 0, err
		}
		if placement.IPAddress, err = p.waitBooted(ctx, l, dom, n); err != nil {
			return placement, 0, err
		}
		p.prune(ctx, l, n, cx)
		return placement, 0, nil
	}

	// The revision to return to: the running one, or the one an interrupted attempt replaced.
	prevText, prev := current, cx
	if o.Previous != "" {
		prevText, prev = o.Previous, &libvirtxml.Domain{}
		if err := prev.Unmarshal(prevText); err != nil {
			return placement, 0, fmt.Errorf("parse the previous definition kept in domain %s: %w", n.domain, err)
		}
		// The half-done revision may be running from the volumes about to be made afresh.
		if err := powerOff(l, dom); err != nil {
			return placement, 0, err
		}
	}
	oldOverlay, oldSeed, mac := disks(prev)
	if oldOverlay == "" || oldSeed == "" {
		return placement, 0, fmt.Errorf("domain %s has no overlay or seed disk to upgrade from", n.domain)
	}
	oldBase, err := backingPath(l, oldOverlay)
	if err != nil {
		return placement, 0, err
	}
	overlay := oldOverlay
	if oldBase != base.path {
		name := other(filepath.Base(oldOverlay), n.overlay, n.overlayB)
		// Made afresh: one left by an interrupted attempt may have been booted from already.
		if err := p.deleteVolume(ctx, l, name); err != nil {
			return placement, 0, err
		}
		if overlay, err = p.ensureOverlay(ctx, l, name, base); err != nil {
			return placement, 0, err
		}
	}
	sn := n
	sn.seed = other(filepath.Base(oldSeed), n.seed, n.seedB)
	seed, err := p.writeSeed(ctx, l, sn, d, values)
	if err != nil {
		return placement, 0, err
	}
	// On its project's network, where a domain of the flat network moves too (with a new address).
	network, err := p.ensureNetwork(ctx, l, d.ProjectID)
	if err != nil {
		return placement, 0, err
	}
	// The guest keeps its MAC, and so its DHCP host entry and address; one defined before addresses were
	// fixed gets an entry for its MAC, of the address it leased on its project's network if it has one.
	if mac == "" {
		mac = p.guestMAC(d.ID)
	}
	ip, err := p.reserveAddress(ctx, l, network, mac)
	if err != nil {
		return placement, 0, err
	}
	sh := shape{vcpus: vcpus, mib: mib, overlay: overlay, seed: seed, uuid: prev.UUID, mac: mac, network: network, ip: ip,
		meta: owner{Instance: p.cfg.Instance, Deployment: d.ID, Target: target}}
	final, err := p.domainXML(n, sh)
	if err != nil {
		return placement, 0, err
	}
	sh.meta.Previous = prevText
	pending, err := p.domainXML(n, sh)
	if err != nil {
		return placement, 0, err
	}

	if err := ctx.Err(); err != nil {
		return placement, 0, err
	}
	p.placing.Lock()
	err = p.checkRoom(l, n.domain, marketplace.VMSize{VCPUs: vcpus, MemoryMiB: mib})
	if err == nil {
		err = powerOff(l, dom)
	}
	if err != nil {
		p.placing.Unlock()
		return placement, 0, err
	}
	dom, err = l.DomainDefineXMLFlags(pending, 0)
	p.placing.Unlock()
	if err != nil {
		return placement, 0, p.restore(ctx, l, n, prevText, prev, fmt.Errorf("define the upgraded domain %s: %w", n.domain, err))
	}
	if err = l.DomainCreate(dom); err != nil {
		err = fmt.Errorf("start the upgraded domain %s: %w", n.domain, err)
	} else {
		placement.IPAddress, err = p.waitBooted(ctx, l, dom, n)
	}
	if err != nil {
		if ctx.Err() != nil {
			// The attempt is over (lease lost, shutdown): the next one starts again from Previous.
			return placement, 0, err
		}
		return placement, 0, p.restore(ctx, l, n, prevText, prev, err)
	}
	// Booted: the definition forgets the previous revision, whose disks go.
	if _, err := l.DomainDefineXMLFlags(final, 0); err != nil {
		return placement, 0, fmt.Errorf("record the upgraded domain %s as booted: %w", n.domain, err)
	}
	p.prune(ctx, l, n, sh.domain())
	return placement, 0, nil
}

// restore defines and starts the previous revision again after its upgrade failed with cause, and
// deletes what the upgrade made. The error returned is cause, with the restore's own failure if any.
func (p *Provider) restore(ctx context.Context, l *golibvirt.Libvirt, n names, prevText string, prev *libvirtxml.Domain, cause error) error {
	err := func() error {
		dom, err := l.DomainLookupByName(n.domain)
		if err == nil {
			err = powerOff(l, dom)
		}
		if err != nil && !golibvirt.IsNotFound(err) {
			return err
		}
		if dom, err = l.DomainDefineXMLFlags(prevText, 0); err != nil {
			return fmt.Errorf("define the previous domain %s: %w", n.domain, err)
		}
		if err := l.DomainCreate(dom); err != nil {
			return fmt.Errorf("start the previous domain %s: %w", n.domain, err)
		}
		if _, err := p.waitBooted(ctx, l, dom, n); err != nil {
			return err
		}
		p.prune(ctx, l, n, prev)
		return nil
	}()
	if err != nil {
		return fmt.Errorf("%w; and the previous revision could not be restored: %w", cause, err)
	}
	return fmt.Errorf("%w; the previous revision runs again", cause)
}

// targetDigest names what a definition runs: image, size and seed. A definition whose metadata carries
// the digest of the upgrade's target is that upgrade, done.
func targetDigest(n names, base image, vcpus int, mib int64, values map[string]any) (string, error) {
	files, err := seedFiles(n, values)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		Image string
		VCPUs int
		MiB   int64
		Seed  map[string][]byte
	}{base.path, vcpus, mib, files})
	if err != nil {
		return "", fmt.Errorf("digest of the upgrade of %s: %w", n.domain, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// disks returns the paths of a definition's overlay (vda) and seed (vdb), and its interface's MAC.
func disks(dx *libvirtxml.Domain) (overlay, seed, mac string) {
	if dx.Devices == nil {
		return "", "", ""
	}
	for _, disk := range dx.Devices.Disks {
		if disk.Target == nil || disk.Source == nil || disk.Source.File == nil {
			continue
		}
		switch disk.Target.Dev {
		case "vda":
			overlay = disk.Source.File.File
		case "vdb":
			seed = disk.Source.File.File
		}
	}
	if len(dx.Devices.Interfaces) > 0 && dx.Devices.Interfaces[0].MAC != nil {
		mac = dx.Devices.Interfaces[0].MAC.Address
	}
	return overlay, seed, mac
}

// domain is the part of a definition of shape s that disks reads.
func (s shape) domain() *libvirtxml.Domain {
	file := func(path, dev string) libvirtxml.DomainDisk {
		return libvirtxml.DomainDisk{Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: dev}}
	}
	return &libvirtxml.Domain{Devices: &libvirtxml.DomainDeviceList{Disks: []libvirtxml.DomainDisk{file(s.overlay, "vda"), file(s.seed, "vdb")}}}
}

// backingPath is the base image an overlay was made from.
func backingPath(l *golibvirt.Libvirt, overlay string) (string, error) {
	vol, err := l.StorageVolLookupByPath(overlay)
	if err != nil {
		return "", fmt.Errorf("overlay %s: %w", overlay, err)
	}
	text, err := l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return "", fmt.Errorf("overlay %s: %w", overlay, err)
	}
	var vx libvirtxml.StorageVolume
	if err := vx.Unmarshal(text); err != nil {
		return "", fmt.Errorf("overlay %s: %w", overlay, err)
	}
	if vx.BackingStore == nil {
		return "", nil
	}
	return vx.BackingStore.Path, nil
}

// other is the one of the two volume names a and b that cur is not.
func other(cur, a, b string) string {
	if cur == a {
		return b
	}
	return a
}

// powerOff destroys a running domain (a hard power-off); one that is not running is left as it is.
func powerOff(l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	if err := l.DomainDestroy(dom); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) {
		return fmt.Errorf("destroy domain %s: %w", dom.Name, err)
	}
	return nil
}

// startIfStopped starts a domain that is not running.
func startIfStopped(l *golibvirt.Libvirt, dom golibvirt.Domain) error {
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return fmt.Errorf("state of domain %s: %w", dom.Name, err)
	}
	if golibvirt.DomainState(state) == golibvirt.DomainRunning {
		return nil
	}
	if err := l.DomainCreate(dom); err != nil && !startedMeanwhile(l, dom, err) {
		return fmt.Errorf("start domain %s: %w", dom.Name, err)
	}
	return nil
}

// startedMeanwhile reports whether a start that failed with err failed because the domain is active: a start
// by an attempt that crashed was still under way (libvirt goes on with it) when this one read the state.
// Starting a guest takes longer with its network filter to set up, which widens that window.
func startedMeanwhile(l *golibvirt.Libvirt, dom golibvirt.Domain, err error) bool {
	if !isCode(err, golibvirt.ErrOperationInvalid) {
		return false
	}
	state, _, serr := l.DomainGetState(dom, 0)
	s := golibvirt.DomainState(state)
	return serr == nil && (s == golibvirt.DomainRunning || s == golibvirt.DomainPaused) // paused: QEMU starts so, libvirt resumes it
}

// prune deletes the deployment's volumes that the definition dx does not use: the other revision's,
// after an upgrade booted or was undone. A volume that cannot be deleted now is only logged: it is
// found again by the next upgrade or the uninstall.
func (p *Provider) prune(ctx context.Context, l *golibvirt.Libvirt, n names, dx *libvirtxml.Domain) {
	overlay, seed, _ := disks(dx)
	keep := []string{filepath.Base(overlay), filepath.Base(seed)}
	for _, vol := range n.volumes() {
		if slices.Contains(keep, vol) {
			continue
		}
		if err := p.deleteVolume(ctx, l, vol); err != nil && !errors.Is(err, context.Canceled) {
			p.cfg.Logger.Warn("could not delete a volume of the previous revision", "volume", vol, "err", err)
		}
	}
}

// volumes are the names of every volume the deployment may own.
func (n names) volumes() []string { return []string{n.overlay, n.seed, n.overlayB, n.seedB} }
