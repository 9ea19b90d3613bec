#!/usr/bin/env bash
# Installs everything the tests and the demo need on a fresh Debian 12 machine:
# apt packages (registry, skopeo, umoci, base-image makers, peers for benchmarks),
# brickyard itself with its test extras, and the npm CI tools under .tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  docker-registry skopeo umoci busybox-static debootstrap rsync git uidmap
  e2fsprogs jq ca-certificates util-linux
  groovy
  python3-zstandard
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[test]'

if [[ -f scripts/install-npm-tools.sh ]]; then
  bash scripts/install-npm-tools.sh
fi
