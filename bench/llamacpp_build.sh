#!/usr/bin/env bash
# llamacpp_build.sh - builds llama.cpp, the speed and correctness peer, from the llama-cpp-python
# sdist on PyPI (its vendor/llama.cpp), CPU only, into .cache/llamacpp/ (developer-run, never CI).
#   bench/llamacpp_build.sh [avx2|avx512]     (default avx512 when the CPU has AVX-512 F/BW/VL)
# prints the bin folder (llama-bench, llama-simple, llama-tokenize, llama-quantize).
# GGML_NATIVE is off on purpose: a native build also enables AMX, which a VM may expose in
# cpuinfo without enabling the tiles (SIGILL on the first matmul). The avx512 build enables
# what ggml's x86 variants use on this class of CPU: AVX-512 F/BW/VL/DQ/CD, VBMI, VNNI, BF16.
set -euo pipefail
cd "$(dirname "$0")/.."
ver=0.3.36
isa=${1:-}
if [[ -z $isa ]]; then
  if grep -qw avx512bw /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then isa=avx512; else isa=avx2; fi
fi
dir=.cache/llamacpp
src=$dir/llama_cpp_python-$ver/vendor/llama.cpp
out=$dir/build-$isa
if [[ -x $out/bin/llama-bench && -x $out/bin/llama-quantize ]]; then echo "$out/bin"; exit 0; fi
mkdir -p "$dir"
if [[ ! -d $src ]]; then
  python3 -m pip download --no-deps --no-binary :all: --disable-pip-version-check --quiet \
    -d "$dir" "llama-cpp-python==$ver" >&2
  tar -xzf "$dir/llama_cpp_python-$ver.tar.gz" -C "$dir"
fi
flags=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
       -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
if [[ $isa == avx512 ]]; then
  flags+=(-DGGML_AVX512=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON)
fi
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_CUDA=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF "${flags[@]}" >&2
cmake --build "$out" -j"$(nproc)" --target llama-bench llama-simple llama-tokenize \
  llama-quantize >&2
echo "$out/bin"
