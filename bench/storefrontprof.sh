#!/usr/bin/env bash
# CPU profiles of the storefront's catalog `/` and of the JSON endpoint it shows, on the database that
# bench/storefront.sh seeded and left (10,000 applications, its session and token): bench/apiprof -web
# serves both as `serve` does (the storefront in front of the API) plus net/http/pprof, and each URL is
# loaded with wrk -t2 -c32 while `go tool pprof` samples DURATION of it.
#
#   BENCH_DB=mp_bench_web bash bench/storefrontprof.sh          # after bench/storefront.sh
#   APIPROF=/path/to/apiprof OUT=bench/results/x bash …         # a binary built elsewhere (an older commit)
#
# Output in $OUT: summary.txt, and for each URL the profile (.pb.gz), its top by flat and cumulative time, the requests
# wrk made while it was taken, and the process's CPU time over them (µs of Go CPU per request).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source bench/lib.sh

PGHOST_BENCH=${PGHOST_BENCH:-127.0.0.1}
DB=${BENCH_DB:-mp_bench_web}
DATABASE_URL="postgres://postgres@$PGHOST_BENCH:5432/$DB?sslmode=disable"
ADDR=${BENCH_ADDR:-127.0.0.1:3110}
PPROF=${BENCH_PPROF_ADDR:-127.0.0.1:6110}
DURATION=${DURATION:-10} # seconds profiled per URL
WARMUP=${WARMUP:-3}     # seconds of wrk before, so plans and kept pages are made
OUT=${OUT:-bench/results/storefront-profile-$(date -u +%Y%m%dT%H%M%SZ)}
TOKEN=mpt_bench-storefront-user-aaaaaaaaaaaaaaaaaaaaa
SESSION=bench-storefront-session
mkdir -p "$OUT"
port_free "$ADDR"
port_free "$PPROF"
if [ -z "${APIPROF:-}" ]; then
  (GOFLAGS="$MARKETPLACE_GOFLAGS" go build -o bench/.bin/apiprof ./bench/apiprof)
  APIPROF=$ROOT/bench/.bin/apiprof
fi
"$APIPROF" -web -db "$DATABASE_URL" -addr "$ADDR" -pprof "$PPROF" >"$OUT/apiprof.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
wait_http "http://$ADDR/healthz"
BASE="http://$ADDR"
echo "load before: $(cat /proc/loadavg)" | tee "$OUT/load.txt"
for url in "/" "/api/apps?page=1&limit=20"; do
  name=$(printf %s "$url" | tr -c "a-z0-9" _)
  # A warm-up, so plans and kept pages are made before the profile.
  wrk -t2 -c32 -d"$WARMUP"s -H "Cookie: mp_session=$SESSION" -H "Authorization: Bearer $TOKEN" "$BASE$url" >/dev/null
  wrk -t2 -c32 -d$((DURATION + 4))s --latency -H "Cookie: mp_session=$SESSION" -H "Authorization: Bearer $TOKEN" "$BASE$url" \
    >"$OUT/wrk-$name.txt" &
  WRK=$!
  sleep 2
  before=$(cpu_ticks $PID)
  go tool pprof -proto -seconds "$DURATION" "http://$PPROF/debug/pprof/profile" >"$OUT/cpu-$name.pb.gz" 2>/dev/null
  after=$(cpu_ticks $PID)
  wait $WRK
  go tool pprof -top -nodecount=40 "$OUT/cpu-$name.pb.gz" >"$OUT/top-$name.txt" 2>/dev/null
  go tool pprof -top -cum -nodecount=60 "$OUT/cpu-$name.pb.gz" >"$OUT/topcum-$name.txt" 2>/dev/null
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$OUT/wrk-$name.txt")
  ticks=$(getconf CLK_TCK)
  awk -v u="$url" -v r="$rps" -v c=$((after - before)) -v t="$ticks" -v d="$DURATION" \
    'BEGIN { printf "%s: %.0f req/s, Go CPU %.2f s in %d s, %.0f µs per request\n", u, r, c / t, d, c / t / (r * d) * 1e6 }' |
    tee -a "$OUT/summary.txt"
done
echo "load after: $(cat /proc/loadavg)" | tee -a "$OUT/load.txt"
