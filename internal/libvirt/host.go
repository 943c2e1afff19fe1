package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// The storage pools the provider keeps, the operator's base images and what it makes itself, are named
// after their directories: libvirt keeps pools host-wide, and two checkouts (or marketplaces) on one host
// must never share one by name while pointing at different directories.
func (p *Provider) imagesPool() string { return poolName("marketplace-images", p.cfg.ImageDir) }
func (p *Provider) workPool() string   { return poolName("marketplace", p.cfg.PoolDir) }

// downloadsPool holds images downloaded from publishers' URLs: apart from the work pool, so that nothing
// named relative to a downloaded image is a tenant's disk or seed.
func (p *Provider) downloadsPool() string {
	return poolName("marketplace-downloads", p.cfg.DownloadDir)
}

func poolName(prefix, dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return prefix + "-" + hex.EncodeToString(sum[:4])
}

// networkXML is the flat NAT network every guest joined before each project had its own; it is made
// when the host has none of that name for the domains defined on it (an upgrade moves them). dnsmasq's ping check
// (up to 3 s per offer, one at a time) starves guests that ask for addresses together: it is off.
const networkXML = `<network xmlns:dnsmasq='http://libvirt.org/schemas/network/dnsmasq/1.0'>
<name>%s</name><forward mode='nat'/><bridge name='mpbr0' stp='off' delay='0'/>
<ip address='10.213.0.1' netmask='255.255.255.0'><dhcp><range start='10.213.0.10' end='10.213.0.250'/></dhcp></ip>
<dnsmasq:options><dnsmasq:option value='no-ping'/></dnsmasq:options></network>`

// ensureHost makes the storage pools, the flat network and the guest filters when they are missing and
// starts them.
func (p *Provider) ensureHost(ctx context.Context, l *golibvirt.Libvirt) error {
	for _, pool := range []struct{ name, dir string }{{p.imagesPool(), p.cfg.ImageDir}, {p.workPool(), p.cfg.PoolDir}, {p.downloadsPool(), p.cfg.DownloadDir}} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := ensurePool(l, pool.name, pool.dir); err != nil {
			return err
		}
	}
	if err := ensureFilters(l, p.filters); err != nil {
		return err
	}
	nw, err := l.NetworkLookupByName(p.cfg.Network)
	if isCode(err, golibvirt.ErrNoNetwork) {
		if nw, err = l.NetworkDefineXML(fmt.Sprintf(networkXML, p.cfg.Network)); err == nil {
			err = l.NetworkSetAutostart(nw, 1)
		} else if again, lookupErr := l.NetworkLookupByName(p.cfg.Network); lookupErr == nil {
			nw, err = again, nil // defined by another worker starting at the same moment
		}
	}
	if err != nil {
		return fmt.Errorf("libvirt network %s: %w", p.cfg.Network, err)
	}
	if active, err := l.NetworkIsActive(nw); err != nil {
		return fmt.Errorf("libvirt network %s: %w", p.cfg.Network, err)
	} else if active == 0 {
		if err := l.NetworkCreate(nw); err != nil {
			// Another worker starting at the same moment may have started it first.
			if active, activeErr := l.NetworkIsActive(nw); activeErr != nil || active == 0 {
				return fmt.Errorf("start libvirt network %s: %w", p.cfg.Network, err)
			}
		}
	}
	return nil
}

// ensurePool defines a directory storage pool at dir when none of that name exists, and starts it.
func ensurePool(l *golibvirt.Libvirt, name, dir string) error {
	// The directory is made even when libvirt already knows the pool: libvirt keeps a pool's definition
	// after its directory was deleted (a checkout removed and cloned again at the same path), and a
	// volume made in it then fails to open.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("storage pool %s: %w", name, err)
	}
	pool, err := l.StoragePoolLookupByName(name)
	if isCode(err, golibvirt.ErrNoStoragePool) {
		x, xerr := (&libvirtxml.StoragePool{Type: "dir", Name: name,
			Target: &libvirtxml.StoragePoolTarget{Path: dir}}).Marshal()
		if xerr != nil {
			return xerr
		}
		if pool, err = l.StoragePoolDefineXML(x, 0); err == nil {
			err = l.StoragePoolSetAutostart(pool, 1)
		} else if again, lookupErr := l.StoragePoolLookupByName(name); lookupErr == nil {
			// Another worker starting at the same moment defined it first ("already exists").
			pool, err = again, nil
		}
	}
	if err != nil {
		return fmt.Errorf("storage pool %s: %w", name, err)
	}
	state, _, _, _, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		return fmt.Errorf("storage pool %s: %w", name, err)
	}
	if golibvirt.StoragePoolState(state) != golibvirt.StoragePoolRunning {
		if err := l.StoragePoolCreate(pool, 0); err != nil {
			// Another worker starting at the same moment may have started it first ("already active").
			if state, _, _, _, infoErr := l.StoragePoolGetInfo(pool); infoErr != nil || golibvirt.StoragePoolState(state) != golibvirt.StoragePoolRunning {
				return fmt.Errorf("start storage pool %s: %w", name, err)
			}
		}
	}
	return nil
}
