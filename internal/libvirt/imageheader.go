package libvirt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// A publisher's image is read by QEMU, running as root, with the format this provider names: only
// qcow2 and raw, and a qcow2 only when its header makes QEMU open nothing but the image itself. A qcow2
// header can name a backing file (an absolute path, or a name next to the image: another tenant's disk)
// or an external data file, or ask for decryption; any of these is refused here, before libvirt or
// qemu-img ever opens the image.

// headerBytes is how much of an image inspectImage reads: a qcow2 header and its extensions, and the
// magic of every other format it knows.
const headerBytes = 64 << 10

// imageInfo is what an image's header says.
type imageInfo struct {
	format      string // "qcow2" or "raw"
	virtualSize uint64 // the disk the guest sees, in bytes
}

// imageRefusal is why an image is not booted; its text is meant for the publisher.
type imageRefusal struct{ reason string }

func (e *imageRefusal) Error() string { return e.reason }

func refuse(format string, args ...any) error {
	return &imageRefusal{reason: fmt.Sprintf(format, args...)}
}

// qcow2 header fields (big-endian), https://www.qemu.org/docs/master/interop/qcow2.html.
const (
	qcow2Magic          = "QFI\xfb"
	qcow2V2HeaderLength = 72
	qcow2V3MinHeaderLen = 104
	qcow2ExtEnd         = 0x00000000
	qcow2ExtEncryption  = 0x0537be77
	qcow2ExtDataFile    = 0x44415441
	// Incompatible feature bits QEMU knows: dirty (0), corrupt (1), external data file (2), compression
	// type (3), extended L2 entries (4). Dirty, compression type and extended L2 change nothing of what
	// the image opens; corrupt and external data file are refused; an unknown bit may mean anything.
	qcow2IncompatCorrupt  = 1 << 1
	qcow2IncompatDataFile = 1 << 2
	qcow2IncompatKnown    = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4
)

// otherFormats are the magics of the disk formats QEMU reads other than qcow2 and raw, and of archives
// (an image still compressed boots as garbage): such an image is refused by name rather than booted as
// raw bytes.
var otherFormats = []struct {
	name   string
	offset int64 // from the start; negative: from the end
	magic  string
}{
	{"vmdk", 0, "KDMV"},
	{"vmdk (VMware 3 COW)", 0, "COWD"},
	{"vdi", 0, "<<< Oracle VM VirtualBox Disk Image >>>"},
	{"vdi", 0, "<<< Sun VirtualBox Disk Image >>>"},
	{"vdi", 0, "<<< Sun xVM VirtualBox Disk Image >>>"},
	{"vdi", 0, "<<< innotek VirtualBox Disk Image >>>"},
	{"vdi", 64, "\x7f\x10\xda\xbe"},
	{"vhdx", 0, "vhdxfile"},
	{"vpc (VHD)", 0, "conectix"},
	{"vpc (VHD)", -512, "conectix"},
	{"qed", 0, "QED\x00"},
	{"luks", 0, "LUKS\xba\xbe"},
	{"parallels", 0, "WithoutFreeSpace"},
	{"parallels", 0, "WithouFreSpacExt"},
	{"dmg", -512, "koly"},
	{"bochs", 0, "Bochs Virtual HD Image"},
	{"cloop", 0, "#!/bin/sh\n#V2.0 Format\n"},
	{"cow (User Mode Linux)", 0, "OOOM"},
	{"gzip archive", 0, "\x1f\x8b"},
	{"xz archive", 0, "\xfd7zXZ\x00"},
	{"zstd archive", 0, "\x28\xb5\x2f\xfd"},
	{"bzip2 archive", 0, "BZh"},
}

// vmdkDescriptor starts a VMDK text descriptor, a file that names other files (its extents).
var vmdkDescriptor = []byte("# Disk DescriptorFile")

// inspectImage reads the header of the image r of size bytes and says what it is, or why it is refused:
// a format other than qcow2 and raw, a qcow2 naming a backing file or an external data file, encrypted,
// marked corrupt or with incompatible features QEMU may know and this check does not, a virtual size of
// zero or above maxDisk.
func inspectImage(r io.ReaderAt, size int64, maxDisk uint64) (imageInfo, error) {
	if size <= 0 {
		return imageInfo{}, refuse("the image is empty")
	}
	head := make([]byte, min(size, headerBytes))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return imageInfo{}, fmt.Errorf("read the image's header: %w", err)
	}
	var info imageInfo
	if bytes.HasPrefix(head, []byte(qcow2Magic)) {
		var err error
		if info, err = inspectQcow2(head); err != nil {
			return imageInfo{}, err
		}
	} else {
		if name, err := otherFormat(r, head, size); err != nil {
			return imageInfo{}, err
		} else if name != "" {
			return imageInfo{}, refuse("the image is in the %s format; only qcow2 and raw images are booted (convert it: qemu-img convert -O qcow2)", name)
		}
		info = imageInfo{format: "raw", virtualSize: uint64(size)}
	}
	if info.virtualSize == 0 {
		return imageInfo{}, refuse("the image's virtual size is 0 bytes")
	}
	if maxDisk > 0 && info.virtualSize > maxDisk {
		return imageInfo{}, refuse("the image's virtual size of %s is more than this marketplace's maximum disk of %s (VM_MAX_DISK)",
			byteSize(info.virtualSize), byteSize(maxDisk))
	}
	return info, nil
}

// otherFormat names the format of an image whose magic is one of otherFormats, or a VMDK descriptor.
func otherFormat(r io.ReaderAt, head []byte, size int64) (string, error) {
	var tail []byte
	for _, f := range otherFormats {
		at := f.offset
		if at < 0 {
			at += size
			if at < 0 {
				continue
			}
			if tail == nil {
				tail = make([]byte, 512)
				if size < 512 {
					tail = tail[:size]
				}
				if _, err := r.ReadAt(tail, size-int64(len(tail))); err != nil && !errors.Is(err, io.EOF) {
					return "", fmt.Errorf("read the image's footer: %w", err)
				}
			}
			if bytes.HasPrefix(tail[at-(size-int64(len(tail))):], []byte(f.magic)) {
				return f.name, nil
			}
			continue
		}
		if at < int64(len(head)) && bytes.HasPrefix(head[at:], []byte(f.magic)) {
			return f.name, nil
		}
	}
	if bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), vmdkDescriptor) {
		return "vmdk (a text descriptor naming other files)", nil
	}
	return "", nil
}

// inspectQcow2 reads a qcow2 header (head holds its first bytes).
func inspectQcow2(head []byte) (imageInfo, error) {
	if len(head) < qcow2V2HeaderLength {
		return imageInfo{}, refuse("the image's qcow2 header is truncated")
	}
	be := binary.BigEndian
	version := be.Uint32(head[4:])
	if version != 2 && version != 3 {
		return imageInfo{}, refuse("the image is a qcow version %d; only qcow2 (versions 2 and 3) and raw images are booted", version)
	}
	if be.Uint64(head[8:]) != 0 || be.Uint32(head[16:]) != 0 {
		return imageInfo{}, refuse("the image's qcow2 header names a backing file; an image must be self-contained (qemu-img convert -O qcow2 flattens it)")
	}
	clusterBits := be.Uint32(head[20:])
	if clusterBits < 9 || clusterBits > 21 {
		return imageInfo{}, refuse("the image's qcow2 header has an invalid cluster size (2^%d bytes)", clusterBits)
	}
	info := imageInfo{format: "qcow2", virtualSize: be.Uint64(head[24:])}
	if crypt := be.Uint32(head[32:]); crypt != 0 {
		return imageInfo{}, refuse("the image is encrypted (qcow2 encryption method %d); only unencrypted images are booted", crypt)
	}
	headerLength := uint64(qcow2V2HeaderLength)
	if version == 3 {
		if len(head) < qcow2V3MinHeaderLen {
			return imageInfo{}, refuse("the image's qcow2 header is truncated")
		}
		incompatible := be.Uint64(head[72:])
		switch {
		case incompatible&qcow2IncompatDataFile != 0:
			return imageInfo{}, refuse("the image's qcow2 header asks for an external data file; an image must be self-contained")
		case incompatible&qcow2IncompatCorrupt != 0:
			return imageInfo{}, refuse("the image's qcow2 header marks it corrupt (qemu-img check -r all repairs it)")
		case incompatible&^qcow2IncompatKnown != 0:
			return imageInfo{}, refuse("the image's qcow2 header has incompatible features this marketplace does not know (%#x)", incompatible&^qcow2IncompatKnown)
		}
		headerLength = uint64(be.Uint32(head[100:]))
		if headerLength < qcow2V3MinHeaderLen || headerLength%8 != 0 {
			return imageInfo{}, refuse("the image's qcow2 header has an invalid length (%d)", headerLength)
		}
	}
	// The header extensions follow the header, within its first cluster.
	end := min(uint64(1)<<clusterBits, uint64(len(head)))
	for at := headerLength; ; {
		if at+8 > end {
			return imageInfo{}, refuse("the image's qcow2 header extensions do not end within its first %d bytes", end)
		}
		kind, length := be.Uint32(head[at:]), uint64(be.Uint32(head[at+4:]))
		switch kind {
		case qcow2ExtEnd:
			return info, nil
		case qcow2ExtDataFile:
			return imageInfo{}, refuse("the image's qcow2 header names an external data file; an image must be self-contained")
		case qcow2ExtEncryption:
			return imageInfo{}, refuse("the image's qcow2 header carries an encryption header; only unencrypted images are booted")
		}
		at += 8 + (length+7)/8*8
	}
}

// byteSize writes n bytes for a person: in GiB, MiB or KiB when it is a whole number of them.
func byteSize(n uint64) string {
	for _, u := range []struct {
		unit  string
		shift uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.unit)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
