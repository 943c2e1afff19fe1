#!/usr/bin/env bash
# The VM install benchmark of TARGETS.md: the test guest installed through the marketplace against a
# direct go-libvirt program that boots the same image the same way, in one run (bench/vmbench), with
# the resident memory of each guest's QEMU process.
#
#   bash bench/vm.sh                  # 5 measured install + uninstall rounds per side, 1 warm-up each
#   N=3 bash bench/vm.sh
#   VM_DIR=/work/main/.local/vm bash bench/vm.sh   # from a worktree: the VM host's pools are defined there
#
# Needs the VM host (make vmhost) with .local/vm/images/test-guest.qcow2. It drops and recreates the
# database mp_bench_vm, starts `marketplace serve` on the VM host (LIBVIRT_URI=qemu:///system,
# VM_DIR, every other knob at its default, LOG_LEVEL=info for the workers' "done took=" lines) and no
# cluster, and removes every domain and volume either side made, also after a failure. One guest runs
# at a time. Output goes to $OUT (default bench/results/vm-<time>); the summary is $OUT/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_VM_DB:-mp_bench_vm}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_VM_REDIS_URL:-redis://localhost:6379/13}
ADDR=${BENCH_VM_ADDR:-127.0.0.1:3103}
LIBVIRT_URI=${LIBVIRT_URI:-qemu:///system}
VM_DIR=$(cd "${VM_DIR:-$ROOT/.local/vm}" && pwd)
IMAGE=${IMAGE:-test-guest.qcow2}
N=${N:-5}
WARMUP=${WARMUP:-1}
DIRECT_PREFIX=bench-vm-$(date +%s | tail -c 6)$RANDOM
OUT=${OUT:-bench/results/vm-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
[ -f "$VM_DIR/images/$IMAGE" ] || { echo "no test image: $VM_DIR/images/$IMAGE is missing (make vmhost)" >&2; exit 1; }
virsh -c "$LIBVIRT_URI" version >/dev/null || { echo "no VM host answers at $LIBVIRT_URI (make vmhost)" >&2; exit 1; }
port_free "$ADDR"

echo "== building bench/.bin/marketplace and bench/.bin/vmbench"
build_marketplace
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/vmbench ./bench/vmbench)
MP=$ROOT/bench/.bin/marketplace

echo "== database $DB: recreate and migrate"
recreate_db "$DB"
DATABASE_URL="$DATABASE_URL" LOG_LEVEL=warn "$MP" migrate
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null # only this benchmark's Redis database: no stale task ids
# The marketplace names its domains and volumes mp-<first 12 hex digits of its instance id>-d<id>.
MP_PREFIX=mp-$(psql -X -qtA -h "$PGHOST_BENCH" -U postgres -d "$DB" -c "SELECT left(replace(id::text, '-', ''), 12) FROM instance")-

echo "== starting marketplace serve on $ADDR (LIBVIRT_URI=$LIBVIRT_URI, VM_DIR=$VM_DIR, names $MP_PREFIX*)"
CACHE=$(mktemp -d /tmp/mp-bench-cache.XXXXXX)
# No KUBECONFIG: k8s installs are refused, which this benchmark does not make.
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" LIBVIRT_URI="$LIBVIRT_URI" \
  VM_DIR="$VM_DIR" LOG_LEVEL=info MARKETPLACE_CACHE_DIR="$CACHE" "$MP" serve >"$OUT/serve.log" 2>&1 &
SERVE=$!
# remove_guests removes what a failed run left on the VM host: domains and volumes named with either
# side's prefix (a good run has removed them all already).
remove_guests() {
  local v="virsh -q -c $LIBVIRT_URI" name
  for name in $($v list --all --name); do
    case $name in "$MP_PREFIX"* | "$DIRECT_PREFIX"-*)
      echo "removing domain $name left by the run"
      $v destroy "$name" >/dev/null 2>&1 || true
      $v undefine "$name" >/dev/null || true ;;
    esac
  done
  # the volumes by path: the pool's name is the marketplace's business (internal/libvirt/host.go)
  for path in "$VM_DIR/pool/$MP_PREFIX"* "$VM_DIR/pool/$DIRECT_PREFIX"-*; do
    [ -e "$path" ] || continue
    echo "removing volume $path left by the run"
    $v vol-delete "$path" >/dev/null || rm -f "$path"
  done
  rm -f "$VM_DIR/logs/$MP_PREFIX"* "$VM_DIR/logs/$DIRECT_PREFIX"-*
}
cleanup() {
  kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null || true
  remove_guests
  rm -rf "$CACHE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_http "http://$ADDR/readyz"

machine >"$OUT/machine-before.txt"
bench/.bin/vmbench -api "http://$ADDR" -libvirt-uri "$LIBVIRT_URI" -image "$IMAGE" -vm-dir "$VM_DIR" \
  -prefix "$DIRECT_PREFIX" -n "$N" -warmup "$WARMUP" ${VMBENCH_FLAGS:-} -out "$OUT/samples.json" | tee "$OUT/vmbench.txt"
machine >"$OUT/machine-after.txt"

# The workers' own view: how long each attempt took inside the worker (claim to provider return), next
# to the client's end-to-end figure; the difference is the API, the queue and the polling.
jq -r 'select(.msg == "done") | "\(.op)\t\(.deployment)\t\(.took)"' "$OUT/serve.log" >"$OUT/worker-took.tsv" || true

{
  echo "## VM install → installed with an IP, uninstall → uninstalled: marketplace against direct go-libvirt"
  echo
  echo "bench/.bin/vmbench -n $N -warmup $WARMUP, image $IMAGE on $LIBVIRT_URI, VM_DIR $VM_DIR"
  echo
  sed -n '/measured rounds/,$p' "$OUT/vmbench.txt"
  echo
  echo "Inside the marketplace's worker (\"done\" log lines, claim to provider return), by deployment:"
  echo '```'
  sort -t$'\t' -k1,1 -k2,2n "$OUT/worker-took.tsv" |
    awk -F'\t' '{ t[$1] = t[$1] sprintf(" %.0f", $3 / 1e6) } END { for (op in t) print op " ms (warm-up first):" t[op] }' | sort
  echo '```'
  echo "Machine before:"; echo '```'; cat "$OUT/machine-before.txt"; echo '```'
  echo "Machine after:"; echo '```'; cat "$OUT/machine-after.txt"; echo '```'
} >"$OUT/summary.md"
echo
cat "$OUT/summary.md"
