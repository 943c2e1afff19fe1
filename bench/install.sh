#!/usr/bin/env bash
# The install and uninstall benchmark of TARGETS.md: the bundled chart through the marketplace against
# direct Helm v4 SDK installs of the same chart on the same cluster, in one run (bench/installbench).
#
#   bash bench/install.sh              # 10 measured installs and uninstalls per side, 1 warm-up each
#   N=3 bash bench/install.sh
#   INSTALLBENCH_FLAGS=-mpflags bash bench/install.sh   # diagnosis: a third side, Helm with the provider's client flags
#   BURST=100 bash bench/install.sh    # 100 installs requested at once against 100 direct installs, CONCURRENCY
#                                      # (default 8, the marketplace's WORKER_CONCURRENCY) at a time; ROUNDS=1
#
# It drops and recreates the database mp_bench_install, starts `marketplace serve` with the local
# cluster's kubeconfig (QUEUE_POLL_INTERVAL and every other knob at its default, LOG_LEVEL=info so the
# workers' own "done took=" lines can be set beside the measurements) and a namespace prefix of its own,
# and deletes every namespace it created at the end. Output goes to $OUT (default
# bench/results/install-<time>); the summary is $OUT/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_INSTALL_DB:-mp_bench_install}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_INSTALL_REDIS_URL:-redis://localhost:6379/14}
ADDR=${BENCH_INSTALL_ADDR:-127.0.0.1:3101}
KUBECONFIG=${KUBECONFIG:-$ROOT/.local/cluster/kubeconfig}
N=${N:-10}
WARMUP=${WARMUP:-1}
BURST=${BURST:-0}
CONCURRENCY=${CONCURRENCY:-8}
ROUNDS=${ROUNDS:-1}
PREFIX=${PREFIX:-mpbench-$(date +%s | tail -c 6)$RANDOM}
OUT=${OUT:-bench/results/install-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
[ -f "$KUBECONFIG" ] || { echo "no cluster: $KUBECONFIG is missing (make cluster)" >&2; exit 1; }
port_free "$ADDR"
# installbench serves the chart repository here; the marketplace refuses loopback unless allowed.
REPO_ADDR=${REPO_ADDR:-127.0.0.1:8878}
port_free "$REPO_ADDR"

echo "== building bench/.bin/marketplace and bench/.bin/installbench"
build_marketplace
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/installbench ./bench/installbench)
MP=$ROOT/bench/.bin/marketplace

echo "== database $DB: recreate and migrate"
recreate_db "$DB"
DATABASE_URL="$DATABASE_URL" LOG_LEVEL=warn "$MP" migrate
# Another marketplace on the same Redis database takes this run's tasks, finds nothing to claim in its
# own database and drops them: every install then waits for the reconciler (seen: waves of
# WORKER_CONCURRENCY every RECONCILE_INTERVAL). Refuse to share it.
REDIS_DB=${REDIS_URL##*/}
if redis-cli -u "$REDIS_URL" CLIENT LIST | grep -v "cmd=client" | grep -q " db=$REDIS_DB "; then
  echo "Redis database $REDIS_DB is in use by another client (another benchmark?); set BENCH_INSTALL_REDIS_URL" >&2
  exit 1
fi
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null # only this benchmark's Redis database: no stale task ids

echo "== starting marketplace serve on $ADDR (KUBECONFIG=$KUBECONFIG, K8S_NAMESPACE_PREFIX=$PREFIX)"
CACHE=$(mktemp -d /tmp/mp-bench-cache.XXXXXX)
# The operator's token only lets installbench read the marketplace's /metrics: its own count of its
# requests to the API server (marketplace_kubernetes_requests_total).
METRICS_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" KUBECONFIG="$KUBECONFIG" MARKETPLACE_ADMIN_TOKEN="$METRICS_TOKEN" \
  K8S_NAMESPACE_PREFIX="$PREFIX" MARKETPLACE_FETCH_ALLOW="$REPO_ADDR" WORKER_CONCURRENCY="$CONCURRENCY" LOG_LEVEL=info MARKETPLACE_CACHE_DIR="$CACHE" "$MP" serve >"$OUT/serve.log" 2>&1 &
SERVE=$!
cleanup() {
  kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null || true
  rm -rf "$CACHE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_http "http://$ADDR/readyz"

machine >"$OUT/machine-before.txt"
# Redis commands served during the run (the whole server: anything else using it counts too).
redis_calls() { redis-cli -u "$REDIS_URL" INFO commandstats | awk -F'[:=,]' '/^cmdstat_/ { n += $3 } END { print n }'; }
REDIS_BEFORE=$(redis_calls)
bench/.bin/installbench -api "http://$ADDR" -kubeconfig "$KUBECONFIG" -charts "$ROOT/charts" -mp-prefix "$PREFIX" -repo-addr "$REPO_ADDR" -metrics-token "$METRICS_TOKEN" \
  -n "$N" -warmup "$WARMUP" -burst "$BURST" -concurrency "$CONCURRENCY" -rounds "$ROUNDS" -serve-log "$OUT/serve.log" \
  ${INSTALLBENCH_FLAGS:-} -out "$OUT/samples.json" | tee "$OUT/installbench.txt"
REDIS_AFTER=$(redis_calls)
machine >"$OUT/machine-after.txt"

# The workers' own view: how long each attempt took inside the worker (claim to provider return), next
# to the client's end-to-end figure; the difference is the API, the queue and the polling.
jq -r 'select(.msg == "done") | "\(.op)\t\(.deployment)\t\(.took)"' "$OUT/serve.log" >"$OUT/worker-took.tsv" || true

{
  echo "## install → installed and uninstall → uninstalled: marketplace against direct Helm v4 SDK"
  echo
  echo "bench/.bin/installbench -n $N -warmup $WARMUP -burst $BURST -concurrency $CONCURRENCY -rounds $ROUNDS, chart charts/hello-web, namespace prefix $PREFIX"
  echo
  sed -n '/measured operations/,$p;/^burst of/,$p' "$OUT/installbench.txt"
  echo
  echo "Redis commands during the run: $((REDIS_AFTER - REDIS_BEFORE)) (INFO commandstats of the whole server)"
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
