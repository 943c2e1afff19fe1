#!/usr/bin/env bash
# axe.sh: fetch axe-core (pinned) from the npm registry into ~/.cache/marketplace/axe-core, once. The
# storefront's browser tests inject it into every page they visit; it is not part of the product.
set -euo pipefail
version=4.11.0
dir="${MARKETPLACE_CACHE_DIR:-$HOME/.cache/marketplace}/axe-core-$version"
[ -s "$dir/axe.min.js" ] && exit 0
command -v npm >/dev/null || bash "$(dirname "$0")/apt-install.sh" npm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "axe-core@$version" >/dev/null && tar xzf axe-core-"$version".tgz)
mkdir -p "$dir"
cp "$tmp/package/axe.min.js" "$tmp/package/LICENSE" "$dir/"
