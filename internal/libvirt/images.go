package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/marketplace/marketplace/internal/marketplace"
)

// image is a base image on the host, inspected: its format and virtual size come from its header.
type image struct {
	path, format string
	capacity     uint64
}

// baseImage finds an application's base image, a file of the image directory or an http(s) URL
// downloaded once into the downloads pool, and inspects its header (inspectImage): an image that would
// make QEMU open anything but itself, of another format than qcow2 and raw, or larger than
// VM_MAX_DISK, is refused (a final failure: no retry changes it) before any volume or domain is made.
func (p *Provider) baseImage(ctx context.Context, l *golibvirt.Libvirt, ref string, publisher int64) (image, error) {
	var path string
	var err error
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		path, err = p.downloadedImage(ctx, l, ref, publisher)
	} else {
		path, err = p.directoryImage(l, ref)
	}
	if err != nil {
		return image{}, err
	}
	info, err := inspectFile(path, p.cfg.MaxDisk)
	if err != nil {
		return image{}, imageError(ref, err)
	}
	return image{path: path, format: info.format, capacity: info.virtualSize}, nil
}

// imageError is the error of an image that cannot be used: a refusal, final and meant for the
// publisher, or the error as it is.
func imageError(ref string, err error) error {
	var r *imageRefusal
	if errors.As(err, &r) {
		return marketplace.Final(marketplace.Errorf(marketplace.EINVALID, "image %s is refused: %s", marketplace.RedactURLs(ref), r.reason))
	}
	return fmt.Errorf("image %s: %w", marketplace.RedactURLs(ref), err)
}

// inspectFile inspects the image file at path.
func inspectFile(path string, maxDisk uint64) (imageInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return imageInfo{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return imageInfo{}, err
	}
	if !st.Mode().IsRegular() {
		return imageInfo{}, refuse("it is not a regular file")
	}
	return inspectImage(f, st.Size(), maxDisk)
}

// directoryImage is the path of a file of the image directory.
func (p *Provider) directoryImage(l *golibvirt.Libvirt, ref string) (string, error) {
	pool, err := l.StoragePoolLookupByName(p.imagesPool())
	if err != nil {
		return "", fmt.Errorf("storage pool %s: %w", p.imagesPool(), err)
	}
	vol, err := l.StorageVolLookupByName(pool, ref)
	if isCode(err, golibvirt.ErrNoStorageVol) {
		// A file copied in since the pool was last read.
		if err := l.StoragePoolRefresh(pool, 0); err != nil {
			return "", fmt.Errorf("refresh storage pool %s: %w", p.imagesPool(), err)
		}
		vol, err = l.StorageVolLookupByName(pool, ref)
	}
	if isCode(err, golibvirt.ErrNoStorageVol) {
		return "", marketplace.Errorf(marketplace.EINVALID, "image %q is not in the VM host's image directory %s", ref, p.cfg.ImageDir)
	}
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return path, nil
}

// downloaded is the index entry of one image URL: which volume of which pool holds its image, how
// many bytes were downloaded for it, and the publisher whose application caused the download (whose
// quota they count against). The index is a directory of one file per URL, named by the URL's digest
// (a URL may carry credentials: it is never written down).
type downloaded struct {
	Pool      string `json:"pool"`
	Volume    string `json:"volume"`
	Bytes     int64  `json:"bytes"`
	Publisher int64  `json:"publisher"`
}

func urlKey(rawURL string) string {
	sum := sha256.Sum256([]byte(rawURL))
	return hex.EncodeToString(sum[:])
}

func (p *Provider) indexDir() string { return filepath.Join(p.cfg.CacheDir, "images") }

// readIndex reads the entry of a URL digest. An entry of an earlier release holds only the name of a
// volume of the work pool, where downloads were kept then.
func (p *Provider) readIndex(key string) (downloaded, bool) {
	b, err := os.ReadFile(filepath.Join(p.indexDir(), key))
	if err != nil {
		return downloaded{}, false
	}
	var e downloaded
	if json.Unmarshal(b, &e) != nil {
		e = downloaded{Pool: p.workPool(), Volume: strings.TrimSpace(string(b))}
	}
	return e, e.Volume != ""
}

func (p *Provider) writeIndex(key string, e downloaded) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.indexDir(), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(p.indexDir(), key+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(p.indexDir(), key))
}

// readAllIndex reads every entry, by URL digest.
func (p *Provider) readAllIndex() map[string]downloaded {
	entries := map[string]downloaded{}
	files, _ := os.ReadDir(p.indexDir())
	for _, f := range files {
		if f.IsDir() || strings.HasSuffix(f.Name(), ".tmp") {
			continue
		}
		if e, ok := p.readIndex(f.Name()); ok {
			entries[f.Name()] = e
		}
	}
	return entries
}

// cachedImage is the path of the volume the index names for a URL digest, when it still exists.
func (p *Provider) cachedImage(l *golibvirt.Libvirt, key string) (string, bool) {
	e, ok := p.readIndex(key)
	if !ok {
		return "", false
	}
	pool, err := l.StoragePoolLookupByName(e.Pool)
	if err != nil {
		return "", false
	}
	vol, err := l.StorageVolLookupByName(pool, e.Volume)
	if err != nil || !p.volumeOnDisk(l, pool, vol) {
		return "", false
	}
	path, err := l.StorageVolGetPath(vol)
	return path, err == nil
}

// volumeOnDisk tells whether a volume the pool lists still has its file. A pool lists what it saw when it
// was last read, so a file deleted behind libvirt's back (a disk clean-up, a state directory made anew
// while libvirtd ran on) is still listed: asking for its info reads the file again, and when that fails
// the pool is read again so that it forgets the volume and the image is downloaded anew.
func (p *Provider) volumeOnDisk(l *golibvirt.Libvirt, pool golibvirt.StoragePool, vol golibvirt.StorageVol) bool {
	if _, _, _, err := l.StorageVolGetInfo(vol); err == nil {
		return true
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		p.cfg.Logger.Warn("could not read a storage pool again", "pool", pool.Name, "err", err)
	}
	return false
}

// downloadedImage returns the path of the downloads pool's copy of the image at rawURL, downloading it
// the first time. Downloads of one URL wait for each other (the second finds the first's image); those
// of different URLs do not. A downloaded image is inspected before it is kept: a refused one never
// enters the pool.
func (p *Provider) downloadedImage(ctx context.Context, l *golibvirt.Libvirt, rawURL string, publisher int64) (string, error) {
	key := urlKey(rawURL)
	if path, ok := p.cachedImage(l, key); ok {
		return path, nil
	}
	unlock, err := p.urlLocks.lock(ctx, key)
	if err != nil {
		return "", err
	}
	defer unlock()
	if path, ok := p.cachedImage(l, key); ok {
		return path, nil
	}
	file, err := os.CreateTemp("", "mp-image-")
	if err != nil {
		return "", err
	}
	defer os.Remove(file.Name())
	defer file.Close()
	sum, size, share, err := p.download(ctx, rawURL, file, publisher)
	if err != nil {
		return "", err
	}
	defer share.giveBack() // unless kept
	info, err := inspectImage(file, size, p.cfg.MaxDisk)
	if err != nil {
		return "", imageError(rawURL, err)
	}
	pool, err := l.StoragePoolLookupByName(p.downloadsPool())
	if err != nil {
		return "", fmt.Errorf("storage pool %s: %w", p.downloadsPool(), err)
	}
	name := "image-" + sum + "." + info.format
	vol, err := l.StorageVolLookupByName(pool, name)
	if err == nil && !p.volumeOnDisk(l, pool, vol) {
		vol, err = l.StorageVolLookupByName(pool, name)
	}
	if isCode(err, golibvirt.ErrNoStorageVol) {
		vol, err = p.uploadVolume(ctx, l, pool, name, info.format, file, uint64(size))
		if err != nil {
			// Another URL of the same bytes may have made it meanwhile.
			if again, lerr := l.StorageVolLookupByName(pool, name); lerr == nil {
				vol, err = again, nil
			}
		}
	}
	if err != nil {
		return "", err
	}
	path, err := l.StorageVolGetPath(vol)
	if err != nil {
		return "", fmt.Errorf("downloaded image %s: %w", name, err)
	}
	entry := downloaded{Pool: p.downloadsPool(), Volume: name, Bytes: size, Publisher: publisher}
	if err := share.keep(func() error { return p.writeIndex(key, entry) }); err != nil {
		return "", fmt.Errorf("remember the download of %s: %w", marketplace.RedactURLs(rawURL), err)
	}
	return path, nil
}

// CollectImages deletes the downloaded images whose URLs are not among named (the image URLs that
// application versions, and the deployments still running them, name) and forgets their downloads, so
// their bytes no longer count against their publisher's quota. An image an overlay of the work pool is
// made from is kept whatever named says, until the next collection after its last deployment is gone.
// It returns how many URLs were forgotten.
func (p *Provider) CollectImages(ctx context.Context, named []string) (int, error) {
	keep := map[string]bool{}
	for _, u := range named {
		keep[urlKey(u)] = true
	}
	entries := p.readAllIndex()
	var stale []string
	kept := map[string]bool{} // pool/volume of the URLs still named
	for key, e := range entries {
		if keep[key] {
			kept[e.Pool+"/"+e.Volume] = true
		} else {
			stale = append(stale, key)
		}
	}
	if len(stale) == 0 {
		return 0, nil
	}
	l, err := p.client(ctx)
	if err != nil {
		return 0, err
	}
	backing, err := p.backingPaths(l)
	if err != nil {
		return 0, err
	}
	forgotten := 0
	for _, key := range stale {
		if err := p.collect(ctx, l, key, kept, backing); err != nil {
			return forgotten, err
		}
		forgotten++
	}
	return forgotten, nil
}

// collect forgets one URL's download and deletes its volume unless another URL's entry or an overlay
// uses it; an image an overlay uses is left, entry and all, for a later collection.
func (p *Provider) collect(ctx context.Context, l *golibvirt.Libvirt, key string, kept, backing map[string]bool) error {
	unlock, err := p.urlLocks.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	e, ok := p.readIndex(key)
	if !ok {
		return nil
	}
	if !kept[e.Pool+"/"+e.Volume] {
		pool, err := l.StoragePoolLookupByName(e.Pool)
		if err != nil {
			return fmt.Errorf("storage pool %s: %w", e.Pool, err)
		}
		vol, err := l.StorageVolLookupByName(pool, e.Volume)
		switch {
		case isCode(err, golibvirt.ErrNoStorageVol):
		case err != nil:
			return fmt.Errorf("downloaded image %s: %w", e.Volume, err)
		default:
			path, err := l.StorageVolGetPath(vol)
			if err != nil {
				return fmt.Errorf("downloaded image %s: %w", e.Volume, err)
			}
			if backing[path] {
				return nil
			}
			if err := l.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal); err != nil && !isCode(err, golibvirt.ErrNoStorageVol) {
				return fmt.Errorf("delete downloaded image %s: %w", e.Volume, err)
			}
			p.cfg.Logger.Info("deleted a downloaded image no application names any more", "volume", e.Volume, "bytes", e.Bytes, "publisher", e.Publisher)
		}
	}
	// The publisher's quota reads the index again at their next download.
	return removeFile(filepath.Join(p.indexDir(), key))
}

// backingPaths are the base images of the overlays of the work pool, which every deployment's disk is.
func (p *Provider) backingPaths(l *golibvirt.Libvirt) (map[string]bool, error) {
	pool, err := l.StoragePoolLookupByName(p.workPool())
	if err != nil {
		return nil, fmt.Errorf("storage pool %s: %w", p.workPool(), err)
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		return nil, fmt.Errorf("refresh storage pool %s: %w", p.workPool(), err)
	}
	vols, _, err := l.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return nil, fmt.Errorf("volumes of storage pool %s: %w", p.workPool(), err)
	}
	paths := map[string]bool{}
	for _, vol := range vols {
		if !strings.HasSuffix(vol.Name, ".qcow2") {
			continue
		}
		path, err := l.StorageVolGetPath(vol)
		if err != nil {
			continue // deleted meanwhile
		}
		base, err := backingPath(l, path)
		if err != nil && !isCode(err, golibvirt.ErrNoStorageVol) {
			return nil, err
		}
		if base != "" {
			paths[base] = true
		}
	}
	return paths, nil
}
