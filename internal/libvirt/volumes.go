package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/marketplace/marketplace/internal/fetch"
	"github.com/marketplace/marketplace/internal/marketplace"
)

// image is a base image on the host.
type image struct {
	path, format string
	capacity     uint64
}

// baseImage finds an application's base image: a file of the image directory, or an http(s) URL
// downloaded once (through the fetch guard, with a size limit) into the work pool under its digest.
func (p *Provider) baseImage(ctx context.Context, l *golibvirt.Libvirt, ref string) (image, error) {
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		return p.downloadedImage(ctx, l, ref)
	}
	pool, err := l.StoragePoolLookupByName(p.imagesPool())
	if err != nil {
		return image{}, fmt.Errorf("storage pool %s: %w", p.imagesPool(), err)
	}
	vol, err := l.StorageVolLookupByName(pool, ref)
	if isCode(err, golibvirt.ErrNoStorageVol) {
		// A file copied in since the pool was last read.
		if err := l.StoragePoolRefresh(pool, 0); err != nil {
			return image{}, fmt.Errorf("refresh storage pool %s: %w", p.imagesPool(), err)
		}
		vol, err = l.StorageVolLookupByName(pool, ref)
	}
	if isCode(err, golibvirt.ErrNoStorageVol) {
		return image{}, marketplace.Errorf(marketplace.EINVALID, "image %q is not in the VM host's image directory %s", ref, p.cfg.ImageDir)
	}
	if err != nil {
		return image{}, fmt.Errorf("image %q: %w", ref, err)
	}
	return volumeImage(l, vol)
}

// volumeImage reads a volume's path, format and size.
func volumeImage(l *golibvirt.Libvirt, vol golibvirt.StorageVol) (image, error) {
	text, err := l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return image{}, fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	var vx libvirtxml.StorageVolume
	if err := vx.Unmarshal(text); err != nil {
		return image{}, fmt.Errorf("volume %s: %w", vol.Name, err)
	}
	img := image{format: "raw"}
	if vx.Target != nil {
		img.path = vx.Target.Path
		if vx.Target.Format != nil && vx.Target.Format.Type != "" {
			img.format = vx.Target.Format.Type
		}
	}
	if vx.Capacity != nil {
		img.capacity = vx.Capacity.Value
	}
	if img.format != "raw" && img.format != "qcow2" {
		return image{}, marketplace.Errorf(marketplace.EINVALID, "image %s is %s; qcow2 and raw images boot", vol.Name, img.format)
	}
	return img, nil
}

// downloadedImage returns the work pool's copy of the image at rawURL, downloading it the first time.
func (p *Provider) downloadedImage(ctx context.Context, l *golibvirt.Libvirt, rawURL string) (image, error) {
	p.downloads.Lock()
	defer p.downloads.Unlock()
	pool, err := l.StoragePoolLookupByName(p.workPool())
	if err != nil {
		return image{}, fmt.Errorf("storage pool %s: %w", p.workPool(), err)
	}
	urlKey := sha256.Sum256([]byte(rawURL))
	index := filepath.Join(p.cfg.CacheDir, "images", hex.EncodeToString(urlKey[:]))
	if digest, err := os.ReadFile(index); err == nil {
		if vol, err := l.StorageVolLookupByName(pool, string(digest)); err == nil {
			return volumeImage(l, vol)
		}
	}
	file, err := os.CreateTemp("", "mp-image-")
	if err != nil {
		return image{}, err
	}
	defer os.Remove(file.Name())
	defer file.Close()
	sum, size, err := p.download(ctx, rawURL, file)
	if err != nil {
		return image{}, err
	}
	head := make([]byte, 4)
	file.ReadAt(head, 0)
	format := "raw"
	if bytes.Equal(head, []byte("QFI\xfb")) {
		format = "qcow2"
	}
	name := "image-" + sum + "." + format
	vol, err := l.StorageVolLookupByName(pool, name)
	if isCode(err, golibvirt.ErrNoStorageVol) {
		vol, err = p.uploadVolume(ctx, l, pool, name, format, file, uint64(size))
	}
	if err != nil {
		return image{}, err
	}
	if err := os.MkdirAll(filepath.Dir(index), 0o755); err == nil {
		os.WriteFile(index, []byte(name), 0o644)
	}
	return volumeImage(l, vol)
}

// download writes the body at rawURL to w, at most ImageMaxBytes, through the fetch guard (which
// refuses internal addresses at every dial and redirect), and returns its sha256 and size.
func (p *Provider) download(ctx context.Context, rawURL string, w io.Writer) (string, int64, error) {
	what := "image " + marketplace.RedactURLs(rawURL)
	if p.cfg.Fetch == nil {
		return "", 0, errors.New("no fetch guard configured for image downloads")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, http.NoBody)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("User-Agent", "marketplace")
	client := p.cfg.Fetch.HTTPClient()
	// Images are larger than charts: the guard's dialer and redirect rules, this provider's size limit.
	client.Transport, client.Timeout = p.cfg.Fetch.Transport(), 0
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, marketplace.Errorf(marketplace.EINVALID, "%s cannot be fetched: %v", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("%s cannot be fetched: the server answered %d %s", what, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	limit := p.cfg.ImageMaxBytes
	if resp.ContentLength > limit {
		return "", 0, &fetch.TooLargeError{What: what, Limit: limit}
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", 0, fmt.Errorf("download %s: %w", what, err)
	}
	if n > limit {
		return "", 0, fmt.Errorf("%s is larger than the limit of %d bytes (VM_IMAGE_MAX_BYTES)", what, limit)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

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
