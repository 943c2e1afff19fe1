#!/usr/bin/env bash
# usage: fill.sh DB PORT N  — recreate DB, migrate, users by SQL, serve, publish N through the API (8 clients); leaves serve running (pid in /tmp/i23/serve.$DB.pid)
set -euo pipefail
DB=$1; PORT=$2; N=$3
ROOT=/work/wt/catalog-api; cd $ROOT
MP=${MP:-$ROOT/bench/.bin/marketplace}
URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
TOKEN=mpt_bench-publisher-1-aaaaaaaaaaaaaaaaaaaaaaaaa
TOKEN2=mpt_bench-publisher-2-aaaaaaaaaaaaaaaaaaaaaaaaa
psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
env -u KUBECONFIG DATABASE_URL="$URL" LOG_LEVEL=warn "$MP" migrate
h1=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1); h2=$(printf %s "$TOKEN2" | sha256sum | cut -d' ' -f1)
psql -X -q "$URL" -c "INSERT INTO users (name) VALUES ('P1'), ('P2'); INSERT INTO tokens (user_id, hash) VALUES (1, decode('$h1','hex')), (2, decode('$h2','hex'));"
redis-cli -n ${RDB:-14} FLUSHDB >/dev/null
CACHE=$(mktemp -d)
env -u KUBECONFIG DATABASE_URL="$URL" REDIS_URL=redis://localhost:6379/${RDB:-14} MARKETPLACE_ADDR=127.0.0.1:$PORT LOG_LEVEL=warn QUOTA_APPS_PER_USER=0 \
  MARKETPLACE_FETCH_ALLOW=127.0.0.1:8879 MARKETPLACE_CACHE_DIR="$CACHE" "$MP" serve >/tmp/i23/serve.$DB.log 2>&1 &
echo $! > /tmp/i23/serve.$DB.pid
for _ in $(seq 300); do curl -fsS -o /dev/null http://127.0.0.1:$PORT/healthz 2>/dev/null && break; sleep 0.1; done
bench/.bin/publish -base http://127.0.0.1:$PORT -tokens $TOKEN,$TOKEN2 -n $N -c 8
