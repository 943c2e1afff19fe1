#!/usr/bin/env bash
# The storefront benchmark of TARGETS.md: the catalog page `/` over 10,000 applications against the JSON
# endpoint it shows (GET /api/apps?page=1&limit=20), in the same run, with wrk; and the bytes the first
# load of `/` transfers (the page and every asset it links, gzip as a browser asks).
#
#   bash bench/storefront.sh                     # 3 runs of 20 s per URL, interleaved
#   RUNS=1 DURATION=5s bash bench/storefront.sh
#
# It drops and recreates the database mp_bench_web, seeds it by SQL (10,000 applications, a user with a
# token and a storefront session), starts `marketplace serve` without a cluster and runs
# `wrk -t2 -c32 -d20s --latency` on both URLs, alternating. Output goes to $OUT; the summary is printed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_DB:-mp_bench_web}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
REDIS_URL=${BENCH_REDIS_URL:-redis://localhost:6379/13}
ADDR=${BENCH_ADDR:-127.0.0.1:3110}
RUNS=${RUNS:-3}
DURATION=${DURATION:-20s}
OUT=${OUT:-bench/results/storefront-$(date -u +%Y%m%dT%H%M%SZ)}
TOKEN=mpt_bench-storefront-user-aaaaaaaaaaaaaaaaaaaaa
SESSION=bench-storefront-session
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "installing wrk"; bash scripts/apt-install.sh wrk; }
port_free "$ADDR"
build_marketplace
MP=$ROOT/bench/.bin/marketplace

recreate_db "$DB"
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" LOG_LEVEL=warn "$MP" migrate
token_hash=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
session_hash=$(printf %s "web-session:$SESSION" | sha256sum | cut -d' ' -f1)
psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" <<SQL
INSERT INTO users (name) VALUES ('Bench user');
INSERT INTO tokens (user_id, hash) VALUES (1, decode('$token_hash', 'hex'));
INSERT INTO web_sessions (id_hash, user_id, token_id, csrf_token, expires_at)
VALUES (decode('$session_hash', 'hex'), 1, 1, 'bench', now() + interval '1 day');
INSERT INTO applications (publisher_id, name, description, hourly_rate, deployment_type, deployment, inputs)
SELECT 1, 'Benchmark app ' || i,
       'Application ' || i || ' of the catalog benchmark: a small web server with a Deployment and a Service.',
       round(0.1 + (i % 100) * 0.05, 6), CASE WHEN i % 2 = 0 THEN 'vm' ELSE 'k8s' END,
       CASE WHEN i % 2 = 0
         THEN jsonb_build_object('type', 'vm', 'repoURL', '', 'chartName', '', 'chartVersion', '', 'image', 'debian-12-generic', 'cpu', '2', 'memory', '2Gi')
         ELSE jsonb_build_object('type', 'k8s', 'repoURL', 'http://127.0.0.1:8879', 'chartName', 'hello-web', 'chartVersion', '0.1.0', 'image', '', 'cpu', '', 'memory', '')
       END, '[]'::jsonb
FROM generate_series(1, 10000) AS i;
VACUUM ANALYZE;
SQL

redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null
CACHE=$(mktemp -d /tmp/mp-bench-cache.XXXXXX)
env -u KUBECONFIG DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" MARKETPLACE_ADDR="$ADDR" LOG_LEVEL=warn \
  MARKETPLACE_CACHE_DIR="$CACHE" "$MP" serve >"$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null; wait $SERVE 2>/dev/null; rm -rf "$CACHE"' EXIT
wait_http "http://$ADDR/healthz"
BASE="http://$ADDR"
COOKIE="Cookie: mp_session=$SESSION"

# The page must be the catalog's first page, not a redirect to sign in.
page=$(curl -fsS -H "$COOKIE" "$BASE/")
grep -q '10000 applications' <<<"$page" || { echo "/ does not show the catalog" >&2; exit 1; }

# First load: the HTML and every asset it links, as transferred (gzip where offered).
first=$(curl -sS -o /dev/null -w '%{size_download}' --compressed -H "$COOKIE" "$BASE/")
for a in $(grep -o '/assets/[^"]*' <<<"$page" | sort -u); do
  n=$(curl -sS -o /dev/null -w '%{size_download}' --compressed "$BASE$a"); first=$((first + n))
  echo "$a: $n bytes" >>"$OUT/first-load.txt"
done
echo "first load of /: $first bytes (target ≤ 153600)" | tee -a "$OUT/first-load.txt"

to_ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
echo "load before: $(cat /proc/loadavg)" | tee "$OUT/load.txt"
printf '| run | URL | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|---|\n' | tee "$OUT/runs.md"
for run in $(seq 1 "$RUNS"); do
  for url in "/" "/api/apps?page=1&limit=20"; do
    raw="$OUT/wrk-$run-$(tr -c 'a-z0-9' _ <<<"$url").txt"
    wrk -t2 -c32 -d"$DURATION" --latency -H "$COOKIE" -H "Authorization: Bearer $TOKEN" "$BASE$url" >"$raw"
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$raw")
    printf '| %s | `%s` | %s | %s | %s | %s |\n' "$run" "$url" "$(awk '/^Requests\/sec:/ {print $2}' "$raw")" \
      "$(to_ms "$(awk '$1 == "50%" {print $2}' "$raw")")" "$(to_ms "$(awk '$1 == "99%" {print $2}' "$raw")")" "${non2xx:-0}" | tee -a "$OUT/runs.md"
  done
done
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT/load.txt"
awk -F'|' 'NR > 2 { gsub(/[ `]/, "", $3); r[$3] = r[$3] " " $4 }
  END { for (u in r) { n = split(r[u], a, " "); asort(a); m[u] = (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2; printf "median %s: %.0f req/s\n", u, m[u] }
        printf "storefront / JSON: %.2f (target ≥ 0.90)\n", m["/"] / m["/api/apps?page=1&limit=20"] }' "$OUT/runs.md" | tee "$OUT/summary.txt"
