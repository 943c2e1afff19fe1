package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// uploadVolume creates a volume in pool and streams size bytes of r into it. A failed upload deletes it.
func (p *Provider) uploadVolume(ctx context.Context, l *golibvirt.Libvirt, pool golibvirt.StoragePool, name, format string, r io.ReadSeeker, size uint64) (golibvirt.StorageVol, error) {
	if err := ctx.Err(); err != nil {
		return golibvirt.StorageVol{}, err
	}
	x, err := (&libvirtxml.StorageVolume{Name: name, Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: size},
		Target: &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}}}).Marshal()
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	vol, err := l.StorageVolCreateXML(pool, x, 0)
	if err != nil {
		return golibvirt.StorageVol{}, fmt.Errorf("create volume %s: %w", name, err)
	}
	if _, err = r.Seek(0, io.SeekStart); err == nil {
		err = l.StorageVolUpload(vol, r, 0, size, 0)
	}
	if err != nil {
		l.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal)
		return golibvirt.StorageVol{}, fmt.Errorf("upload volume %s: %w", name, err)
	}
	return vol, nil
}

// ensureOverlay returns the path of the deployment's copy-on-write overlay of base, creating it when
// missing: the base image itself is never written to.
func (p *Provider) ensureOverlay(ctx context.Context, l *golibvirt.Libvirt, name string, base image) (string, error) {
	pool, err := l.StoragePoolLookupByName(p.workPool())
	if err != nil {
		return "", fmt.Errorf("storage pool %s: %w", p.workPool(), err)
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if isCode(err, golibvirt.ErrNoStorageVol) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		x, xerr := (&libvirtxml.StorageVolume{Name: name,
			Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: base.capacity},
			Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
			BackingStore: &libvirtxml.StorageVolumeBackingStore{Path: base.path,
				Format: &libvirtxml.StorageVolumeTargetFormat{Type: base.format}}}).Marshal()
		if xerr != nil {
			return "", xerr
		}
		vol, err = l.StorageVolCreateXML(pool, x, 0)
	}
	if err != nil {
		return "", fmt.Errorf("overlay volume %s: %w", name, err)
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("overlay volume %s: %w", name, err)
	}
	return path, nil
}

// deleteVolume deletes a volume of the work pool; a missing one is success.
func (p *Provider) deleteVolume(ctx context.Context, l *golibvirt.Libvirt, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pool, err := l.StoragePoolLookupByName(p.workPool())
	if err != nil {
		return fmt.Errorf("storage pool %s: %w", p.workPool(), err)
	}
	vol, err := l.StorageVolLookupByName(pool, name)
	if isCode(err, golibvirt.ErrNoStorageVol) {
		return nil
	}
	if err == nil {
		err = l.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal)
	}
	if err != nil && !isCode(err, golibvirt.ErrNoStorageVol) {
		return fmt.Errorf("delete volume %s: %w", name, err)
	}
	return nil
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return nil
}
