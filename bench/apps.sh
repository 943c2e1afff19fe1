#!/usr/bin/env bash
# The catalog benchmark of TARGETS.md: GET /api/apps over 10,000 applications with wrk, and the RSS of
# `marketplace serve` idle and under that load.
#
#   bash bench/apps.sh            # 3 runs of 20 s per URL (the target's command)
#   RUNS=1 DURATION=5s bash bench/apps.sh
#   APPS=100000 bash bench/apps.sh  # a larger catalog (at least 8,000: page 400 must exist)
#
#   SEED=sql bash bench/apps.sh   # the catalog seeded by one SQL INSERT … SELECT instead of the API
#
# It drops and recreates the database mp_bench, migrates it with `marketplace migrate`, starts
# `marketplace serve` without a cluster, fills the catalog as publishers do (SEED=api, the default:
# bench/publish, POST /api/apps/new from 8 clients at once) or by SQL (SEED=sql), and reads it at once:
# no VACUUM, no ANALYZE. Right after the fill it times page 400 and a search (three reads each, the
# first one computing the page) and stops, failing, when the median of either is over SLOW_MS (100).
# Then it runs `wrk -t2 -c32 -d20s --latency` against six URLs,
# interleaved (run 1 of every URL, then run 2, ...) so drifting background load spreads over all of
# them. Raw output goes to $OUT (default bench/results/apps-<time>); the summary is $OUT/summary.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_DB:-mp_bench}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_REDIS_URL:-redis://localhost:6379/15}
ADDR=${BENCH_ADDR:-127.0.0.1:3100}
BASELINE_ADDR=${BENCH_BASELINE_ADDR:-127.0.0.1:3109}
BASELINE=${BASELINE:-1} # also measure bench/baseline (bare net/http + pgx) on page 1 in every round
RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
APPS=${APPS:-10000} # the checks below assume a multiple of 500, at least 8,000
DEEP=${DEEP:-400}   # the deep page measured (page 400: offset 7,980); APPS must reach it
SEED=${SEED:-api}    # api: POST /api/apps/new from PUBLISHERS clients at once; sql: one INSERT … SELECT
PUBLISHERS=${PUBLISHERS:-8}
SLOW_MS=${SLOW_MS:-100}
OUT=${OUT:-bench/results/apps-$(date -u +%Y%m%dT%H%M%SZ)}
# Publishers' bearer tokens, of the API's form (mpt_ and 43 base64url characters), stored as their SHA-256.
TOKEN=mpt_bench-publisher-1-aaaaaaaaaaaaaaaaaaaaaaaaa
TOKEN2=mpt_bench-publisher-2-aaaaaaaaaaaaaaaaaaaaaaaaa
mkdir -p "$OUT"

command -v wrk >/dev/null || { echo "installing wrk"; bash scripts/apt-install.sh wrk; }
port_free "$ADDR"
[ "$BASELINE" = 0 ] || port_free "$BASELINE_ADDR"

echo "== building bench/.bin/marketplace and bench/.bin/baseline"
build_marketplace
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/baseline ./bench/baseline)
(cd "$ROOT" && GOFLAGS=-buildvcs=false go build -o bench/.bin/publish ./bench/publish)
MP=$ROOT/bench/.bin/marketplace

[ "$SEED" = api ] || [ "$SEED" = sql ] || { echo "SEED is api or sql, not $SEED" >&2; exit 2; }
[ "$APPS" -ge $(( DEEP * 20 )) ] && [ $(( APPS % 500 )) = 0 ] || { echo "APPS must be a multiple of 500 and reach page $DEEP" >&2; exit 2; }
echo "== database $DB: recreate, migrate, two publishers"
recreate_db "$DB"
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" LOG_LEVEL=warn "$MP" migrate
hash1=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
hash2=$(printf %s "$TOKEN2" | sha256sum | cut -d' ' -f1)
# Publisher 1 owns 2 of every 3 applications, publisher 2 the rest; odd ids are k8s, even ids vm; each
# description ends with one of ten tags (id % 10) and one of 500 product codes (sku000..sku499, id % 500),
# which the searched URLs look for: a broad search (a tenth of the catalog) and a narrow one (1 in 500).
# Neither way runs VACUUM or ANALYZE: the catalog is read as a user reads it right after filling it
# (issue #23: the SQL seed used to be followed by both, and hid what separate publishes leave).
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO users (name) VALUES ('Bench Publisher 1'), ('Bench Publisher 2');
INSERT INTO tokens (user_id, hash) VALUES (1, decode('$hash1', 'hex')), (2, decode('$hash2', 'hex'));
SQL

# seed_sql fills the catalog in one statement (bench/publish publishes the same applications).
seed_sql() {
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment, inputs)
SELECT CASE WHEN i % 3 = 0 THEN 2 ELSE 1 END,
       'Benchmark app ' || i,
       'Application ' || i || ' of the catalog benchmark: a small web server with a Deployment and a Service. '
         || (ARRAY['database', 'cache', 'queue', 'monitoring', 'search', 'storage', 'proxy', 'security', 'analytics', 'builds'])[i % 10 + 1]
         || ' sku' || to_char(i % 500, 'FM000'),
       round(0.1 + (i % 100) * 0.05, 6),
       CASE WHEN i % 2 = 0 THEN 'vm' ELSE 'k8s' END,
       CASE WHEN i % 2 = 0
         THEN jsonb_build_object('type', 'vm', 'repoURL', '', 'chartName', '', 'chartVersion', '',
                                 'image', 'debian-12-generic', 'cpu', '2', 'memory', '2Gi')
         ELSE jsonb_build_object('type', 'k8s', 'repoURL', 'http://127.0.0.1:8879', 'chartName', 'hello-web',
                                 'chartVersion', '0.1.0', 'image', '', 'cpu', '', 'memory', '')
       END,
       CASE WHEN i % 2 = 0 THEN '[]'::jsonb
         ELSE '[{"name": "replicaCount", "type": "integer", "default": 1}]'::jsonb
       END
FROM generate_series(1, $APPS) AS i;
SQL
}

echo "== starting marketplace serve on $ADDR (KUBECONFIG unset, LOG_LEVEL=warn)"
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null # only this benchmark's Redis database
CACHE=$(mktemp -d /tmp/mp-bench-cache.XXXXXX)
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" LOG_LEVEL=warn \
  MARKETPLACE_FETCH_ALLOW=127.0.0.1:8879 MARKETPLACE_CACHE_DIR="$CACHE" QUOTA_APPS_PER_USER=0 "$MP" serve >"$OUT/serve.log" 2>&1 &
SERVE=$!
BASE_PID=
cleanup() {
  kill "$SERVE" 2>/dev/null && wait "$SERVE" 2>/dev/null || true
  [ -z "$BASE_PID" ] || { kill "$BASE_PID" 2>/dev/null && wait "$BASE_PID" 2>/dev/null || true; }
  rm -rf "$CACHE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
wait_http "http://$ADDR/healthz"

echo "== filling the catalog with $APPS applications (SEED=$SEED)"
if [ "$SEED" = sql ]; then
  t0=$(date +%s.%N); seed_sql; t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$APPS" 'BEGIN { printf "seeded %d applications by SQL in %.1f s\n", n, b - a }' | tee "$OUT/fill.txt"
else
  bench/.bin/publish -base "http://$ADDR" -tokens "$TOKEN,$TOKEN2" -n "$APPS" -c "$PUBLISHERS" | tee "$OUT/fill.txt"
fi
psql -X -At "$DATABASE_URL" -c "SELECT 'catalog_counts: ' || string_agg(publisher_id || '/' || deployment_type || '=' || n, ' ' ORDER BY publisher_id, deployment_type) FROM catalog_counts WHERE shift = 20"

# Read at once: page 400 and a search, three reads each (the first computes the page), before anything
# else has read them.
echo "== reading page $DEEP and a search right after the fill (median of 3 reads ≤ $SLOW_MS ms)"
slow=0
for url in "/api/apps?page=$DEEP&limit=20" "/api/apps?page=1&limit=20&q=sku017"; do
  times=$(for _ in 1 2 3; do curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "http://$ADDR$url"; done)
  verdict=$(awk -v slow="$SLOW_MS" '{ ms[NR] = $1 * 1000 } END {
      m = (ms[1] < ms[2]) ? ((ms[2] < ms[3]) ? ms[2] : ((ms[1] < ms[3]) ? ms[3] : ms[1])) : ((ms[1] < ms[3]) ? ms[1] : ((ms[2] < ms[3]) ? ms[3] : ms[2]))
      printf "reads %.1f %.1f %.1f ms, median %.1f ms: %s", ms[1], ms[2], ms[3], m, (m <= slow) ? "OK" : "SLOW" }' <<<"$times")
  echo "$url right after the fill: $verdict" | tee -a "$OUT/first-reads.txt"
  [[ $verdict == *OK ]] || slow=1
done
psql -X -At "$DATABASE_URL" -F ' ' -c "SELECT relname, 'n_tup_upd=' || n_tup_upd, 'n_tup_hot_upd=' || n_tup_hot_upd, 'n_dead_tup=' || n_dead_tup,
  'pages=' || pg_relation_size(relid) / 8192, 'analyzed=' || (coalesce(last_analyze, last_autoanalyze) IS NOT NULL)
  FROM pg_stat_user_tables WHERE relname IN ('applications', 'catalog_counts', 'catalog_generation', 'catalog_searches') ORDER BY relname" \
  | tee "$OUT/tables.txt"
[ "$slow" = 0 ] || { echo "page $DEEP or the search is slower than $SLOW_MS ms right after the fill" >&2; exit 1; }
sleep 3
IDLE_RSS=$(proc_kb "$SERVE" VmRSS)
IDLE_HWM=$(proc_kb "$SERVE" VmHWM)
IDLE_SPLIT="RssAnon $(proc_kb "$SERVE" RssAnon) kB + RssFile $(proc_kb "$SERVE" RssFile) kB"
echo "serve pid $SERVE: idle VmRSS ${IDLE_RSS} kB (VmHWM ${IDLE_HWM} kB)"

BASE="http://$ADDR"
URLS=(
  "/api/apps?page=1&limit=20"
  "/api/apps?page=$DEEP&limit=20"
  "/api/apps?page=1&limit=20&deploymentType=vm"
  "/api/apps?page=1&limit=20&publisher=1"
  "/api/apps?page=1&limit=20&q=sku017"
  "/api/apps?page=1&limit=20&q=monitoring"
)
# What each URL must answer: total_items, the first id of the page, and a jq condition on every row.
WANT_TOTAL=("$APPS" "$APPS" "$(( APPS / 2 ))" "$(( APPS - APPS / 3 ))" "$(( APPS / 500 ))" "$(( APPS / 10 ))")
# The ids follow the order the publishes committed in: each page's first id is read from the table.
WANT_FIRST=()
for where in "true ORDER BY id" "true ORDER BY id OFFSET $(( (DEEP - 1) * 20 ))" "deployment_type = 'vm' ORDER BY id" "publisher_id = 1 ORDER BY id" \
  "description LIKE '% sku017' ORDER BY id" "description LIKE '% monitoring %' ORDER BY id"; do
  WANT_FIRST+=("$(psql -X -At "$DATABASE_URL" -c "SELECT id FROM applications WHERE deleted_at IS NULL AND $where LIMIT 1")")
done
WANT_ROWS=(20 20 20 20 "$(( APPS / 500 < 20 ? APPS / 500 : 20 ))" 20)
WANT_ROW=('true' 'true' '.deployment.type == "vm"' '.publisher_id == 1' '(.description | endswith(" sku017"))'
  '(.description | contains(" monitoring "))')

echo "== checking the answers"
fail=0
for i in "${!URLS[@]}"; do
  body=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$BASE${URLS[$i]}")
  got=$(jq -r --argjson want "${WANT_TOTAL[$i]}" --argjson first "${WANT_FIRST[$i]}" --argjson rows "${WANT_ROWS[$i]}" \
    "[.total_items, (.data|length), .data[0].id, ([.data[] | ${WANT_ROW[$i]}] | all)] as [\$t, \$n, \$f, \$ok]
     | \"total_items=\(\$t) rows=\(\$n) first_id=\(\$f) rows_match=\(\$ok) \"
       + (if \$t == \$want and \$n == \$rows and \$f == \$first and \$ok then \"OK\" else \"WRONG (want total_items=\(\$want) first_id=\(\$first))\" end)" <<<"$body")
  echo "${URLS[$i]}: $got" | tee -a "$OUT/checks.txt"
  [[ $got == *OK ]] || fail=1
done
[ "$fail" = 0 ] || { echo "wrong answers; not benchmarking" >&2; exit 1; }

# What wrk runs: the four URLs against the marketplace and, as a yardstick, page 1 against the baseline.
TARGETS=()
for url in "${URLS[@]}"; do TARGETS+=("$BASE$url"); done
NMP=${#URLS[@]} # the marketplace's URLs; the baseline's comes after them
if [ "$BASELINE" != 0 ]; then
  bench/.bin/baseline -db "$DATABASE_URL" -addr "$BASELINE_ADDR" >"$OUT/baseline.log" 2>&1 &
  BASE_PID=$!
  wait_http "http://$BASELINE_ADDR/api/apps?page=1&limit=20"
  got=$(curl -fsS "http://$BASELINE_ADDR${URLS[0]}" | jq -r '"\(.total_items) \(.data|length)"')
  [ "$got" = "$APPS 20" ] || { echo "baseline answers $got" >&2; exit 1; }
  TARGETS+=("http://$BASELINE_ADDR${URLS[0]}")
  URLS+=("baseline ${URLS[0]}")
fi

# to_ms converts wrk's 812.00us / 4.21ms / 1.02s to milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }

machine >"$OUT/machine-before.txt"
printf '| run | URL | req/s | p50 ms | p99 ms | non-2xx | server CPU s | load avg |\n|---|---|---|---|---|---|---|---|\n' >"$OUT/runs.md"
: >"$OUT/runs.tsv"
HZ=$(getconf CLK_TCK)
for run in $(seq 1 "$RUNS"); do
  for i in "${!TARGETS[@]}"; do
    url=${URLS[$i]}
    raw="$OUT/wrk-run$run-url$i.txt"
    load=$(cut -d' ' -f1 /proc/loadavg)
    pid=$SERVE; [ "$i" -lt "$NMP" ] || pid=$BASE_PID
    t0=$(cpu_ticks "$pid")
    wrk -t2 -c32 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "${TARGETS[$i]}" >"$raw"
    t1=$(cpu_ticks "$pid")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$raw")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$raw")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$raw")")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$raw"); non2xx=${non2xx:-0}
    errs=$(awk '/Socket errors/ {print}' "$raw")
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN { printf "%.1f", (b - a) / hz }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$run" "$i" "$rps" "$p50" "$p99" "$non2xx" >>"$OUT/runs.tsv"
    printf '| %s | `%s` | %s | %s | %s | %s | %s | %s |\n' "$run" "$url" "$rps" "$p50" "$p99" "$non2xx" "$cpu" "$load" | tee -a "$OUT/runs.md"
    [ -z "$errs" ] || echo "  $errs" | tee -a "$OUT/runs.md"
  done
done
machine >"$OUT/machine-after.txt"
LOAD_HWM=$(proc_kb "$SERVE" VmHWM)
LOAD_RSS=$(proc_kb "$SERVE" VmRSS)
LOAD_SPLIT="RssAnon $(proc_kb "$SERVE" RssAnon) kB + RssFile $(proc_kb "$SERVE" RssFile) kB"

# Medians of the runs per URL, the ratios the targets name, and the verdicts.
{
  echo "## GET /api/apps, $APPS applications: wrk -t2 -c32 -d$DURATION --latency, $RUNS run(s) per URL"
  echo
  echo "Filled with SEED=$SEED and read at once (no VACUUM, no ANALYZE): $(cat "$OUT/fill.txt")."
  echo
  sed 's/^/    /' "$OUT/first-reads.txt"
  echo
  cat "$OUT/runs.md"
  echo
  awk -F'\t' -v n="${#URLS[@]}" -v nmp="$NMP" -v urls="$(printf '%s\t' "${URLS[@]}")" '
    function median(a, k,   i, j, t) {   # sorts a[1..k] in place
      for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
      return (k % 2) ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
    }
    { c[$2]++; r[$2, c[$2]] = $3; p[$2, c[$2]] = $5; x[$2] += $6 }
    END {
      split(urls, u, "\t")
      print "| URL | median req/s | median p99 ms | worst p99 ms | target | met |"
      print "|---|---|---|---|---|---|"
      for (i = 0; i < n; i++) {
        delete a; delete b
        for (k = 1; k <= c[i]; k++) { a[k] = r[i, k]; b[k] = p[i, k] }
        mr[i] = median(a, c[i]); mp[i] = median(b, c[i]); wp[i] = b[c[i]]
      }
      for (i = 0; i < n; i++) {
        if (i == 0 && nmp < n) { t = sprintf("≥ 0.9 × the yardstick (≥ %.0f), p99 ≤ 15 ms; now %.2f ×", 0.9 * mr[nmp], mr[0] / mr[nmp]); ok = (mr[0] >= 0.9 * mr[nmp] && wp[0] <= 15) }
        else if (i == 0) { t = "p99 ≤ 15 ms"; ok = (wp[0] <= 15) }
        else if (i == 1) { t = sprintf("≥ 90%% of page 1 (≥ %.0f); now %.0f%%", 0.9 * mr[0], 100 * mr[1] / mr[0]); ok = (mr[1] >= 0.9 * mr[0]) }
        else if (i == nmp) { t = sprintf("yardstick: page 1 of the marketplace does %.0f%% of it", 100 * mr[0] / mr[nmp]); ok = -1 }
        else { t = sprintf("≥ 80%% of unfiltered (≥ %.0f); now %.0f%%", 0.8 * mr[0], 100 * mr[i] / mr[0]); ok = (mr[i] >= 0.8 * mr[0]) }
        if (x[i] > 0 && ok >= 0) ok = 0
        printf "| `%s` | %.0f | %.2f | %.2f | %s | %s |\n", u[i+1], mr[i], mp[i], wp[i], t, ok < 0 ? "" : ok ? "yes" : "**no**"
      }
    }' "$OUT/runs.tsv"
  echo
  echo "RSS of marketplace serve: idle VmRSS $(( IDLE_RSS / 1024 )) MB ($IDLE_RSS kB = $IDLE_SPLIT; target ≤ 40 MB: $([ "$IDLE_RSS" -le 40960 ] && echo yes || echo '**no**')),"
  echo "VmHWM after the load $(( LOAD_HWM / 1024 )) MB ($LOAD_HWM kB; target ≤ 120 MB: $([ "$LOAD_HWM" -le 122880 ] && echo yes || echo '**no**')), VmRSS after the load $(( LOAD_RSS / 1024 )) MB ($LOAD_SPLIT)."
  echo
  echo "Machine before the runs:"; echo '```'; cat "$OUT/machine-before.txt"; echo '```'
  echo "Machine after the runs:"; echo '```'; cat "$OUT/machine-after.txt"; echo '```'
} >"$OUT/summary.md"
echo
cat "$OUT/summary.md"
