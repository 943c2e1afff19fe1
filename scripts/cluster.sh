#!/usr/bin/env bash
# The local Kubernetes control plane the marketplace uses when KUBECONFIG is unset: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (which makes pods Ready), all on loopback, all built
# from the Go module proxy once and cached under $MARKETPLACE_CACHE (default ~/.cache/marketplace).
#
#   cluster.sh build        build (or reuse) the binaries
#   cluster.sh up   [DIR]   build if needed, start, wait until a node is Ready (default DIR .local/cluster)
#   cluster.sh down [DIR]   stop what up started
#   cluster.sh status [DIR] exit 0 when the apiserver answers /readyz
#
# After up, DIR/kubeconfig is an admin kubeconfig. Versions: K8S_VERSION, ETCD_VERSION, KWOK_VERSION.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CMD=${1:?build|up|down|status}
STATE=${2:-$ROOT/.local/cluster}
export K8S_VERSION=${K8S_VERSION:-v1.37.2} ETCD_VERSION=${ETCD_VERSION:-v3.7.0} KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
CACHE=${MARKETPLACE_CACHE:-$HOME/.cache/marketplace}
BIN=$CACHE/bin; WORK=$CACHE/work
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local

build() {
  mkdir -p "$BIN" "$WORK"
  local gover; gover=$(go env GOVERSION)
  command -v openssl >/dev/null && command -v curl >/dev/null || bash "$HERE/apt-install.sh" openssl curl
  local stamp="$BIN/.etcd-$ETCD_VERSION-$gover"
  if [ ! -x "$BIN/etcd" ] || [ ! -f "$stamp" ]; then
    echo "building etcd $ETCD_VERSION (once; cached in $BIN)"
    (cd "$WORK" && WRAP_DIR="$WORK/etcd-$ETCD_VERSION" "$HERE/build-etcd.sh" "$BIN") >"$WORK/build-etcd.log" 2>&1 || { tail -20 "$WORK/build-etcd.log"; exit 1; }
    touch "$stamp"
  fi
  stamp="$BIN/.k8s-$K8S_VERSION-$gover"
  if [ ! -f "$stamp" ]; then
    echo "building kube-apiserver, kube-controller-manager, kube-scheduler $K8S_VERSION (once, ~7 min)"
    (cd "$WORK" && K8S_CMDS="kube-apiserver kube-controller-manager kube-scheduler" WRAP_DIR="$WORK/k8s-$K8S_VERSION" \
      "$HERE/build-k8s.sh" "$BIN") >"$WORK/build-k8s.log" 2>&1 || { tail -20 "$WORK/build-k8s.log"; exit 1; }
    touch "$stamp"
  fi
  stamp="$BIN/.kwok-$KWOK_VERSION-$gover"
  if [ ! -f "$stamp" ]; then
    echo "building kwok $KWOK_VERSION (once)"
    (cd "$WORK" && "$HERE/build-kwok.sh" "$BIN") >"$WORK/build-kwok.log" 2>&1 || { tail -20 "$WORK/build-kwok.log"; exit 1; }
    touch "$stamp"
  fi
}

status() {
  [ -f "$STATE/kubeconfig" ] || return 1
  curl -fsS --max-time 2 --cacert "$STATE/pki/ca.crt" --cert "$STATE/pki/admin.crt" --key "$STATE/pki/admin.key" \
    "https://127.0.0.1:${API_PORT:-26443}/readyz" >/dev/null 2>&1
}

case "$CMD" in
  build) build ;;
  up)
    if status; then echo "cluster already up: KUBECONFIG=$STATE/kubeconfig"; exit 0; fi
    for port in ${ETCD_PORT:-23790} ${API_PORT:-26443}; do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is taken (another checkout's cluster?): stop it with its 'make cluster-down', or set" \
          "ETCD_PORT ETCD_PEER_PORT API_PORT KCM_PORT SCHED_PORT KWOK_PORT" >&2
        exit 1
      fi
    done
    build
    "$HERE/controlplane.sh" down "$STATE" >/dev/null 2>&1 || true
    rm -rf "$STATE/etcd-data"
    BIN="$BIN" WITH_KCM=1 WITH_SCHED=1 WITH_KWOK=1 "$HERE/controlplane.sh" up "$STATE"
    ;;
  down) "$HERE/controlplane.sh" down "$STATE" ;;
  status) status ;;
  *) echo "usage: $0 build|up|down|status [DIR]" >&2; exit 2 ;;
esac
