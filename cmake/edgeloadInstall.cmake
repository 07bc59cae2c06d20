# edgeloadInstall.cmake - `cmake --install` layout (included by CMakeLists.txt when
# EL_INSTALL is on):
#   bin/edgeload                         the CLI (statically linked to the library)
#   lib/libedgeload.so.0 (+ .so, .a)     the library, shared and static
#   lib/edgeload/libedgeload_cuda.so     CUDA builds: the CUDA module (platform/gpu_module.h),
#                                        found from the library and from bin/
#   include/edgeload.h, edgeload_session.h
#   lib/cmake/edgeload/                  edgeloadConfig.cmake, version file, targets
#   lib/pkgconfig/edgeload.pc
#   share/edgeload/boards/*.json         board profiles (cli/board.c finds them from bin/)
#   share/edgeload/systemd/edgeload-serve.service   a unit to copy into /etc/systemd/system
#   share/doc/edgeload/                  README.md and docs/*.md
# Components: cli (binary, boards, unit, docs), lib (libedgeload.so.0, the CUDA module),
# dev (the rest).
include(CMakePackageConfigHelpers)

set(el_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/edgeload)

install(TARGETS edgeload_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
set(el_lib_targets edgeload)
if(el_shared)
  list(APPEND el_lib_targets edgeload_shared)
endif()
install(TARGETS ${el_lib_targets} EXPORT edgeloadTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
if(EL_HAVE_CUDA) # not exported: nothing links it, the core opens it
  install(TARGETS edgeload_cuda LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/edgeload COMPONENT lib)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/include/edgeload.h ${PROJECT_SOURCE_DIR}/include/edgeload_session.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(EXPORT edgeloadTargets NAMESPACE edgeload:: DESTINATION ${el_cmakedir} COMPONENT dev)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/edgeloadConfig.cmake.in
  ${PROJECT_BINARY_DIR}/edgeloadConfig.cmake INSTALL_DESTINATION ${el_cmakedir})
# 0.x: a minor version may break the API, so only the same minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/edgeloadConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/edgeloadConfig.cmake
        ${PROJECT_BINARY_DIR}/edgeloadConfigVersion.cmake
        DESTINATION ${el_cmakedir} COMPONENT dev)

# pkg-config: prefix relative to the .pc file, so a staged or dpkg -x'd tree works as is.
file(RELATIVE_PATH EL_PC_PREFIX_FROM_PCDIR
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
set(EL_PC_LIBS_PRIVATE "")
if(EL_HAVE_CUDA)
  set(EL_PC_LIBS_PRIVATE "-ldl") # the CUDA module is opened, not linked
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/edgeload.pc.in ${PROJECT_BINARY_DIR}/edgeload.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/edgeload.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# Board profiles, the systemd unit (its paths pointed at this prefix), docs.
install(FILES ${el_board_files} DESTINATION ${CMAKE_INSTALL_DATADIR}/edgeload/boards
        COMPONENT cli)
# The unit's /usr/local/ paths become the prefix installed to, decided at install time
# (cmake --install --prefix, CPack's /usr).
install(CODE "
  file(READ \"${PROJECT_SOURCE_DIR}/boards/edgeload-serve.service\" unit)
  string(REPLACE \"/usr/local/\" \"\${CMAKE_INSTALL_PREFIX}/\" unit \"\${unit}\")
  file(WRITE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/edgeload/systemd/edgeload-serve.service\" \"\${unit}\")
  message(STATUS \"Installing: \$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/edgeload/systemd/edgeload-serve.service\")
" COMPONENT cli)
file(GLOB el_docs ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${el_docs}
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT cli)

# ---- Debian packages (cpack -G DEB): edgeload (CLI, boards, unit, docs), libedgeload0
# (the shared library), libedgeload-dev (headers, static library, CMake and pkg-config
# files). The architecture follows the build: amd64, or arm64 from the aarch64 toolchain.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME edgeload)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "edgeload maintainers <edgeload@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "model loader and inference runtime for edge devices")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL cli lib dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE arm64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
endif()
# Written out rather than dpkg-shlibdeps, which cannot read a cross build's binaries.
set(el_deb_runtime "libc6 (>= 2.34), liblz4-1 (>= 0.0~r130), libcjson1 (>= 1.7.10)")
set(CPACK_DEBIAN_CLI_PACKAGE_NAME edgeload)
set(CPACK_DEBIAN_CLI_PACKAGE_DEPENDS "${el_deb_runtime}")
if(EL_HAVE_CUDA) # the CLI's CUDA module is in libedgeload0
  string(APPEND CPACK_DEBIAN_CLI_PACKAGE_DEPENDS
         ", libedgeload${PROJECT_VERSION_MAJOR} (= ${PROJECT_VERSION})")
endif()
set(CPACK_DEBIAN_CLI_DESCRIPTION "edgeload command-line tool, board profiles and service unit
 Loads transformer models into one fixed arena reserved at startup and runs them in
 place: inspect, plan, load, generate, embed, classify, pack, flash, serve.")
set(CPACK_DEBIAN_LIB_PACKAGE_NAME libedgeload${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_LIB_PACKAGE_DEPENDS "${el_deb_runtime}")
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIB_DESCRIPTION "edgeload runtime library
 The shared library behind the edgeload C API (include/edgeload.h): fixed-arena model
 loading and CPU/CUDA inference for edge devices.")
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON) # shlibs file and the ldconfig trigger
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libedgeload-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libedgeload${PROJECT_VERSION_MAJOR} (= ${PROJECT_VERSION}), liblz4-dev, libcjson-dev")
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_DESCRIPTION "edgeload development files
 Headers, static library, CMake package (find_package(edgeload)) and pkg-config file
 (edgeload.pc) for the edgeload C API.")
include(CPack)
