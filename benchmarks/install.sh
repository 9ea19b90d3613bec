#!/usr/bin/env bash
# Installs the benchmark-only peers (not needed by the test suite):
# buildah (overlay storage, chroot isolation) and Charliecloud's ch-image; python3-venv for
# the virtualenv brickyard is installed into on the distribution's interpreter.
set -euo pipefail
PACKAGES=(buildah fuse-overlayfs charliecloud-builders charliecloud-runtime python3-lark python3-venv time e2fsprogs util-linux debootstrap dpkg-dev openssl)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
