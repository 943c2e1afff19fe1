#!/usr/bin/env bash
# apt-install.sh PACKAGE...: install Debian packages, refreshing the package lists first only when the
# install fails without them (a new machine may have none).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=900 "$@" >/dev/null; }
apt_get install -y "$@" || { apt_get update && apt_get install -y "$@"; }
