#!/usr/bin/env bash
# usage: read.sh PORT [times]
PORT=$1; K=${2:-3}
TOKEN=mpt_bench-publisher-1-aaaaaaaaaaaaaaaaaaaaaaaaa
for u in "page=1&limit=20" "page=400&limit=20" "page=1&limit=20&deploymentType=vm" "page=1&limit=20&q=sku017" "page=1&limit=20&q=monitoring" "page=1&limit=20&q=Speed%20App%2000042"; do
  printf '%-40s' "$u"
  for _ in $(seq $K); do curl -s -o /dev/null -w '%{time_total} ' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/apps?$u"; done
  echo
done
