#!/usr/bin/env bash
# setup.sh - installs what edgeload's build and tests need on Debian 12, idempotently:
# a no-op when everything is present. Run as root (or with sudo available).
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --arm64    also the aarch64 cross toolchain, arm64 libraries, qemu-user
set -euo pipefail

pkgs=(build-essential cmake pkg-config liblz4-dev libcjson-dev clang libclang-rt-14-dev
      valgrind cppcheck python3)
if [[ "${1:-}" == "--arm64" ]]; then
  pkgs+=(gcc-aarch64-linux-gnu qemu-user liblz4-dev:arm64 libcjson-dev:arm64)
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup: all dependencies present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
if printf '%s\n' "${missing[@]}" | grep -q ':arm64'; then
  $SUDO dpkg --add-architecture arm64
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
