#!/usr/bin/env bash
# cuda_gate.sh - proves, without a GPU, what the CUDA kernels compile to (issue: "vectorised
# loads proven in PTX"). It reads what a CUDA build's kernel objects (el_cuda: one per
# kernels/cuda/*.cu, compiled with the build's own flags) carry for each architecture in
# $EL_GATE_ARCHS (default 87 90): the PTX and the SASS's resource usage, by cuobjdump. Checks:
#   1. no kernel loads global memory one byte at a time (ld.global[.nc].u8/s8/b8 in the PTX:
#      what a memcpy out of a loaded vector turns into);
#   2. matmul.cu loads its weights as 16-byte vectors through the read-only path
#      (ld.global.nc.v4, one per weight dtype: f32, f16, bf16); matmul_k.cu (K-quants) loads
#      Q4_K/Q5_K super-blocks as 16-byte vectors and Q6_K's (2-byte aligned) as 32-bit words
#      (ld.global.nc.v4 and ld.global.nc.u32/b32 both present); every kernel of the 32-block
#      types (matmul_q32_kernel in matmul.cu, matmul_q32_dp4a_kernel in matmul_dp4a.cu: Q8_0,
#      Q4_0, Q4_1, Q5_0, Q5_1, blocks not 16-byte aligned) loads its weights by 16-byte
#      ld.global.nc.v4 (staged in shared memory): at least one each, and (without a norm
#      prologue, whose f16/bf16 weights come by halfwords) no more 16-bit global loads than
#      the f32 kernel of the same epilogue kind (matmul_kernel<float, false, E>: MM_ONE; the
#      gated and q|k|v ones, MM_GLU and MM_QKV, read two biases), whose only ones are the
#      epilogue's f16/bf16 bias;
#   3. no kernel's stack frame (SASS, `cuobjdump -res-usage` STACK) exceeds its budget: 0 bytes,
#      except the RoPE table builder (init only), whose sinf/cosf argument reduction takes 32.
#      Spilled registers live in the stack frame, so a frame of 0 also proves no spills.
# Usage: scripts/cuda_gate.sh [BUILD]   (default: build, the Release build of scripts/test.sh)
# BUILD must be a CUDA build whose architectures embed PTX for each gate architecture
# (CUDAARCHS="87;90", as scripts/test.sh configures its Release build; a default build embeds
# PTX for the newest architecture only). Without BUILD, when build/ is not such a build, the
# gate configures one in build-gate/ and compiles el_cuda there (~8 min on 2 cores). The
# objects are brought up to date first (`cmake --build BUILD --target el_cuda`).
# cuobjdump: the toolkit's when on PATH, else the nvidia-cuda-cuobjdump wheel from PyPI
# (version and sha256 pinned) unpacked into .cache/cuobjdump/.
# Exit 1 with the findings; skipped with a message (exit 0) when nvcc is not installed,
# unless CI=true, where a missing nvcc fails.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${EL_GATE_ARCHS:-87 90}
ci=0
[[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]] && ci=1
if ! command -v nvcc >/dev/null; then
  if [[ $ci -eq 1 ]]; then
    echo "cuda_gate: FAIL: nvcc not found (the CUDA toolkit is on the build machines)" >&2
    exit 1
  fi
  echo "cuda_gate: nvcc not found: skipping the PTX/SASS checks" >&2
  exit 0
fi

# cuobjdump: on PATH, or the pinned wheel (x86_64 or aarch64 host)
cuobjdump=$(command -v cuobjdump || true)
if [[ -z $cuobjdump ]]; then
  ver=13.5.37
  cache=.cache/cuobjdump
  cuobjdump=$cache/$ver/nvidia/cu13/bin/cuobjdump
  if [[ ! -x $cuobjdump ]]; then
    mkdir -p "$cache"
    req=$(mktemp "$cache/req.XXXXXX")
    cat >"$req" <<REQ
nvidia-cuda-cuobjdump==$ver \
  --hash=sha256:38780fee50863252a0b8926357faa91615ca1c8346490563f33a06100cd73f58 \
  --hash=sha256:f48e3148535365161a268547b285fd01d92c80e4b457275375933825b5fc26b2
REQ
    echo "cuda_gate: pip download nvidia-cuda-cuobjdump==$ver (sha256-pinned)" >&2
    rm -rf "$cache/wheel" "$cache/$ver.tmp"
    python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
      --require-hashes -r "$req" -d "$cache/wheel"
    rm -f "$req"
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
      "$(ls "$cache"/wheel/*.whl)" "$cache/$ver.tmp"
    chmod +x "$cache/$ver.tmp/nvidia/cu13/bin/cuobjdump"
    mv "$cache/$ver.tmp" "$cache/$ver"
  fi
fi

# the build: objects that carry PTX and SASS for every gate architecture
has_archs() {
  local o=$1/CMakeFiles/el_cuda.dir/kernels/cuda/matmul.cu.o arch
  [[ -f $o ]] || return 1
  for arch in $archs; do
    "$cuobjdump" -lptx "$o" | grep "\.sm_$arch\.ptx\$" >/dev/null || return 1
    "$cuobjdump" -lelf "$o" | grep "\.sm_$arch\.cubin\$" >/dev/null || return 1
  done
}
build=${1:-}
if [[ -z $build ]]; then
  build=build
  if ! has_archs build; then
    build=build-gate
    echo "cuda_gate: build/ does not embed PTX for sm_${archs// /, sm_}: compiling el_cuda" \
         "in $build/" >&2
    CUDAARCHS="${archs// /;}" cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DEL_CUDA=ON >/dev/null
  fi
fi
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target el_cuda >/dev/null
if ! has_archs "$build"; then
  echo "cuda_gate: FAIL: $build's CUDA objects lack PTX or SASS for sm_${archs// /, sm_}:" \
       "configure it with CUDAARCHS=\"${archs// /;}\"" >&2
  exit 1
fi
objs=$build/CMakeFiles/el_cuda.dir/kernels/cuda
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
declare -A budget=([rope_table_kernel]=32)
for arch in $archs; do
  for src in kernels/cuda/*.cu; do
    name=$(basename "$src" .cu)
    "$cuobjdump" -ptx -arch "sm_$arch" "$objs/$name.cu.o" >"$work/$name.ptx"
    if ! grep -q '^\.visible \.entry' "$work/$name.ptx"; then
      echo "cuda_gate: sm_$arch $src: no kernel in the PTX of $objs/$name.cu.o" >&2
      fail=1
    fi
    if grep -nE 'ld\.global(\.nc)?\.(u8|s8|b8)\b' "$work/$name.ptx" >"$work/bytes"; then
      echo "cuda_gate: sm_$arch $src: byte-wise global loads:" >&2
      head -5 "$work/bytes" >&2
      fail=1
    fi
    if [[ $name == matmul ]]; then
      nv=$(grep -cE 'ld\.global\.nc\.v4\.' "$work/$name.ptx" || true)
      if [[ $nv -lt 3 ]]; then
        echo "cuda_gate: sm_$arch $src: $nv ld.global.nc.v4 weight loads, expected one per dtype (3)" >&2
        fail=1
      fi
    fi
    if [[ $name == matmul || $name == matmul_dp4a ]]; then
      # Per entry: 16-byte loads and 16-bit global loads; the reference count is the most of
      # matmul.cu's f32 kernels' (norm and gated variants: two biases; matmul.cu is compiled
      # first).
      awk '/^\.visible \.entry/ { fn = $3; sub(/\($/, "", fn); nv[fn] += 0; n16[fn] += 0 }
           /ld\.global(\.nc)?\.v4\./ { nv[fn]++ }
           /ld\.global(\.nc)?\.(u16|s16|b16)[ \t]/ { n16[fn]++ }
           END { for (f in nv) print f, nv[f], n16[f] }' "$work/$name.ptx" >"$work/$name.loads"
      # the references: <float, no norm, E> for E = MM_ONE, MM_GLU, MM_QKV (0, 1, 2)
      declare -A refs=()
      for e in 0 1 2; do
        refs[$e]=$(awk -v e="$e" '$1 ~ ("^_Z13matmul_kernelIfLb0ELi" e "EE") { print $3 }' "$work/matmul.loads")
      done
      nq=0
      while read -r fn v4 h16; do
        [[ $fn == *matmul_q32_kernel* || $fn == *matmul_q32_dp4a_kernel* ]] || continue
        nq=$((nq + 1))
        # <T, BB, NORM, E>: a norm prologue reads its f16/bf16 weights by halfwords (32
        # columns a block), so those kernels are held to the 16-byte weight loads only.
        [[ $fn == *ELb1ELi[012]EEv* ]] && h16=0
        e=${fn##*ELb[01]ELi}
        e=${e%%EEv*}
        ref=${refs[$e]:-}
        if [[ -z $ref || $v4 -lt 1 || $h16 -gt $ref ]]; then
          echo "cuda_gate: sm_$arch $src: $fn: $v4 ld.global.nc.v4 and $h16 16-bit global loads (the f32 kernel's epilogue: ${ref:-?}): 32-block weights must come by 16-byte loads" >&2
          fail=1
        fi
      done <"$work/$name.loads"
      if [[ $nq -lt 5 ]]; then
        echo "cuda_gate: sm_$arch $src: $nq 32-block kernels found, expected 5 (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1)" >&2
        fail=1
      fi
    fi
    if [[ $name == matmul_k ]]; then
      nv=$(grep -cE 'ld\.global\.nc\.v4\.' "$work/$name.ptx" || true)
      nw=$(grep -cE 'ld\.global\.nc\.(u32|b32)\b' "$work/$name.ptx" || true)
      if [[ $nv -lt 2 || $nw -lt 1 ]]; then
        echo "cuda_gate: sm_$arch $src: $nv ld.global.nc.v4 and $nw ld.global.nc.u32 weight loads, expected 16-byte loads (Q4_K, Q5_K) and 32-bit words (Q6_K)" >&2
        fail=1
      fi
    fi
    "$cuobjdump" -res-usage -arch "sm_$arch" "$objs/$name.cu.o" >"$work/res"
    # "Function NAME:" is followed by "REG:r STACK:s SHARED:... LOCAL:..."
    awk -v src="$src" -v arch="$arch" -v budgets="$(for k in "${!budget[@]}"; do printf '%s=%s ' "$k" "${budget[$k]}"; done)" '
      BEGIN { n = split(budgets, b, " "); for (i = 1; i <= n; i++) { split(b[i], kv, "="); lim[kv[1]] = kv[2] } }
      /^ *Function / { fn = $2; sub(/:$/, "", fn); nk++; next }
      fn != "" && /STACK:/ {
        stack = -1
        for (i = 1; i <= NF; i++) if ($i ~ /^STACK:/) { stack = substr($i, 7) + 0 }
        allowed = 0
        for (k in lim) if (index(fn, k)) allowed = lim[k]
        if (stack < 0 || stack > allowed) { printf "cuda_gate: sm_%s %s: %s has a %s-byte stack frame (budget %s: spills or local memory)\n", arch, src, fn, stack, allowed; bad = 1 }
        fn = ""
      }
      END { if (nk == 0) { printf "cuda_gate: sm_%s %s: no function in the SASS resource usage\n", arch, src; bad = 1 } exit bad }' "$work/res" >&2 || fail=1
  done
  echo "cuda_gate: sm_$arch: $(ls kernels/cuda/*.cu | wc -l) files checked"
done
if [[ $fail -ne 0 ]]; then
  echo "cuda_gate: FAIL" >&2
  exit 1
fi
echo "cuda_gate: ok (no byte loads, 16-byte weight loads in matmul, matmul_dp4a (32-block types) and matmul_k, stack frames within budget, so no spills)"
