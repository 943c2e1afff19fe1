#!/usr/bin/env bash
# Where the idle RSS of the marketplace comes from. Prints one line per process, its size and VmRSS
# (RssAnon + RssFile) a few seconds after start:
#   runtime  a Go program that links nothing of ours (the runtime's floor)
#   nok8s    one that links and inits every package of serve except Helm/client-go
#   all      one that links and inits every package of serve
#   serve    `marketplace serve`, idle, without a cluster or a VM host, on a fresh database
#   api      `marketplace api`, the same, from the full build
#   apionly  `marketplace-api api`: the API-only build (-tags apionly), what API replicas run
# and, for those three, bench/rssprobe/breakdown's split of that RSS by ELF section of the binary.
#
# Each binary's pages are dropped from the page cache before it starts (breakdown -evict), so every
# process reads its binary as after a reboot: a binary the linker has just written can sit in the page
# cache in 2 MB folios, which the kernel then maps whole, and the same program shows up to 30 MB more.
#
#   bash bench/rssprobe/rss.sh
#   BENCH_RSS_DB=mp_bench_rss BENCH_RSS_REDIS_URL=redis://localhost:6379/12 BENCH_RSS_ADDR=127.0.0.1:3104 (the defaults)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_RSS_DB:-mp_bench_rss}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_RSS_REDIS_URL:-redis://localhost:6379/12}
ADDR=${BENCH_RSS_ADDR:-127.0.0.1:3104}
SETTLE=${SETTLE:-5} # seconds idle before reading

for p in runtime nok8s all breakdown; do
  GOFLAGS="$MARKETPLACE_GOFLAGS" go build -o "bench/.bin/rssprobe-$p" "./bench/rssprobe/$p"
done
build_marketplace
build_marketplace_api
port_free "$ADDR"
recreate_db "$DB"
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null
CACHE=$(mktemp -d /tmp/mp-rss-cache.XXXXXX)
PID=
cleanup() {
  [ -z "$PID" ] || { kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; }
  rm -rf "$CACHE"
}
trap cleanup EXIT

line() { # name binary pid
  printf '%-8s binary %4d MB  VmRSS %6d kB  RssAnon %6d kB  RssFile %6d kB\n' "$1" \
    $(( $(stat -c %s "$2") / 1048576 )) "$(proc_kb "$3" VmRSS)" "$(proc_kb "$3" RssAnon)" "$(proc_kb "$3" RssFile)"
}

for p in runtime nok8s all; do
  bench/.bin/rssprobe-breakdown -evict "bench/.bin/rssprobe-$p"
  bench/.bin/rssprobe-$p >/dev/null &
  PID=$!
  sleep 2
  line "$p" "bench/.bin/rssprobe-$p" "$PID"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done

# name binary role
for run in "serve bench/.bin/marketplace serve" "api bench/.bin/marketplace api" "apionly bench/.bin/marketplace-api api"; do
  read -r name bin role <<<"$run"
  bench/.bin/rssprobe-breakdown -evict "$bin"
  env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" LOG_LEVEL=warn \
    LIBVIRT_URI= VM_DIR="$CACHE/no-vm-host" MARKETPLACE_CACHE_DIR="$CACHE" "$bin" "$role" >"$CACHE/$name.log" 2>&1 &
  PID=$!
  wait_http "http://$ADDR/healthz" || { cat "$CACHE/$name.log" >&2; exit 1; }
  sleep "$SETTLE"
  line "$name" "$bin" "$PID"
  bench/.bin/rssprobe-breakdown "$PID" | sed 's/^/  /'
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
