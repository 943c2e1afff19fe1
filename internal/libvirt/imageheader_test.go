package libvirt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// qcow2Header builds a qcow2 header of version 2 or 3 with the given fields, and extensions (type, data)
// after it.
func qcow2Header(version uint32, size uint64, edit func(h []byte), exts ...[2]any) []byte {
	be := binary.BigEndian
	length := uint32(qcow2V2HeaderLength)
	if version == 3 {
		length = 112
	}
	h := make([]byte, length, 4096)
	copy(h, qcow2Magic)
	be.PutUint32(h[4:], version)
	be.PutUint32(h[20:], 16) // 64 KiB clusters
	be.PutUint64(h[24:], size)
	if version == 3 {
		be.PutUint32(h[96:], 4)
		be.PutUint32(h[100:], length)
	}
	for _, e := range exts {
		data := e[1].([]byte)
		h = be.AppendUint32(h, e[0].(uint32))
		h = be.AppendUint32(h, uint32(len(data)))
		h = append(h, data...)
		for len(h)%8 != 0 {
			h = append(h, 0)
		}
	}
	h = append(h, make([]byte, 8)...) // end of extensions
	if edit != nil {
		edit(h)
	}
	return append(h, make([]byte, 8192)...)
}

func TestInspectImageHeaders(t *testing.T) {
	be := binary.BigEndian
	const gib = 1 << 30
	withAt := func(off int, magic string, size int) []byte {
		b := make([]byte, size)
		copy(b[off:], magic)
		return b
	}
	for _, tc := range []struct {
		name   string
		image  []byte
		format string
		size   uint64
		refuse string
	}{
		{"qcow2 v3", qcow2Header(3, 2*gib, nil), "qcow2", 2 * gib, ""},
		{"qcow2 v2", qcow2Header(2, gib, nil), "qcow2", gib, ""},
		{"qcow2 dirty, compression type, extended L2", qcow2Header(3, gib, func(h []byte) { be.PutUint64(h[72:], 1|1<<3|1<<4) }), "qcow2", gib, ""},
		{"qcow2 with a feature table and a backing format but no backing file", qcow2Header(3, gib, nil,
			[2]any{uint32(0x6803f857), make([]byte, 48)}, [2]any{uint32(0xe2792aca), []byte("raw")}), "qcow2", gib, ""},
		{"raw", make([]byte, 1<<20), "raw", 1 << 20, ""},
		{"raw boot sector", withAt(510, "\x55\xaa", 4096), "raw", 4096, ""},
		{"iso (raw)", withAt(32769, "CD001", 40000), "raw", 40000, ""},

		{"qcow2 backing file", qcow2Header(3, gib, func(h []byte) { be.PutUint64(h[8:], 512); be.PutUint32(h[16:], 13) }), "", 0, "backing file"},
		{"qcow2 backing file size only", qcow2Header(2, gib, func(h []byte) { be.PutUint32(h[16:], 1) }), "", 0, "backing file"},
		{"qcow2 data file bit", qcow2Header(3, gib, func(h []byte) { be.PutUint64(h[72:], 1<<2) }), "", 0, "external data file"},
		{"qcow2 data file extension", qcow2Header(3, gib, nil, [2]any{uint32(qcow2ExtDataFile), []byte("/dev/sda")}), "", 0, "external data file"},
		{"qcow2 encrypted", qcow2Header(3, gib, func(h []byte) { be.PutUint32(h[32:], 2) }), "", 0, "encrypted"},
		{"qcow2 encryption extension", qcow2Header(3, gib, nil, [2]any{uint32(qcow2ExtEncryption), make([]byte, 16)}), "", 0, "encryption"},
		{"qcow2 corrupt", qcow2Header(3, gib, func(h []byte) { be.PutUint64(h[72:], 1<<1) }), "", 0, "corrupt"},
		{"qcow2 unknown incompatible feature", qcow2Header(3, gib, func(h []byte) { be.PutUint64(h[72:], 1<<9) }), "", 0, "incompatible features"},
		{"qcow v1", qcow2Header(2, gib, func(h []byte) { be.PutUint32(h[4:], 1) }), "", 0, "qcow version 1"},
		{"qcow2 truncated", []byte(qcow2Magic + "\x00\x00\x00\x03"), "", 0, "truncated"},
		{"qcow2 bad cluster size", qcow2Header(3, gib, func(h []byte) { be.PutUint32(h[20:], 40) }), "", 0, "cluster size"},
		{"qcow2 bad header length", qcow2Header(3, gib, func(h []byte) { be.PutUint32(h[100:], 50) }), "", 0, "invalid length"},
		{"qcow2 extensions without end", append([]byte(nil), qcow2Header(3, gib, nil, [2]any{uint32(7), make([]byte, 1<<17)})[:1<<16]...), "", 0, "do not end"},
		{"qcow2 too large", qcow2Header(3, 100*gib, nil), "", 0, "virtual size of 100 GiB is more than this marketplace's maximum disk of 64 GiB (VM_MAX_DISK)"},
		{"qcow2 empty", qcow2Header(3, 0, nil), "", 0, "virtual size is 0"},
		{"empty", nil, "", 0, "empty"},
		{"vmdk", withAt(0, "KDMV", 4096), "", 0, "vmdk"},
		{"vmdk descriptor", []byte("# Disk DescriptorFile\nversion=1\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"/etc/shadow\" 0\n"), "", 0, "vmdk"},
		{"vdi", withAt(64, "\x7f\x10\xda\xbe", 4096), "", 0, "vdi"},
		{"vhdx", withAt(0, "vhdxfile", 4096), "", 0, "vhdx"},
		{"vpc", withAt(0, "conectix", 4096), "", 0, "vpc"},
		{"fixed vhd", withAt(4096-512, "conectix", 4096), "", 0, "vpc"},
		{"qed", withAt(0, "QED\x00", 4096), "", 0, "qed"},
		{"luks", withAt(0, "LUKS\xba\xbe", 4096), "", 0, "luks"},
		{"parallels", withAt(0, "WithoutFreeSpace", 4096), "", 0, "parallels"},
		{"dmg", withAt(8192-512, "koly", 8192), "", 0, "dmg"},
		{"bochs", withAt(0, "Bochs Virtual HD Image", 4096), "", 0, "bochs"},
		{"cloop", withAt(0, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop", 4096), "", 0, "cloop"},
		{"xz", withAt(0, "\xfd7zXZ\x00", 4096), "", 0, "xz archive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := inspectImage(bytes.NewReader(tc.image), int64(len(tc.image)), 64*gib)
			if tc.refuse != "" {
				var r *imageRefusal
				if !errors.As(err, &r) || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("got %+v, %v: want a refusal naming %q", info, err, tc.refuse)
				}
				return
			}
			if err != nil || info.format != tc.format || info.virtualSize != tc.size {
				t.Fatalf("got %+v, %v: want %s of %d bytes", info, err, tc.format, tc.size)
			}
		})
	}
}

// TestInspectImageQemuImg reads images qemu-img itself made: the attacks of issue 17 among them.
func TestInspectImageQemuImg(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img is needed (make vmhost installs qemu-utils)")
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	if err := os.WriteFile(base, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		format string
		refuse string
	}{
		{"plain qcow2", []string{"-f", "qcow2", "{}", "1G"}, "qcow2", ""},
		{"qcow2 compat 0.10", []string{"-f", "qcow2", "-o", "compat=0.10", "{}", "1G"}, "qcow2", ""},
		{"qcow2 zstd extended l2", []string{"-f", "qcow2", "-o", "compression_type=zstd,extended_l2=on", "{}", "1G"}, "qcow2", ""},
		{"absolute backing", []string{"-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", "{}"}, "", "backing file"},
		{"relative backing", []string{"-f", "qcow2", "-u", "-F", "raw", "-b", "mp-0123456789ab-d1-seed.img", "{}", "1G"}, "", "backing file"},
		{"data file", []string{"-f", "qcow2", "-o", "data_file=" + base, "{}", "1M"}, "", "external data file"},
		{"encrypted", []string{"-f", "qcow2", "--object", "secret,id=s0,data=x", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10", "{}", "1M"}, "", "encrypt"},
		{"100G", []string{"-f", "qcow2", "{}", "100G"}, "", "VM_MAX_DISK"},
		{"vmdk", []string{"-f", "vmdk", "{}", "1G"}, "", "vmdk"},
		{"vmdk flat", []string{"-f", "vmdk", "-o", "subformat=monolithicFlat", "{}", "1M"}, "", "vmdk"},
		{"vdi", []string{"-f", "vdi", "{}", "1G"}, "", "vdi"},
		{"vhdx", []string{"-f", "vhdx", "{}", "1G"}, "", "vhdx"},
		{"vpc", []string{"-f", "vpc", "{}", "1G"}, "", "vpc"},
		{"vpc fixed", []string{"-f", "vpc", "-o", "subformat=fixed", "{}", "1M"}, "", "vpc"},
		{"qed", []string{"-f", "qed", "{}", "1G"}, "", "qed"},
		{"luks", []string{"-f", "luks", "--object", "secret,id=s0,data=x", "-o", "key-secret=s0,iter-time=10", "{}", "1M"}, "", "luks"},
		{"parallels", []string{"-f", "parallels", "{}", "1G"}, "", "parallels"},
		{"raw", []string{"-f", "raw", "{}", "1M"}, "raw", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"create", "-q"}, tc.args...)
			for i, a := range args {
				if a == "{}" {
					args[i] = path
				}
			}
			// A LUKS header's key derivation is timed by the thread's CPU clock, which on a busy machine
			// can read no time at all ("Unable to get accurate CPU usage"): a few tries, as a person would.
			for try := 1; ; try++ {
				out, err := exec.Command("qemu-img", args...).CombinedOutput()
				if err == nil {
					break
				}
				if try == 5 || !strings.Contains(string(out), "Unable to get accurate CPU usage") {
					t.Fatalf("qemu-img %v: %v: %s", args, err, out)
				}
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			st, _ := f.Stat()
			info, err := inspectImage(f, st.Size(), 64<<30)
			if tc.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("got %+v, %v: want a refusal naming %q", info, err, tc.refuse)
				}
				return
			}
			if err != nil || info.format != tc.format {
				t.Fatalf("got %+v, %v: want %s", info, err, tc.format)
			}
		})
	}
}

// FuzzInspectImage: no header makes the check panic, and what it accepts is qcow2 or raw, of a virtual
// size within the maximum; a qcow2 it accepts names no backing file and no data file.
func FuzzInspectImage(f *testing.F) {
	f.Add(qcow2Header(3, 1<<30, nil))
	f.Add(qcow2Header(2, 1<<30, nil, [2]any{uint32(qcow2ExtDataFile), []byte("x")}))
	f.Add([]byte("# Disk DescriptorFile\n"))
	f.Add(make([]byte, 600))
	f.Fuzz(func(t *testing.T, image []byte) {
		const maxDisk = 1 << 40
		info, err := inspectImage(bytes.NewReader(image), int64(len(image)), maxDisk)
		if err != nil {
			return
		}
		if info.format != "qcow2" && info.format != "raw" || info.virtualSize == 0 || info.virtualSize > maxDisk {
			t.Fatalf("accepted %+v", info)
		}
		if info.format == "qcow2" {
			be := binary.BigEndian
			if be.Uint64(image[8:]) != 0 || be.Uint32(image[16:]) != 0 || be.Uint32(image[32:]) != 0 {
				t.Fatalf("accepted a qcow2 with a backing file or encryption: %+v", info)
			}
			if be.Uint32(image[4:]) == 3 && be.Uint64(image[72:])&(1<<2) != 0 {
				t.Fatalf("accepted a qcow2 with an external data file")
			}
		} else if info.virtualSize != uint64(len(image)) {
			t.Fatalf("raw of %d bytes has virtual size %d", len(image), info.virtualSize)
		}
	})
}
