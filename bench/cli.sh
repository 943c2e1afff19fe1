#!/usr/bin/env bash
# The CLI benchmark of TARGETS.md: `mpctl deployments list` over 1,000 deployments, end to end (process
# start, contexts file, two pages of 500 from the API, the table), with hyperfine (Debian's apt).
#
#   bash bench/cli.sh           # 3 warm-up runs, then 20 timed runs of each command
#
# It drops and recreates the database mp_bench_cli, starts `marketplace serve` without a cluster on
# 127.0.0.1:3110, creates a user, an application and a project through mpctl and the API, inserts 1,000
# installed deployments of that user by SQL, checks that mpctl lists all of them, and times
# `mpctl deployments list` (table) and `mpctl deployments list -o json`. Raw output goes to $OUT.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_DB:-mp_bench_cli}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_REDIS_URL:-redis://localhost:6379/14}
ADDR=${BENCH_ADDR:-127.0.0.1:3110}
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
N=1000
OUT=${OUT:-bench/results/cli-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"

command -v hyperfine >/dev/null || { echo "installing hyperfine"; bash scripts/apt-install.sh hyperfine; }
command -v jq >/dev/null || bash scripts/apt-install.sh jq
port_free "$ADDR"

echo "== building bench/.bin/marketplace and bench/.bin/mpctl"
build_marketplace
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/mpctl ./cmd/mpctl)
MP=$ROOT/bench/.bin/marketplace
MPCTL=$ROOT/bench/.bin/mpctl

recreate_db "$DB"
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" LOG_LEVEL=warn \
  LIBVIRT_URI= VM_DIR="$OUT/vm" "$MP" serve >"$OUT/serve.log" 2>&1 &
SERVE=$!
# mpctl's contexts file (it holds the token) lives in a temporary directory, not with the results.
export XDG_CONFIG_HOME=$(mktemp -d)
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null || true; rm -rf "$XDG_CONFIG_HOME"' EXIT
wait_http "http://$ADDR/healthz"

TOKEN=$(curl -fsS -X POST "http://$ADDR/api/users/new" -H 'Content-Type: application/json' -d '{"name": "cli bench"}' | jq -r .token)
"$MPCTL" login --url "http://$ADDR" --token "$TOKEN" >/dev/null
cat >"$OUT/app.yaml" <<YAML
name: Bench VM
hourly_rate: 0.5
deployment: {type: vm, image: test-guest.qcow2, cpu: "1", memory: 256Mi}
YAML
"$MPCTL" apps publish -f "$OUT/app.yaml" >/dev/null
"$MPCTL" projects create bench >/dev/null
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO deployments (application_id, project_id, consumer_id, type, status, hourly_rate, version, inputs,
                         vm_name, ip_address)
SELECT 1, 1, 1, 'vm', 'installed', 0.5, 1, jsonb_build_object('greeting', 'hello ' || i),
       'mp-bench-d' || i, '10.213.0.' || (i % 250 + 2)
FROM generate_series(1, $N) AS i;
SQL

rows=$("$MPCTL" deployments list | tail -n +2 | wc -l)
json=$("$MPCTL" deployments list -o json | jq length)
[ "$rows" = "$N" ] && [ "$json" = "$N" ] || { echo "mpctl lists $rows rows and $json JSON items, want $N" >&2; exit 1; }
echo "== mpctl lists all $N deployments; timing"

{ echo "load before: $(cat /proc/loadavg)"; machine; } | tee "$OUT/machine.txt"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-markdown "$OUT/summary.md" --export-json "$OUT/hyperfine.json" \
  "$MPCTL deployments list" "$MPCTL deployments list -o json" | tee "$OUT/hyperfine.txt"
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT/machine.txt"
echo "== $OUT/summary.md"
cat "$OUT/summary.md"
