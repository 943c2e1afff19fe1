# Shared helpers of the bench scripts (sourced, not run).

# psql_admin runs SQL on the maintenance database as postgres.
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PGHOST_BENCH" -U postgres -d postgres "$@"; }

# recreate_db drops and creates database $1.
recreate_db() {
  psql_admin -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}

# MARKETPLACE_GOFLAGS are the Makefile's: the binary as `make run` builds it (bench/README.md, "Memory").
MARKETPLACE_GOFLAGS="-buildvcs=false -tags=kustomize_disable_go_plugin_support"

# build_marketplace builds the binary the benchmarks run; BENCH_NO_BUILD=1 uses the one already in
# bench/.bin (bench/smoke_test.go builds it once for all the scripts it runs).
build_marketplace() {
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$ROOT/bench/.bin/marketplace" ] && return 0
  (cd "$ROOT" && GOFLAGS="$MARKETPLACE_GOFLAGS" go build -o bench/.bin/marketplace ./cmd/marketplace)
}

# build_marketplace_api builds the API-only binary (-tags apionly: no Helm, client-go or go-libvirt), as
# make build's .local/bin/marketplace-api; BENCH_NO_BUILD=1 uses the one in bench/.bin when there is one.
build_marketplace_api() {
  [ "${BENCH_NO_BUILD:-0}" = 1 ] && [ -x "$ROOT/bench/.bin/marketplace-api" ] && return 0
  (cd "$ROOT" && GOFLAGS="$MARKETPLACE_GOFLAGS" go build -tags apionly -o bench/.bin/marketplace-api ./cmd/marketplace)
}

# wait_http waits up to 30 s for URL $1 to answer 200.
wait_http() {
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}

# port_free fails when something already listens on host:port $1.
port_free() {
  if ss -Hltn "sport = :${1##*:}" | grep -q .; then
    echo "port ${1##*:} is taken; set another address" >&2
    return 1
  fi
}

# proc_kb prints field $2 (VmRSS, VmHWM) of process $1 in kB.
proc_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# cpu_ticks prints the user+system CPU time of process $1 in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# machine prints what the machine is and what else runs on it right now.
machine() {
  echo "cores: $(nproc); $(uptime | sed 's/.*load/load/')"
  top -b -n2 -d1 -w 200 | awk '/^top -/{n++} n==2' | sed -n '3p;7,14p' | sed 's/^/  /'
}
