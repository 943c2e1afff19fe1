#!/usr/bin/env bash
# Build (once, cached under $MARKETPLACE_CACHE/bin) the CNCF distribution registry, a real OCI registry the
# tests push charts to and install oci:// applications from.   usage: registry.sh build
set -euo pipefail
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
CACHE=${MARKETPLACE_CACHE:-$HOME/.cache/marketplace}
BIN=$CACHE/bin
export GOFLAGS=-buildvcs=false CGO_ENABLED=0 GOTOOLCHAIN=local
stamp="$BIN/.registry-$REGISTRY_VERSION-$(go env GOVERSION)"
if [ ! -x "$BIN/registry" ] || [ ! -f "$stamp" ]; then
  echo "building the OCI registry (distribution $REGISTRY_VERSION; once, ~4 min)"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install -trimpath -ldflags "-s -w" "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
  touch "$stamp"
fi
