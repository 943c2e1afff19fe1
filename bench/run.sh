#!/usr/bin/env bash
# make bench: every benchmark of bench/README.md, one after the other, into bench/results/<time>/.
#
#   bash bench/run.sh                     # what `make bench` runs (after `make services cluster`)
#   KUBECONFIG=/path/kubeconfig bash bench/run.sh
#
# apps.sh runs the marketplace without a cluster; install.sh uses $KUBECONFIG, by default the local
# cluster's (.local/cluster/kubeconfig); vm.sh uses the local VM host (make vmhost) and runs only when
# its test image is there (VM_DIR, default .local/vm), or is skipped with VM=0. Knobs of each script
# (RUNS, DURATION, ...) pass through; N is each script's own default unless set.
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
if [ "${VM:-1}" != 0 ] && [ -f "${VM_DIR:-.local/vm}/images/test-guest.qcow2" ]; then
  OUT=$RESULTS/vm bash bench/vm.sh
  echo >>"$RESULTS/summary.md"
  cat "$RESULTS/vm/summary.md" >>"$RESULTS/summary.md"
else
  echo "== bench/vm.sh skipped: no ${VM_DIR:-.local/vm}/images/test-guest.qcow2 (make vmhost) or VM=0"
fi
echo
echo "== summary: $RESULTS/summary.md"
