#!/usr/bin/env bash
# Build (once, cached under $MARKETPLACE_CACHE/bin) Ory Hydra, the real OpenID Connect provider the single
# sign-on tests run as a process (internal/testenv).   usage: hydra.sh
# Built from the module's own source, since its go.mod has replace directives (`go install pkg@version`
# refuses it); one of them points at a nested module the module zip leaves out (internal/httpclient), so
# that one is dropped and the client of go.mod's require line is taken. Without the sqlite tag (no cgo):
# the tests give it a PostgreSQL database of its own.
set -euo pipefail
HYDRA_VERSION=${HYDRA_VERSION:-v2.3.0}
CACHE=${MARKETPLACE_CACHE:-$HOME/.cache/marketplace}
BIN=$CACHE/bin; WORK=$CACHE/work
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
stamp="$BIN/.hydra-$HYDRA_VERSION-$(go env GOVERSION)"
if [ ! -x "$BIN/hydra" ] || [ ! -f "$stamp" ]; then
  echo "building Ory Hydra $HYDRA_VERSION (once; cached in $BIN)"
  mkdir -p "$BIN" "$WORK"
  dir=$(go mod download -json "github.com/ory/hydra/v2@$HYDRA_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  src="$WORK/hydra-$HYDRA_VERSION"
  rm -rf "$src"; cp -r "$dir" "$src"; chmod -R u+w "$src"
  sed -i '/^replace github.com\/ory\/hydra-client-go/d' "$src/go.mod"
  (cd "$src" && go build -mod=mod -trimpath -ldflags "-s -w" -o "$BIN/hydra" .) >"$WORK/build-hydra.log" 2>&1 || { tail -20 "$WORK/build-hydra.log"; exit 1; }
  touch "$stamp"
fi
