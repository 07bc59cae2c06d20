# aarch64-linux-gnu.cmake - cross-compiles edgeload for 64-bit ARM Linux (Raspberry Pi 4/5,
# Jetson CPU side, Graviton...) from a Debian 12 x86-64 machine, and runs the ctest suite
# under qemu-aarch64.
#
# Needs (scripts/setup.sh --arm64 installs them):
#   gcc-aarch64-linux-gnu, libc6-dev-arm64-cross  the compiler and its sysroot
#                                                 (/usr/aarch64-linux-gnu)
#   liblz4-dev:arm64, libcjson-dev:arm64          the target's libraries, from Debian's arm64
#                                                 multiarch (/usr/lib/aarch64-linux-gnu)
#   qemu-user                                     qemu-aarch64, to run what was built
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake
#   cmake --build build-arm64 -j2 && (cd build-arm64 && ctest -R test_kernels_cpu)
#
# Settings (cache variables or environment variables of the same name):
#   EL_CROSS_PREFIX   compiler prefix (default aarch64-linux-gnu-, i.e. aarch64-linux-gnu-gcc)
#   EL_AARCH64_SYSROOT  the target's libc for qemu's -L (default /usr/aarch64-linux-gnu)
#   EL_AARCH64_PKGCONFIG  where the target's .pc files are
#                         (default /usr/lib/aarch64-linux-gnu/pkgconfig)
# A missing compiler, sysroot or target library stops the configure with what to install.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

# Settings pass to try_compile projects too (they re-read this file).
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES
     EL_CROSS_PREFIX EL_AARCH64_SYSROOT EL_AARCH64_PKGCONFIG)

macro(el_cross_setting var default)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    if(DEFINED ENV{${var}} AND NOT "$ENV{${var}}" STREQUAL "")
      set(${var} "$ENV{${var}}")
    else()
      set(${var} "${default}")
    endif()
  endif()
endmacro()
el_cross_setting(EL_CROSS_PREFIX aarch64-linux-gnu-)
el_cross_setting(EL_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
el_cross_setting(EL_AARCH64_PKGCONFIG /usr/lib/aarch64-linux-gnu/pkgconfig)

set(_el_install_hint
    "On Debian 12 run: scripts/setup.sh --arm64 (installs gcc-aarch64-linux-gnu, \
libc6-dev-arm64-cross, qemu-user, liblz4-dev:arm64 and libcjson-dev:arm64).")

# The compiler: an explicit CMAKE_C_COMPILER wins, else <prefix>gcc on PATH.
if(NOT CMAKE_C_COMPILER)
  find_program(EL_CROSS_CC NAMES ${EL_CROSS_PREFIX}gcc)
  if(NOT EL_CROSS_CC)
    message(FATAL_ERROR
      "toolchains/aarch64-linux-gnu.cmake: the cross compiler ${EL_CROSS_PREFIX}gcc was not "
      "found on PATH. ${_el_install_hint} Or set EL_CROSS_PREFIX / CMAKE_C_COMPILER to "
      "another aarch64 gcc.")
  endif()
  set(CMAKE_C_COMPILER "${EL_CROSS_CC}")
endif()

if(NOT EXISTS "${EL_AARCH64_SYSROOT}/lib/ld-linux-aarch64.so.1")
  message(FATAL_ERROR
    "toolchains/aarch64-linux-gnu.cmake: no aarch64 C library in EL_AARCH64_SYSROOT="
    "${EL_AARCH64_SYSROOT} (looked for lib/ld-linux-aarch64.so.1). ${_el_install_hint} "
    "Or point EL_AARCH64_SYSROOT at the target's root.")
endif()

# pkg-config must see the target's .pc files only, never the build machine's (whose
# -L/usr/lib/x86_64-linux-gnu would link x86 libraries). Multiarch .pc files name
# /usr/include (architecture-independent headers the cross gcc searches) and
# /usr/lib/aarch64-linux-gnu, so no sysroot rewriting is needed.
foreach(_el_pc liblz4 libcjson)
  if(NOT EXISTS "${EL_AARCH64_PKGCONFIG}/${_el_pc}.pc")
    message(FATAL_ERROR
      "toolchains/aarch64-linux-gnu.cmake: ${_el_pc}.pc for the target is missing from "
      "EL_AARCH64_PKGCONFIG=${EL_AARCH64_PKGCONFIG}. ${_el_install_hint}")
  endif()
endforeach()
set(ENV{PKG_CONFIG_LIBDIR} "${EL_AARCH64_PKGCONFIG}")
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CMAKE_SYSROOT}") # set by jetson.cmake for a board rootfs

# Libraries and headers come from the target's paths; programs (pkg-config, python3) from
# the build machine.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH "${EL_AARCH64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# ctest (and add_test) run target programs through qemu-aarch64 with the target's libc:
# -L makes the sysroot's ld-linux-aarch64.so.1 the loader, and LD_LIBRARY_PATH makes it load
# the sysroot's libc.so.6 too. Without it the loader's multiarch search finds the host's
# /lib/aarch64-linux-gnu/libc.so.6 first (libc6:arm64, pulled in by liblz4-dev:arm64), a
# different glibc build than the loader's (2.36-9+deb12uN vs 2.36-8cross1 on Debian 12),
# and the first pthread_create spins forever.
find_program(EL_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(EL_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      "${EL_QEMU_AARCH64};-L;${EL_AARCH64_SYSROOT};-E;LD_LIBRARY_PATH=${EL_AARCH64_SYSROOT}/lib")
else()
  message(WARNING
    "toolchains/aarch64-linux-gnu.cmake: qemu-aarch64 not found: the build works, but ctest "
    "cannot run the tests on this machine. ${_el_install_hint}")
endif()
