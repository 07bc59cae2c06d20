#!/usr/bin/env bash
# test_deb.sh - the Debian packages (CI: scripts/test.sh, install_step). From an already
# built BUILD folder (default build):
#   1. cpack -G DEB gives edgeload, libedgeload0 and libedgeload-dev for this architecture,
#      each with its Depends (liblz4-1, libcjson1; libedgeload0 from -dev);
#   2. dpkg --root installs all three into a throwaway root (its own dpkg database);
#   3. the installed /usr/bin/edgeload finds --board jetson-orin-nano-8gb by name from
#      /usr/share/edgeload/boards and generates from assets/stories260K (CUDA builds: and
#      finds its CUDA module, shipped in libedgeload0);
#   4. examples/generate.c builds with the installed edgeload.pc and runs.
# With ARM64_BUILD (a built aarch64 cross build, e.g. build-arm64) the arm64 .debs are made
# too, unpacked with dpkg -x and their edgeload run under qemu-aarch64.
# Usage: scripts/test_deb.sh [BUILD [ARM64_BUILD]]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${1:-build}" && pwd)
model=$root/assets/stories260K/stories260K.bin
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }
version=$(sed -n 's/^project(edgeload VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)

# Builds the three packages of build folder $1 into $1/deb and checks their control fields
# for Debian architecture $2.
make_debs() {
  local b=$1 arch=$2
  rm -rf "$b/deb"
  (cd "$b" && cpack -G DEB -B "$b/deb" >/dev/null) || fail "cpack -G DEB failed in $b"
  for p in edgeload libedgeload0 libedgeload-dev; do
    local deb=$b/deb/${p}_${version}_${arch}.deb
    [[ -f "$deb" ]] || fail "no $deb (made: $(ls "$b/deb"))"
    [[ "$(dpkg-deb -f "$deb" Package)" == "$p" && "$(dpkg-deb -f "$deb" Architecture)" == "$arch" ]] ||
      fail "$deb: Package/Architecture are $(dpkg-deb -f "$deb" Package Architecture)"
    local dep
    dep=$(dpkg-deb -f "$deb" Depends)
    case $p in
      libedgeload-dev) [[ "$dep" == *"libedgeload0 (= $version)"* ]] ;;
      *) [[ "$dep" == *liblz4-1* && "$dep" == *libcjson1* ]] ;;
    esac || fail "$deb: Depends '$dep'"
  done
  dpkg-deb -c "$b/deb/libedgeload0_${version}_${arch}.deb" | grep -c 'libedgeload\.so\.0' >/dev/null ||
    fail "libedgeload0 has no libedgeload.so.0"
  if [[ -f "$b/libedgeload_cuda.so" ]]; then # CUDA builds: the module, in libedgeload0
    dpkg-deb -c "$b/deb/libedgeload0_${version}_${arch}.deb" | grep -c 'edgeload/libedgeload_cuda\.so' >/dev/null ||
      fail "libedgeload0 has no edgeload/libedgeload_cuda.so"
  fi
  echo "test_deb: $arch:" "$b"/deb/*.deb
}

arch=$(dpkg --print-architecture)
make_debs "$build" "$arch"
if command -v lintian >/dev/null; then
  lintian --no-tag-display-limit "$build"/deb/*.deb || echo "test_deb: lintian reported the above" >&2
fi

# 2. A throwaway root with its own dpkg database; dependencies are the host's.
dest=$build/deb-root
rm -rf "$dest"
mkdir -p "$dest/var/lib/dpkg/info" "$dest/var/lib/dpkg/updates"
touch "$dest/var/lib/dpkg/status"
dpkg --root="$dest" --force-not-root --force-depends --force-script-chrootless \
     --no-triggers -i "$build"/deb/*.deb >"$build/deb-root.log" 2>&1 ||
  fail "dpkg -i into $dest: $(cat "$build/deb-root.log")"
for p in edgeload libedgeload0 libedgeload-dev; do
  dpkg --root="$dest" -s "$p" 2>/dev/null | grep -c '^Status: install ok' >/dev/null || fail "$p is not installed"
done

# 3. The installed CLI, by board name, from outside the repository.
bin=$dest/usr/bin/edgeload
out=$(cd / && env -u EDGELOAD_BOARDS "$bin" plan "$model" --board jetson-orin-nano-8gb) ||
  fail "$bin plan --board jetson-orin-nano-8gb failed"
grep -q "board jetson-orin-nano-8gb" <<<"$out" || fail "plan --board printed: $out"
text=$(cd / && "$bin" generate "$model" --board jetson-orin-nano-8gb -p "Once upon a time" -n 16 \
       --temp 0 --device cpu 2>/dev/null) || fail "$bin generate failed"
[[ "$text" == "Once upon a time"?* ]] || fail "$bin generate printed '$text'"

if [[ -f "$build/libedgeload_cuda.so" ]]; then # the installed CLI finds the CUDA module
  dev=$(cd / && env -u EL_CUDA_MODULE "$bin" devices 2>&1) || fail "$bin devices failed: $dev"
  [[ "$dev" != *"was not found"* ]] || fail "the installed CLI does not find its CUDA module: $dev"
fi
# 4. An application against the installed -dev package (its .pc is relocatable).
pc=$(find "$dest/usr/lib" -name edgeload.pc | head -1)
[[ -n "$pc" ]] || fail "libedgeload-dev has no edgeload.pc"
libdir=$(dirname "$(dirname "$pc")")
# shellcheck disable=SC2046
cc -std=c11 -O2 -o "$build/deb-example" examples/generate.c \
   $(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs edgeload) -Wl,-rpath,"$libdir"
got=$("$build/deb-example" "$model" "Once upon a time" 16 2>/dev/null) || fail "the example failed"
[[ "$got" == "$text" ]] || fail "the example printed '$got', the installed CLI '$text'"
echo "test_deb: installed into $dest: edgeload --board by name, generate, the example: ok"

# arm64: the cross build's packages, run under qemu.
if [[ -n "${2:-}" ]]; then
  a64=$(cd "$2" && pwd)
  make_debs "$a64" arm64
  x=$a64/deb-root
  rm -rf "$x"
  for d in "$a64"/deb/*.deb; do dpkg -x "$d" "$x"; done
  qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static)
  out=$(cd / && "$qemu" -L /usr/aarch64-linux-gnu "$x/usr/bin/edgeload" plan "$model" \
        --board raspberry-pi-5-8gb) || fail "arm64 edgeload plan --board failed"
  grep -q "board raspberry-pi-5-8gb" <<<"$out" || fail "arm64 plan --board printed: $out"
  echo "test_deb: arm64 edgeload from its .deb finds --board raspberry-pi-5-8gb under qemu"
fi
