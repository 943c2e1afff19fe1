#!/usr/bin/env bash
# build.sh OUT.qcow2: build the marketplace's bootable test image from Debian packages only: the cloud
# kernel, busybox-static and qemu-guest-agent (downloaded, not installed) in an initramfs, on a FAT disk
# that SYSLINUX boots (no partition table, no root privileges, no loop device). The guest's init is
# ./init; it reads the cloud-init NoCloud seed. Needs busybox-static, syslinux, mtools, dosfstools and
# qemu-utils (scripts/vmhost.sh installs them).
set -euo pipefail
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
KPKG=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
apt-get download "$KPKG" qemu-guest-agent >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get download "$KPKG" qemu-guest-agent >/dev/null; }
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x qemu-guest-agent_*.deb qga

R=$WORK/rootfs
mkdir -p $R/bin $R/sbin $R/etc $R/proc $R/sys $R/dev $R/lib/modules $R/usr/sbin
cp /bin/busybox $R/bin/busybox
ln -s busybox $R/bin/sh
install -m 0755 "$HERE/init" $R/init
install -m 0755 "$HERE/udhcpc.script" $R/etc/udhcpc.script
install -m 0755 "$HERE/run.cgi" $R/etc/run.cgi
echo marketplace-guest > $R/etc/hostname
for m in virtio virtio_ring virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net virtio_console virtio_blk cdrom isofs fat vfat nls_cp437 nls_ascii; do
  f=$(find kernel/lib/modules -name "$m.ko*" | head -1)
  [ -n "$f" ] && cp "$f" $R/lib/modules/
done
cp qga/usr/sbin/qemu-ga $R/usr/sbin/
for l in $(ldd qga/usr/sbin/qemu-ga | awk '/=>/{print $3} /ld-linux/{print $1}'); do
  mkdir -p "$R$(dirname "$l")"
  cp -L "$l" "$R$l"
done
(cd $R && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz

cat > syslinux.cfg <<'CFG'
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0 quiet panic=-1
CFG
cp kernel/boot/vmlinuz-* vmlinuz
size_kib=$(( ($(stat -c %s vmlinuz) + $(stat -c %s initrd.gz)) / 1024 + 4096 ))
mkfs.vfat -n MPGUEST -C disk.raw "$size_kib" >/dev/null
mcopy -i disk.raw vmlinuz initrd.gz syslinux.cfg ::/
syslinux --install disk.raw
mkdir -p "$(dirname "$OUT")"
qemu-img convert -O qcow2 disk.raw "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
