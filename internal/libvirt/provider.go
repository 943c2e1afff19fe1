// Package libvirt is the provider of vm deployments: one virtual machine per deployment on a libvirt
// host (QEMU under TCG), booted from a copy-on-write overlay of the application's base image with a
// cloud-init NoCloud seed of the consumer's inputs. It talks to libvirtd through the pure-Go RPC client
// (github.com/digitalocean/go-libvirt) and builds XML with libvirt.org/go/libvirtxml.
//
// What it creates carries the marketplace's instance id in its name and metadata, so a domain or volume
// of another marketplace on the same host is never adopted or removed.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// Config is how the provider reaches its host and where things live on it.
type Config struct {
	// URI is the libvirt connection URI (qemu:///system, qemu+unix:///system?socket=/path).
	URI string
	// Instance is the marketplace's instance id (postgres.DB.InstanceID).
	Instance string
	// ImageDir holds the base images applications name by relative path (a directory storage pool).
	ImageDir string
	// PoolDir holds each deployment's overlay and seed (a directory storage pool).
	PoolDir string
	// DownloadDir holds the images downloaded from URLs (a directory storage pool of its own, apart
	// from tenants' volumes); PoolDir's sibling "downloads" when empty.
	DownloadDir string
	// LogDir holds each guest's serial console log.
	LogDir string
	// Network is the flat NAT network guests joined before each project had its own; it is kept (and
	// made when missing) for the domains defined on it, which an upgrade moves to their project's.
	Network string
	// Networks is the range each project's network takes a subnet of NetworkBits from.
	Networks    netip.Prefix
	NetworkBits int
	// Deny are destinations guests may not reach beyond the private and special ranges refused anyway
	// (the VM host's public addresses, the operator's services).
	Deny []netip.Prefix
	// BootTimeout bounds the wait for a started guest to answer through its agent with an address.
	BootTimeout time.Duration
	// ImageMaxBytes caps an image download.
	ImageMaxBytes int64
	// MaxDisk caps an image's virtual size, in bytes (VM_MAX_DISK); 0 is no cap.
	MaxDisk uint64
	// ImageQuotaBytes caps the bytes of the images each publisher's applications had downloaded
	// (VM_IMAGE_QUOTA_BYTES); 0 is no cap.
	ImageQuotaBytes int64
	// ImageMinRate (bytes a second) averaged over ImageRateWindow is the slowest an image download may
	// be (VM_IMAGE_MIN_RATE); 0 is no minimum.
	ImageMinRate    int64
	ImageRateWindow time.Duration
	// CacheDir remembers which URL gave which image digest.
	CacheDir string
	// CPUOvercommit and MemoryOvercommit are how many vCPUs and MiB of memory the host's guests may take
	// per CPU and MiB it has (VM_CPU_OVERCOMMIT, VM_MEMORY_OVERCOMMIT); 0 is DefaultCPUOvercommit and
	// DefaultMemoryOvercommit.
	CPUOvercommit, MemoryOvercommit float64
	// Fetch guards image downloads (no internal addresses).
	Fetch  *fetch.Guard
	Logger *slog.Logger
}

// Provider is the vm type's marketplace.Installer and marketplace.Inspector.
type Provider struct {
	cfg Config

	filters []string // the guest filters' definitions, and the name of the one interfaces reference
	filter  string

	mu   sync.Mutex // guards conn
	conn *golibvirt.Libvirt

	placing  sync.Mutex    // one capacity check and definition at a time per process (checkRoom)
	urlLocks urlLocks      // one download of a URL at a time
	quota    downloadQuota // each publisher's downloaded bytes
}

// New checks the configuration and connects to the host, creating the storage pools and the network
// when they are missing.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if cfg.Instance == "" {
		return nil, errors.New("libvirt provider: no instance id")
	}
	if cfg.DownloadDir == "" {
		cfg.DownloadDir = filepath.Join(filepath.Dir(filepath.Clean(cfg.PoolDir)), "downloads")
	}
	for _, dir := range []*string{&cfg.ImageDir, &cfg.PoolDir, &cfg.DownloadDir, &cfg.LogDir} {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return nil, fmt.Errorf("libvirt provider: %w", err)
		}
		*dir = abs
	}
	for _, tool := range []string{"mkfs.vfat", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("libvirt provider: %s is needed to make cloud-init seeds (apt install dosfstools mtools; make vmhost does): %w", tool, err)
		}
	}
	if !cfg.Networks.IsValid() {
		cfg.Networks = netip.MustParsePrefix("10.214.0.0/16")
	}
	if cfg.NetworkBits == 0 {
		cfg.NetworkBits = 24
	}
	if !cfg.Networks.Addr().Is4() || cfg.NetworkBits < cfg.Networks.Bits() || cfg.NetworkBits > 29 || cfg.NetworkBits-cfg.Networks.Bits() > 24 {
		return nil, fmt.Errorf("libvirt provider: project networks of /%d in %s: want IPv4 subnets of at most /29 inside the range", cfg.NetworkBits, cfg.Networks)
	}
	cfg.Networks = cfg.Networks.Masked()
	if cfg.BootTimeout <= 0 {
		cfg.BootTimeout = 2 * time.Minute
	}
	if cfg.CPUOvercommit < 0 || cfg.MemoryOvercommit < 0 {
		return nil, fmt.Errorf("libvirt provider: the overcommit ratios must be above 0, got %g for CPUs and %g for memory", cfg.CPUOvercommit, cfg.MemoryOvercommit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Provider{cfg: cfg, quota: downloadQuota{limit: cfg.ImageQuotaBytes}}
	p.filters, p.filter = guestFilters(cfg.Deny)
	l, err := p.client(ctx)
	if err != nil {
		return nil, err
	}
	if err := p.ensureHost(ctx, l); err != nil {
		return nil, err
	}
	return p, nil
}

// Close ends the connection to libvirtd.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return nil
	}
	err := p.conn.Disconnect()
	p.conn = nil
	return err
}

// client returns a live connection, dialling again after libvirtd went away.
func (p *Provider) client(ctx context.Context) (*golibvirt.Libvirt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil && p.conn.IsConnected() {
		return p.conn, nil
	}
	u, err := url.Parse(p.cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("LIBVIRT_URI %q: %w", p.cfg.URI, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("connect to libvirt at %s (is the VM host up? make vmhost): %w", p.cfg.URI, err)
	}
	p.conn = l
	return l, nil
}

// Names of what one deployment owns. They hold a prefix of the instance id and the deployment id, so
// they cannot collide across tenants, retries or two marketplaces sharing a host; the domain's metadata
// holds the whole instance id.
// An upgrade writes its seed (and, to a new image, its overlay) under the other of two names, so the
// previous revision's disks stay untouched until the new one has booted.
type names struct{ domain, overlay, seed, overlayB, seedB, log string }

func (p *Provider) names(deploymentID int64) names {
	base := fmt.Sprintf("%s%d", p.namePrefix(), deploymentID)
	return names{domain: base, overlay: base + ".qcow2", seed: base + "-seed.img",
		overlayB: base + "-b.qcow2", seedB: base + "-b-seed.img",
		log: filepath.Join(p.cfg.LogDir, base+".console.log")}
}

// namePrefix begins the name of every domain of this marketplace: mp-<instance>-d.
func (p *Provider) namePrefix() string { return "mp-" + p.shortInstance() + "-d" }

// shortInstance is the prefix of the instance id that names what the marketplace makes on the host.
func (p *Provider) shortInstance() string {
	instance := strings.ReplaceAll(p.cfg.Instance, "-", "")
	if len(instance) > 12 {
		instance = instance[:12]
	}
	return instance
}

// Install starts the deployment's virtual machine and waits until its guest has booted: the QEMU guest
// agent answers with an IPv4 address. It is idempotent: a retry after a crash finds the volumes and the
// domain it made and goes on from there.
func (p *Provider) Install(ctx context.Context, d *marketplace.Deployment, app *marketplace.Application) (marketplace.Placement, error) {
	n := p.names(d.ID)
	l, err := p.client(ctx)
	if err != nil {
		return marketplace.Placement{}, err
	}
	dom, err := l.DomainLookupByName(n.domain)
	switch {
	case err == nil:
		if err := p.checkOwned(l, dom, d.ID); err != nil {
			return marketplace.Placement{}, err
		}
	case golibvirt.IsNotFound(err):
		if dom, err = p.define(ctx, l, n, d, app); err != nil {
			return marketplace.Placement{}, err
		}
	default:
		return marketplace.Placement{}, fmt.Errorf("look up domain %s: %w", n.domain, err)
	}
	state, _, err := l.DomainGetState(dom, 0)
	if err != nil {
		return marketplace.Placement{}, fmt.Errorf("state of domain %s: %w", n.domain, err)
	}
	if golibvirt.DomainState(state) != golibvirt.DomainRunning {
		if err := l.DomainCreate(dom); err != nil && !startedMeanwhile(l, dom, err) {
			return marketplace.Placement{}, fmt.Errorf("start domain %s: %w", n.domain, err)
		}
	}
	ip, err := p.waitBooted(ctx, l, dom, n)
	if err != nil {
		return marketplace.Placement{}, err
	}
	return marketplace.Placement{VMName: n.domain, IPAddress: ip}, nil
}

// Uninstall destroys the deployment's domain, removes its DHCP host entry (its address) and deletes its
// overlay, seed and console log (with the backups virtlogd rotated it into). What is already gone counts
// as removed.
func (p *Provider) Uninstall(ctx context.Context, d *marketplace.Deployment) error {
	n := p.names(d.ID)
	l, err := p.client(ctx)
	if err != nil {
		return err
	}
	macs := []string{p.guestMAC(d.ID)} // and its interface's: a guest defined before MACs were fixed has a random one
	released, releasing := make(chan error, 1), false
	release := func() { released <- p.releaseAddresses(l, d.ProjectID, macs...) }
	dom, err := l.DomainLookupByName(n.domain)
	switch {
	case err == nil:
		_, dx, _, err := p.owned(l, dom, d.ID)
		if err != nil {
			return err
		}
		if _, _, mac := disks(dx); mac != "" && !strings.EqualFold(mac, macs[0]) {
			macs = append(macs, mac)
		}
		// The DHCP host entry goes while the domain is destroyed: each takes libvirtd a second or more
		// here, and neither needs the other. The address is not another guest's meanwhile (nor while a
		// failed destroy waits for its retry): reserveAddress skips an address leased to another MAC, and
		// a guest's lease outlives it; a guest that never leased it is gone long before another boots.
		releasing = true
		go release()
		if err := l.DomainDestroy(dom); err != nil && !isCode(err, golibvirt.ErrOperationInvalid) && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("destroy domain %s: %w", n.domain, err)
		}
		if err := l.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram); err != nil && !golibvirt.IsNotFound(err) {
			return fmt.Errorf("undefine domain %s: %w", n.domain, err)
		}
	case golibvirt.IsNotFound(err):
	default:
		return fmt.Errorf("look up domain %s: %w", n.domain, err)
	}
	if !releasing {
		release()
	}
	if err := <-released; err != nil {
		return err
	}
	for _, vol := range n.volumes() {
		if err := p.deleteVolume(ctx, l, vol); err != nil {
			return err
		}
	}
	return removeConsole(n.log)
}

// isCode reports whether err is libvirt's error code.
func isCode(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}
