#!/usr/bin/env bash
# htmx.sh: fetch the pinned htmx from the npm registry into internal/web/assets, with its licence. The
# result is committed, so `go build` works from a clean clone; run this only to change the version.
set -euo pipefail
cd "$(dirname "$0")/.."
version=2.0.11
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$version" >/dev/null && tar xzf htmx.org-"$version".tgz)
cp "$tmp/package/dist/htmx.min.js" internal/web/assets/htmx.min.js
cp "$tmp/package/LICENSE" internal/web/assets/htmx.LICENSE
echo "htmx $version" >internal/web/assets/htmx.VERSION
