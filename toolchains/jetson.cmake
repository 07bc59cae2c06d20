# jetson.cmake - cross-compiles edgeload for NVIDIA Jetson boards from an x86-64 Debian/Ubuntu
# machine: the aarch64 CPU side of toolchains/aarch64-linux-gnu.cmake (compiler, target
# libraries, qemu for ctest) plus CUDA for the boards' GPUs:
#   sm_87   Jetson Orin (Nano, NX, AGX Orin): JetPack 5/6, CUDA 11.4 .. 12.x
#   sm_110  Jetson AGX Thor: JetPack 7, CUDA 13 (CUDA 12.8/12.9 called it sm_101)
#
#   cmake -S . -B build-jetson -DCMAKE_TOOLCHAIN_FILE=toolchains/jetson.cmake \
#         -DCUDA_TOOLKIT_ROOT=/usr/local/cuda-13.0 [-DEL_JETSON_SYSROOT=.../Linux_for_Tegra/rootfs]
#   cmake --build build-jetson -j2
#
# Settings (cache variables, or environment variables of the same name):
#   CUDA_TOOLKIT_ROOT    required: a CUDA toolkit for the x86-64 host that can target aarch64:
#                        bin/nvcc plus targets/aarch64-linux/{include,lib} (NVIDIA's
#                        cuda-cross-aarch64 packages, or the host side SDK Manager installs
#                        with JetPack), of the CUDA version the board's JetPack ships.
#   EL_JETSON_SYSROOT    optional: the board's root filesystem (JetPack's
#                        Linux_for_Tegra/rootfs, or a copy of a flashed board's /), used as
#                        the sysroot: its glibc, its liblz4-dev/libcjson-dev (install them in
#                        the rootfs), and qemu's -L. Unset: Debian's arm64 cross packages as in
#                        aarch64-linux-gnu.cmake (fine for the CPU build; JetPack's L4T libs
#                        such as libcuda.so then come from CUDA_TOOLKIT_ROOT's stubs).
#   EL_JETSON_CUDA_ARCHS GPU architectures to build for (default "87;110"; "87" alone for a
#                        CUDA 11/12 toolkit, which lacks sm_110).
# Every missing piece stops the configure with what to install or set.
#
# These settings (CMAKE_CUDA_COMPILER, CMAKE_CUDA_HOST_COMPILER, CMAKE_CUDA_ARCHITECTURES,
# CUDAToolkit_ROOT) feed CMakeLists.txt's enable_language(CUDA) / find_package(CUDAToolkit)
# (EL_CUDA=AUTO|ON): kernels/cuda is compiled for these architectures. No model runs on the
# GPU yet, so the binary runs models on the CPU with the NEON kernels.

list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES
     CUDA_TOOLKIT_ROOT EL_JETSON_SYSROOT EL_JETSON_CUDA_ARCHS CMAKE_CUDA_HOST_COMPILER)

macro(el_jetson_setting var default)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    if(DEFINED ENV{${var}} AND NOT "$ENV{${var}}" STREQUAL "")
      set(${var} "$ENV{${var}}")
    else()
      set(${var} "${default}")
    endif()
  endif()
endmacro()
el_jetson_setting(CUDA_TOOLKIT_ROOT "")
el_jetson_setting(EL_JETSON_SYSROOT "")
el_jetson_setting(EL_JETSON_CUDA_ARCHS "87;110")

# The board's root filesystem, when given, is the sysroot for everything.
if(EL_JETSON_SYSROOT)
  if(NOT IS_DIRECTORY "${EL_JETSON_SYSROOT}/usr/lib/aarch64-linux-gnu")
    message(FATAL_ERROR
      "toolchains/jetson.cmake: EL_JETSON_SYSROOT=${EL_JETSON_SYSROOT} is not an aarch64 root "
      "filesystem (no usr/lib/aarch64-linux-gnu). Point it at JetPack's "
      "Linux_for_Tegra/rootfs (from SDK Manager or the L4T sample rootfs) or leave it unset "
      "to use Debian's arm64 cross packages.")
  endif()
  set(CMAKE_SYSROOT "${EL_JETSON_SYSROOT}")
  set(EL_AARCH64_SYSROOT "${EL_JETSON_SYSROOT}")
  set(EL_AARCH64_PKGCONFIG "${EL_JETSON_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig")
endif()

include("${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu.cmake")

# ---- CUDA ------------------------------------------------------------------------------
set(_el_cuda_hint
    "Install NVIDIA's CUDA toolkit for cross-compiling to aarch64 (the cuda-cross-aarch64 \
packages for the CUDA version of the board's JetPack: 12.x for Orin on JetPack 6, 13.x for \
Thor on JetPack 7) and pass -DCUDA_TOOLKIT_ROOT=/usr/local/cuda-<version>.")

if(NOT CUDA_TOOLKIT_ROOT)
  message(FATAL_ERROR "toolchains/jetson.cmake: CUDA_TOOLKIT_ROOT is not set. ${_el_cuda_hint} "
                      "For a CPU-only aarch64 build use toolchains/aarch64-linux-gnu.cmake.")
endif()
if(NOT EXISTS "${CUDA_TOOLKIT_ROOT}/bin/nvcc")
  message(FATAL_ERROR "toolchains/jetson.cmake: no bin/nvcc under CUDA_TOOLKIT_ROOT="
                      "${CUDA_TOOLKIT_ROOT}. ${_el_cuda_hint}")
endif()
if(NOT IS_DIRECTORY "${CUDA_TOOLKIT_ROOT}/targets/aarch64-linux/lib")
  message(FATAL_ERROR "toolchains/jetson.cmake: CUDA_TOOLKIT_ROOT=${CUDA_TOOLKIT_ROOT} has no "
                      "aarch64 target libraries (targets/aarch64-linux/lib): it is a native "
                      "x86-64 toolkit only. ${_el_cuda_hint}")
endif()

# nvcc compiles device code itself and hands host code to a C++ compiler for the target.
if(NOT CMAKE_CUDA_HOST_COMPILER)
  find_program(EL_CROSS_CXX NAMES ${EL_CROSS_PREFIX}g++)
  if(NOT EL_CROSS_CXX)
    message(FATAL_ERROR "toolchains/jetson.cmake: ${EL_CROSS_PREFIX}g++ (nvcc's host compiler "
                        "for aarch64) was not found. On Debian/Ubuntu: apt-get install "
                        "g++-aarch64-linux-gnu.")
  endif()
  set(CMAKE_CUDA_HOST_COMPILER "${EL_CROSS_CXX}")
endif()

# The toolkit's version decides which architectures it can build.
execute_process(COMMAND "${CUDA_TOOLKIT_ROOT}/bin/nvcc" --version
                OUTPUT_VARIABLE _el_nvcc_out ERROR_QUIET RESULT_VARIABLE _el_nvcc_rc)
string(REGEX MATCH "release ([0-9]+)\\.([0-9]+)" _el_nvcc_rel "${_el_nvcc_out}")
if(NOT _el_nvcc_rc EQUAL 0 OR NOT _el_nvcc_rel)
  message(FATAL_ERROR "toolchains/jetson.cmake: ${CUDA_TOOLKIT_ROOT}/bin/nvcc --version failed "
                      "or printed no release number. ${_el_cuda_hint}")
endif()
set(_el_cuda_major "${CMAKE_MATCH_1}")
if("110" IN_LIST EL_JETSON_CUDA_ARCHS AND _el_cuda_major LESS 13)
  message(FATAL_ERROR "toolchains/jetson.cmake: CUDA ${CMAKE_MATCH_1}.${CMAKE_MATCH_2} at "
                      "${CUDA_TOOLKIT_ROOT} cannot build sm_110 (Jetson Thor needs CUDA 13, "
                      "JetPack 7). Use a CUDA 13 toolkit, or -DEL_JETSON_CUDA_ARCHS=87 for Orin "
                      "boards only.")
endif()

set(EL_CUDA_CROSS ON) # CMakeLists.txt: CUDA in a cross build only when the toolchain says so
set(CMAKE_CUDA_COMPILER "${CUDA_TOOLKIT_ROOT}/bin/nvcc")
set(CMAKE_CUDA_ARCHITECTURES "${EL_JETSON_CUDA_ARCHS}")
set(CUDAToolkit_ROOT "${CUDA_TOOLKIT_ROOT}")
# find_package(CUDAToolkit) looks for the target's libraries here when cross-compiling.
set(CUDAToolkit_TARGET_DIR "${CUDA_TOOLKIT_ROOT}/targets/aarch64-linux")
list(APPEND CMAKE_FIND_ROOT_PATH "${CUDA_TOOLKIT_ROOT}/targets/aarch64-linux")
