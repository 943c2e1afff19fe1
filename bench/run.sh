#!/usr/bin/env bash
# make bench: every benchmark of bench/README.md, one after the other, into bench/results/<time>/.
#
#   bash bench/run.sh                     # what `make bench` runs (after `make services cluster`)
#   KUBECONFIG=/path/kubeconfig bash bench/run.sh
#
# apps.sh runs the marketplace without a cluster; install.sh uses $KUBECONFIG, by default the local
# cluster's (.local/cluster/kubeconfig). Knobs of each script (RUNS, DURATION, N, ...) pass through.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=${RESULTS:-bench/results/$STAMP}
mkdir -p "$RESULTS"
echo "== results in $RESULTS"
{
  echo "# make bench, $STAMP"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3), $(nproc) cores"
  echo
} >"$RESULTS/summary.md"
OUT=$RESULTS/apps bash bench/apps.sh
cat "$RESULTS/apps/summary.md" >>"$RESULTS/summary.md"
echo >>"$RESULTS/summary.md"
OUT=$RESULTS/install bash bench/install.sh
cat "$RESULTS/install/summary.md" >>"$RESULTS/summary.md"
echo
echo "== summary: $RESULTS/summary.md"
