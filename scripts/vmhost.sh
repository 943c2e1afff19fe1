#!/usr/bin/env bash
# vmhost.sh [up|down]: the local VM host, like scripts/cluster.sh for Kubernetes.
#
# up (the default) installs libvirt and QEMU from apt when missing, starts virtlogd and libvirtd by hand
# (no systemd) with libvirtd in a network namespace of its own, so guests' bridges, DHCP and NAT never
# touch the machine's network, and builds the bootable test image into .local/vm/images/test-guest.qcow2
# (cached in ~/.cache/marketplace/vm). Idempotent: exits at once when all of that is there.
# down stops the daemons it started (by their pid files) and deletes the namespace.
#
# Guests run under TCG (domain type qemu): /dev/kvm may exist on a machine that cannot run guests with it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VM=$ROOT/.local/vm
NETNS=${VMHOST_NETNS:-marketplace-vm}
CACHE=${MARKETPLACE_CACHE:-$HOME/.cache/marketplace}/vm
PACKAGES="libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base iptables ebtables busybox-static syslinux syslinux-common mtools dosfstools curl"

answering() { [ -S /run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1; }

down() {
  # Guests first: QEMU outlives the libvirtd that started it, and a guest left running spins a core (TCG).
  if answering; then
    for dom in $(virsh -c qemu:///system list --name 2>/dev/null); do
      virsh -c qemu:///system destroy "$dom" >/dev/null 2>&1 || true
    done
  fi
  pkill -f '^/usr/bin/qemu-system-x86_64 -name guest=mp-' 2>/dev/null || true
  for name in libvirtd virtlogd; do
    f=/run/$name.pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  [ -e "/run/netns/$NETNS" ] && ip netns del "$NETNS"
  echo "VM host stopped"
}

start_daemons() {
  mkdir -p /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt /etc/libvirt "$VM/logs"
  getent group kvm >/dev/null || groupadd --system kvm
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  # the qemu driver resolves its built-in default user before it reads qemu.conf: it must exist
  getent passwd libvirt-qemu >/dev/null || useradd --system --no-create-home --home-dir /var/lib/libvirt \
    --shell /usr/sbin/nologin -g libvirt-qemu -G kvm libvirt-qemu
  grep -q '^user = "root"' /etc/libvirt/qemu.conf 2>/dev/null || printf 'user = "root"\ngroup = "root"\n' >> /etc/libvirt/qemu.conf
  # Guests' serial consoles (and QEMU's own logs) go through virtlogd, which rotates each file at max_size
  # and keeps max_backups rotated ones: a guest flooding its console takes at most 1 MiB x 3 of the disk.
  # virtlogd reads this when it starts.
  grep -q '^stdio_handler' /etc/libvirt/qemu.conf 2>/dev/null || echo 'stdio_handler = "logd"' >> /etc/libvirt/qemu.conf
  grep -q '^max_size' /etc/libvirt/virtlogd.conf 2>/dev/null || printf 'max_size = 1048576\nmax_backups = 2\n' >> /etc/libvirt/virtlogd.conf
  pgrep -x virtlogd >/dev/null || virtlogd -d
  [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  # `ip netns exec` gives a private mount namespace with a fresh /sys: attach the cgroup hierarchies again
  ip netns exec "$NETNS" env LIBVIRT_LOG_OUTPUTS="3:file:$VM/logs/libvirtd.log" bash -c '
    mount -t tmpfs cgroup_root /sys/fs/cgroup
    for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
      mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c 2>/dev/null || rmdir /sys/fs/cgroup/$c
    done
    mkdir -p /sys/fs/cgroup/unified; mount -t cgroup2 none /sys/fs/cgroup/unified 2>/dev/null || true
    exec libvirtd -d'
  for _ in $(seq 1 300); do answering && return 0; sleep 0.1; done
  echo "libvirtd did not answer; see $VM/logs/libvirtd.log" >&2
  return 1
}

# ebtables_nft makes ebtables the nf_tables one when the kernel has no legacy ebtables (Debian's default
# alternative is legacy when iptables came after ebtables): libvirt's nwfilter runs it.
ebtables_nft() {
  if ! ebtables -L >/dev/null 2>&1 && [ -x /usr/sbin/ebtables-nft ]; then
    update-alternatives --set ebtables /usr/sbin/ebtables-nft >/dev/null
  fi
}

# guest_netfilter makes libvirt's nwfilter (guests' anti-spoofing and egress rules) see bridged frames in
# the namespace: br_netfilter, per namespace, on by default where it is loaded.
guest_netfilter() {
  [ -d /proc/sys/net/bridge ] || modprobe br_netfilter 2>/dev/null || true
  ip netns exec "$NETNS" sh -c 'for f in iptables ip6tables arptables; do echo 1 > /proc/sys/net/bridge/bridge-nf-call-$f; done' || {
    echo "br_netfilter is not available in namespace $NETNS: guests' network filters cannot work (modprobe br_netfilter)" >&2
    return 1
  }
}

# image builds the test image once per version of its inputs (the guest files and the kernel package).
image() {
  local kernel key cached
  kernel=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
  key=$( (cat "$ROOT"/scripts/vmguest/*; echo "$kernel") | sha256sum | cut -c1-16)
  cached=$CACHE/test-guest-$key.qcow2
  mkdir -p "$CACHE" "$VM/images" "$VM/pool"
  [ -f "$cached" ] || bash "$ROOT/scripts/vmguest/build.sh" "$cached"
  find "$CACHE" -name "test-guest-*.qcow2" ! -name "$(basename "$cached")" -delete  # older builds
  cmp -s "$cached" "$VM/images/test-guest.qcow2" || cp "$cached" "$VM/images/test-guest.qcow2"
}

case "${1:-up}" in
  up)
    dpkg -s $PACKAGES >/dev/null 2>&1 || bash "$ROOT/scripts/apt-install.sh" --no-install-recommends $PACKAGES
    ebtables_nft
    answering || start_daemons
    guest_netfilter
    image
    echo "VM host up: LIBVIRT_URI=qemu:///system, images in $VM/images, network namespace $NETNS"
    ;;
  down) down ;;
  *) echo "usage: $0 [up|down]" >&2; exit 2 ;;
esac
