#!/usr/bin/env bash
# The install and uninstall benchmark of TARGETS.md: the bundled chart through the marketplace against
# direct Helm v4 SDK installs of the same chart on the same cluster, in one run (bench/installbench).
#
#   bash bench/install.sh              # 10 measured installs and uninstalls per side, 1 warm-up each
#   N=3 bash bench/install.sh
#   INSTALLBENCH_FLAGS=-mpflags bash bench/install.sh   # diagnosis: a third side, Helm with the provider's client flags
#   BURST=100 bash bench/install.sh    # 100 installs requested at once against 100 direct installs, CONCURRENCY
#                                      # (default 8, the marketplace's WORKER_CONCURRENCY) at a time; ROUNDS=1
#   WORKERS=4 BURST=1000 bash bench/install.sh  # the roles apart (issue #19 item 5): one `marketplace api` and
#                                      # WORKERS `marketplace worker` processes (WORKER_CONCURRENCY=CONCURRENCY
#                                      # each), the direct side WORKERS × CONCURRENCY at a time; PostgreSQL
#                                      # connections, Redis commands/s and the API server's requests sampled
#                                      # every second into $OUT/load.tsv
#   BROWSE=1 BURST=100 bash bench/install.sh  # and browsing meanwhile (issue #19 item 3): the catalog filled
#                                      # with APPS (10,000) applications through the API (bench/publish), then
#                                      # wrk -t2 -c32 --latency on page 1 idle (BROWSE_DURATION, 20s), during
#                                      # each side's install burst (installbench -during), and idle again
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
BROWSE=${BROWSE:-0}
WORKERS=${WORKERS:-0}
APPS=${APPS:-10000}
BROWSE_DURATION=${BROWSE_DURATION:-20s}
PREFIX=${PREFIX:-mpbench-$(date +%s | tail -c 6)$RANDOM}
OUT=${OUT:-bench/results/install-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
[ -f "$KUBECONFIG" ] || { echo "no cluster: $KUBECONFIG is missing (make cluster)" >&2; exit 1; }
port_free "$ADDR"
# installbench serves the chart repository here; the marketplace refuses loopback unless allowed.
REPO_ADDR=${REPO_ADDR:-127.0.0.1:8878}
port_free "$REPO_ADDR"
if [ "$BROWSE" != 0 ]; then
  [ "$BURST" -gt 0 ] || { echo "BROWSE=1 needs BURST (e.g. BURST=100)" >&2; exit 2; }
  command -v wrk >/dev/null || { echo "installing wrk"; bash scripts/apt-install.sh wrk; }
fi
if [ "$WORKERS" != 0 ]; then
  [ "$BURST" -gt 0 ] || { echo "WORKERS needs BURST (e.g. BURST=1000)" >&2; exit 2; }
  [ "$BROWSE" = 0 ] || { echo "WORKERS and BROWSE do not go together" >&2; exit 2; }
fi

echo "== building bench/.bin/marketplace and bench/.bin/installbench"
build_marketplace
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/installbench ./bench/installbench)
[ "$BROWSE" = 0 ] || (cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/publish ./bench/publish)
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
# BROWSE: the catalog's applications name a chart repository at 127.0.0.1:8879 (bench/publish), never
# fetched; no quota on a publisher's applications (as bench/apps.sh).
FETCH_ALLOW=$REPO_ADDR QUOTA=100
[ "$BROWSE" = 0 ] || FETCH_ALLOW="$REPO_ADDR,127.0.0.1:8879" QUOTA=0
# start_role runs one marketplace role with this run's settings; $1 the role, $2 its address, $3 its log
# (appended to: with the roles apart, all of them write serve.log, the one log installbench's timeline reads).
start_role() {
  DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$2" KUBECONFIG="$KUBECONFIG" QUOTA_APPS_PER_USER="$QUOTA" \
    QUOTA_DEPLOYMENTS_PER_USER="$QUOTA_DEPLOYMENTS" MARKETPLACE_ADMIN_TOKEN="$METRICS_TOKEN" K8S_NAMESPACE_PREFIX="$PREFIX" \
    MARKETPLACE_FETCH_ALLOW="$FETCH_ALLOW" WORKER_CONCURRENCY="$CONCURRENCY" LOG_LEVEL=info MARKETPLACE_CACHE_DIR="$CACHE" \
    ${SERVE_WRAP:-} "$MP" "$1" >>"$3" 2>&1 &
  PIDS+=($!)
}
# A burst larger than the per-user quota of deployments would be refused (429) past it.
QUOTA_DEPLOYMENTS=$((BURST > 200 ? BURST : 200))
PIDS=()
METRICS_BASES="http://$ADDR"
DIRECT_CONCURRENCY=$CONCURRENCY
if [ "$WORKERS" = 0 ]; then
  start_role serve "$ADDR" "$OUT/serve.log"
else
  echo "== and as api + $WORKERS workers instead (WORKER_CONCURRENCY=$CONCURRENCY each)"
  start_role api "$ADDR" "$OUT/serve.log"
  host=${ADDR%:*} port=${ADDR##*:}
  for i in $(seq 1 "$WORKERS"); do
    port_free "$host:$((port + i))"
    start_role worker "$host:$((port + i))" "$OUT/serve.log"
    METRICS_BASES="$METRICS_BASES,http://$host:$((port + i))"
  done
  DIRECT_CONCURRENCY=$((WORKERS * CONCURRENCY))
fi
SERVE=${PIDS[0]}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  [ -z "${SAMPLER:-}" ] || kill "$SAMPLER" 2>/dev/null || true
  rm -rf "$CACHE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_http "http://$ADDR/readyz"
[ "$WORKERS" = 0 ] || for i in $(seq 1 "$WORKERS"); do wait_http "http://${ADDR%:*}:$((${ADDR##*:} + i))/healthz"; done

# BROWSE: the catalog as bench/apps.sh fills it, and page 1 read idle; installbench then runs
# browse_during beside each side's install burst, and page 1 is read idle once more after the bursts.
TOKEN=mpt_bench-publisher-1-aaaaaaaaaaaaaaaaaaaaaaaaa
TOKEN2=mpt_bench-publisher-2-aaaaaaaaaaaaaaaaaaaaaaaaa
PAGE1="http://$ADDR/api/apps?page=1&limit=20"
HZ=$(getconf CLK_TCK)
DURING_FLAGS=()
# cpu_window prints, for the window since the figures $1 (of cpu_now), the CPU seconds of serve itself,
# of its waited-for children (the render processes), and of the whole machine (busy / total).
cpu_now() { echo "$(awk '{print $14 + $15, $16 + $17}' "/proc/$SERVE/stat") $(awk '/^cpu / {print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)"; }
cpu_window() {
  read -r s0 c0 b0 t0 <<<"$1"; read -r s1 c1 b1 t1 <<<"$(cpu_now)"
  awk -v hz="$HZ" -v s="$((s1 - s0))" -v c="$((c1 - c0))" -v b="$((b1 - b0))" -v t="$((t1 - t0))" \
    'BEGIN { printf "serve %.1f s CPU, its render children %.1f s, machine %.0f%% busy\n", s / hz, c / hz, 100 * b / t }'
}
# browse_wrk runs wrk on page 1 into $OUT/wrk-$1.txt (for $2, or until interrupted) with the CPU of the window.
browse_wrk() {
  local cpu0; cpu0=$(cpu_now)
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/cpu-$1.txt"
  wrk -t2 -c32 -d"$2" --latency -H "Authorization: Bearer $TOKEN" "$PAGE1" >"$OUT/wrk-$1.txt" || true
  cpu_window "$cpu0" >>"$OUT/cpu-$1.txt"
}
browse_during() { browse_wrk "during-$BURST_SIDE" 3600s; }
if [ "$BROWSE" != 0 ]; then
  hash1=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
  hash2=$(printf %s "$TOKEN2" | sha256sum | cut -d' ' -f1)
  psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO users (name) VALUES ('Bench Publisher 1'), ('Bench Publisher 2');
INSERT INTO tokens (user_id, hash) VALUES ((SELECT id FROM users WHERE name = 'Bench Publisher 1'), decode('$hash1', 'hex')),
  ((SELECT id FROM users WHERE name = 'Bench Publisher 2'), decode('$hash2', 'hex'));
SQL
  echo "== filling the catalog with $APPS applications through the API"
  bench/.bin/publish -base "http://$ADDR" -tokens "$TOKEN,$TOKEN2" -n "$APPS" -c 8 | tee "$OUT/fill.txt"
  got=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$PAGE1" | jq -r '"\(.total_items) \(.data|length)"')
  [ "$got" = "$APPS 20" ] || { echo "page 1 answers $got, want $APPS 20" >&2; exit 1; }
  sleep 3
  echo "== page 1 idle: wrk -t2 -c32 -d$BROWSE_DURATION"
  browse_wrk idle-before "$BROWSE_DURATION"
  export OUT TOKEN PAGE1 SERVE HZ
  export -f browse_wrk browse_during cpu_now cpu_window
  DURING_FLAGS=(-during browse_during)
fi

machine >"$OUT/machine-before.txt"
# Redis commands served during the run (the whole server: anything else using it counts too).
redis_calls() { redis-cli -u "$REDIS_URL" INFO commandstats | awk -F'[:=,]' '/^cmdstat_/ { n += $3 } END { print n }'; }
REDIS_BEFORE=$(redis_calls)
# The load on the shared parts, every second: PostgreSQL's connections to this run's database (and how many
# are active), Redis's commands per second (the whole server) and the API server's requests served so far.
api_requests() { kubectl_raw /metrics | awk '/^apiserver_request_total\{/ { n += $NF } END { printf "%d", n }'; }
kubectl_raw() { curl -fsS --cacert "$KCA" --cert "$KCERT" --key "$KKEY" "$KSERVER$1" 2>/dev/null; }
KSERVER=$(awk '/server:/ {print $2; exit}' "$KUBECONFIG")
# The local cluster's kubeconfig names its certificate files by absolute path (scripts/controlplane.sh).
KCA=$(awk '/certificate-authority:/ {print $2; exit}' "$KUBECONFIG")
KCERT=$(awk '/client-certificate:/ {print $2; exit}' "$KUBECONFIG")
KKEY=$(awk '/client-key:/ {print $2; exit}' "$KUBECONFIG")
sample_load() {
  echo -e "time\tpg_connections\tpg_active\tredis_ops_per_sec\tapiserver_requests_total\tload1\tepoch"
  while sleep 1; do
    pg=$(psql -X -At -F $'\t' "$DATABASE_URL" -c "SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity WHERE datname = '$DB'" 2>/dev/null || echo -e "-\t-")
    ops=$(redis-cli -u "$REDIS_URL" INFO stats 2>/dev/null | awk -F: '/^instantaneous_ops_per_sec/ { print $2 + 0 }')
    echo -e "$(date -u +%H:%M:%S)\t$pg\t${ops:--}\t$(api_requests || echo -)\t$(cut -d' ' -f1 /proc/loadavg)\t$(date +%s)"
  done
}
sample_load >"$OUT/load.tsv" &
SAMPLER=$!
bench/.bin/installbench -api "http://$ADDR" -kubeconfig "$KUBECONFIG" -charts "$ROOT/charts" -mp-prefix "$PREFIX" -repo-addr "$REPO_ADDR" -metrics-token "$METRICS_TOKEN" \
  -metrics "$METRICS_BASES" -n "$N" -warmup "$WARMUP" -burst "$BURST" -concurrency "$DIRECT_CONCURRENCY" -rounds "$ROUNDS" -serve-log "$OUT/serve.log" \
  ${INSTALLBENCH_FLAGS:-} "${DURING_FLAGS[@]}" -out "$OUT/samples.json" | tee "$OUT/installbench.txt"
REDIS_AFTER=$(redis_calls)
kill "$SAMPLER" 2>/dev/null || true
if [ "$BROWSE" != 0 ]; then
  sleep 3
  echo "== page 1 idle again: wrk -t2 -c32 -d$BROWSE_DURATION"
  browse_wrk idle-after "$BROWSE_DURATION"
fi
machine >"$OUT/machine-after.txt"

# to_ms converts wrk's 812.00us / 4.21ms / 1.02s to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
# browse_table prints the BROWSE windows side by side, and the verdict of issue #19 item 3: page 1 during
# the marketplace's install burst at p99 ≤ 15 ms and ≥ 0.8 × its idle req/s (the idle run before the bursts).
browse_table() {
  echo "| page 1 (wrk -t2 -c32 --latency) | seconds | req/s | p50 ms | p99 ms | max ms | non-2xx / errors | CPU in the window | load at start |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for w in idle-before during-marketplace during-helm idle-after; do
    raw="$OUT/wrk-$w.txt"
    [ -s "$raw" ] || { echo "| $w | (no output) |||||||| "; continue; }
    secs=$(awk '/requests in/ { v = $4; sub(/,$/, "", v); n = v + 0; if (v ~ /m$/) n *= 60; else if (v ~ /ms$/) n /= 1000; printf "%.1f", n }' "$raw")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$raw")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$raw")")
    max=$(to_ms "$(awk '$1 == "Latency" {print $4}' "$raw")")
    bad=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s ", $0 }' "$raw")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$secs" "$rps" "$p50" "$p99" "$max" "${bad:-0}" \
      "$(sed -n 2p "$OUT/cpu-$w.txt")" "$(sed -n 1p "$OUT/cpu-$w.txt" | cut -d' ' -f2)"
    echo "$w $rps $p99" >>"$OUT/browse.tsv"
  done
  echo
  awk '{ r[$1] = $2; p[$1] = $3 } END {
    d = "during-marketplace"; i = r["idle-before"]; a = r["idle-after"]
    ok = (p[d] <= 15 && r[d] >= 0.8 * i)
    printf "During the marketplace burst: %.0f req/s = %.2f × idle before (%.0f), %.2f × idle after (%.0f); p99 %.2f ms. ", r[d], r[d] / i, i, r[d] / a, a, p[d]
    printf "Target (p99 ≤ 15 ms, ≥ 0.8 × idle): %s\n", ok ? "met" : "**not met**"
    if (r["during-helm"] > 0) printf "During the direct Helm burst (the yardstick: the same cluster work, outside serve): %.0f req/s = %.2f × idle before; p99 %.2f ms\n", r["during-helm"], r["during-helm"] / i, p["during-helm"]
  }' "$OUT/browse.tsv"
}

# load_table digests load.tsv: the peak and mean of each sampled figure over the run. A loaded machine
# takes seconds per sample, so the API server's rate is its count's change over the samples' own times.
load_table() {
  awk -F'\t' 'NR > 1 && $2 != "-" {
      n++; if ($2 > pc) pc = $2; if ($3 > pa) pa = $3; sa += $3
      if ($4 > ro) ro = $4; sr += $4
      if (prev != "" && $5 != "-" && $7 > pt) { q = ($5 - prev) / ($7 - pt); if (q > pq) pq = q }
      if ($5 != "-") { if (first == "") { first = $5; t0 = $7 } prev = $5; pt = $7 }
      if ($6 > pl) pl = $6; sl += $6
    } END {
      print "| figure | peak | mean |"; print "|---|---|---|"
      printf "| PostgreSQL connections to the run'"'"'s database | %d | – |\n", pc
      printf "| of them active | %d | %.1f |\n", pa, sa / n
      printf "| Redis commands/s (instantaneous_ops_per_sec) | %d | %.0f |\n", ro, sr / n
      if (pt > t0) printf "| API server requests/s | %.0f | %.0f |\n", pq, (prev - first) / (pt - t0)
      printf "| load average (1 min) | %.1f | %.1f |\n", pl, sl / n
      printf "\n%d samples over %d s\n", n, pt - t0
    }' "$OUT/load.tsv"
}

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
  if [ "$BROWSE" != 0 ]; then
    echo "### Browsing while installing: GET /api/apps?page=1&limit=20 over $APPS applications ($(cat "$OUT/fill.txt"))"
    echo
    : >"$OUT/browse.tsv"
    browse_table
    echo
  fi
  echo "Redis commands during the run: $((REDIS_AFTER - REDIS_BEFORE)) (INFO commandstats of the whole server)"
  echo
  echo "Sampled every second over the run (\`load.tsv\`; the API server's QPS from apiserver_request_total, controllers included):"
  echo
  load_table

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
