#!/usr/bin/env bash
# cuda_gate.sh - proves, without a GPU, what the CUDA kernels compile to (issue: "vectorised
# loads proven in PTX"): every kernels/cuda/*.cu is compiled with nvcc for each architecture
# in $EL_GATE_ARCHS (default 87 90) and
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
#   3. no kernel spills registers (ptxas -v: "spill stores"/"spill loads" must be 0);
#   4. no kernel uses more local memory (stack frame) than its budget: 0 bytes, except the
#      RoPE table builder (init only), whose sinf/cosf argument reduction takes 32.
# Exit 1 with the findings; skipped with a message (exit 0) when nvcc is not installed,
# unless CI=true, where a missing nvcc fails. Takes about a minute on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=${EL_GATE_ARCHS:-87 90}
if ! command -v nvcc >/dev/null; then
  if [[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
    echo "cuda_gate: FAIL: nvcc not found (the CUDA toolkit is on the build machines)" >&2
    exit 1
  fi
  echo "cuda_gate: nvcc not found: skipping the PTX/SASS checks" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
declare -A budget=([rope_table_kernel]=32)
for arch in $archs; do
  for src in kernels/cuda/*.cu; do
    name=$(basename "$src" .cu)
    flags=(-arch=sm_$arch -I. -Iinclude -DEL_HAVE_CUDA=1 -std=c++17)
    nvcc "${flags[@]}" -ptx "$src" -o "$work/$name.ptx"
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
    nvcc "${flags[@]}" -cubin -Xptxas -v "$src" -o "$work/$name.cubin" 2>"$work/ptxas"
    # "Function properties for NAME" is followed by "N bytes stack frame, S bytes spill
    # stores, L bytes spill loads".
    awk -v src="$src" -v arch="$arch" -v budgets="$(for k in "${!budget[@]}"; do printf '%s=%s ' "$k" "${budget[$k]}"; done)" '
      BEGIN { n = split(budgets, b, " "); for (i = 1; i <= n; i++) { split(b[i], kv, "="); lim[kv[1]] = kv[2] } }
      /Function properties for/ { fn = $NF; next }
      /bytes stack frame/ {
        stack = $1; spill_st = $5; spill_ld = $9; allowed = 0
        for (k in lim) if (index(fn, k)) allowed = lim[k]
        if (spill_st + 0 > 0 || spill_ld + 0 > 0) { printf "cuda_gate: sm_%s %s: %s spills (%s stores, %s loads)\n", arch, src, fn, spill_st, spill_ld; bad = 1 }
        if (stack + 0 > allowed) { printf "cuda_gate: sm_%s %s: %s uses %s bytes of local memory (budget %s)\n", arch, src, fn, stack, allowed; bad = 1 }
      }
      END { exit bad }' "$work/ptxas" >&2 || fail=1
  done
  echo "cuda_gate: sm_$arch: $(ls kernels/cuda/*.cu | wc -l) files checked"
done
if [[ $fail -ne 0 ]]; then
  echo "cuda_gate: FAIL" >&2
  exit 1
fi
echo "cuda_gate: ok (no byte loads, 16-byte weight loads in matmul, matmul_dp4a (32-block types) and matmul_k, no spills, local memory within budget)"
