#!/usr/bin/env bash
# Where the idle RSS of `marketplace serve` comes from: builds three programs that only link packages
# and run their init (nothing of the Go runtime's floor, everything but Helm/client-go, everything) and
# prints each one's size and VmRSS (RssAnon + RssFile) two seconds after start.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
for p in runtime nok8s all; do
  GOFLAGS=-buildvcs=false go build -o "bench/.bin/rssprobe-$p" "./bench/rssprobe/$p"
done
for p in runtime nok8s all; do
  bench/.bin/rssprobe-$p >/dev/null &
  pid=$!
  sleep 2
  printf '%-8s binary %4d MB  VmRSS %6d kB  RssAnon %6d kB  RssFile %6d kB\n' "$p" \
    $(( $(stat -c %s "bench/.bin/rssprobe-$p") / 1048576 )) \
    "$(awk '$1=="VmRSS:"{print $2}' /proc/$pid/status)" "$(awk '$1=="RssAnon:"{print $2}' /proc/$pid/status)" \
    "$(awk '$1=="RssFile:"{print $2}' /proc/$pid/status)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
