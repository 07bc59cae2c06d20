#!/usr/bin/env bash
# setup.sh - installs what edgeload's build and tests need on Debian 12, idempotently:
# a no-op when everything is present. Run as root (or with sudo available).
#   scripts/setup.sh            build + test dependencies
#   scripts/setup.sh --arm64    also what the aarch64 cross build and its qemu run need:
#                               gcc-aarch64-linux-gnu (with libc6-dev-arm64-cross, the
#                               sysroot under /usr/aarch64-linux-gnu), qemu-user
#                               (qemu-aarch64), and the arm64 multiarch liblz4-dev:arm64 and
#                               libcjson-dev:arm64 (dpkg --add-architecture arm64 first)
# The README's test command passes --arm64: scripts/test.sh cross-builds and runs tests
# under qemu-aarch64, and in CI (CI=true) it fails when these are missing.
set -euo pipefail

arm64=0
for a in "$@"; do
  case "$a" in
    --arm64) arm64=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$a' (try --help)" >&2; exit 1 ;;
  esac
done

pkgs=(build-essential cmake pkg-config liblz4-dev libcjson-dev clang libclang-rt-14-dev
      valgrind cppcheck python3 python3-pip)
if [[ $arm64 -eq 1 ]]; then
  pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
         liblz4-dev:arm64 libcjson-dev:arm64)
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
if printf '%s\n' "${missing[@]}" | grep -q ':arm64' &&
   ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: enabling the arm64 multiarch architecture (dpkg --add-architecture arm64)"
  $SUDO dpkg --add-architecture arm64
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
