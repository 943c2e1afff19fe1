#!/usr/bin/env bash
# make run: everything on local defaults. PostgreSQL and Redis (started if needed), the local Kubernetes
# cluster (unless KUBECONFIG is set), the local VM host (unless LIBVIRT_URI is set), the bundled chart repository on 127.0.0.1:8879, then
# `marketplace serve` on :3000.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/services.sh
if [ -z "${KUBECONFIG:-}" ]; then
  bash scripts/cluster.sh up
  export KUBECONFIG=$ROOT/.local/cluster/kubeconfig
fi
[ -n "${LIBVIRT_URI:-}" ] || bash scripts/vmhost.sh up
mkdir -p .local/bin
go build -o .local/bin/marketplace ./cmd/marketplace
.local/bin/marketplace chartrepo &
CHARTREPO=$!
echo "chart repository: http://${CHART_REPO_ADDR:-127.0.0.1:8879} (chart hello-web)"
# The marketplace fetches nothing from loopback unless allowed: allow the bundled repository.
MARKETPLACE_FETCH_ALLOW="${CHART_REPO_ADDR:-127.0.0.1:8879}${MARKETPLACE_FETCH_ALLOW:+,$MARKETPLACE_FETCH_ALLOW}" \
  .local/bin/marketplace serve &
SERVE=$!
# Ctrl-C, or a TERM to this script, stops both (serve drains gracefully on TERM).
trap 'kill -TERM $SERVE $CHARTREPO 2>/dev/null || true' INT TERM EXIT
wait $SERVE
