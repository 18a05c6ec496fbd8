# Every dependency comes from Debian's packages. The installer links the static archives
# (.a) so it runs on any Linux of its arch; the builder and tests link the shared ones.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
pkg_check_modules(LIBARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)

# spdlog and fmt ship only shared libraries on Debian: everyone uses them header-only
# (see KUBEXM_SETTINGS), which keeps the static installer and the builder on one code path.
find_path(SPDLOG_INCLUDE_DIR spdlog/spdlog.h REQUIRED)
find_path(FMT_INCLUDE_DIR fmt/format.h REQUIRED)

# Dynamic flavour: builder, tests, benchmarks.
add_library(kubexm_deps_shared INTERFACE)
target_link_libraries(kubexm_deps_shared INTERFACE
  PkgConfig::LIBARCHIVE PkgConfig::YAMLCPP OpenSSL::SSL OpenSSL::Crypto CLI11::CLI11
  nlohmann_json::nlohmann_json Threads::Threads)

# Static flavour: only what the installer needs. libarchive is used for tar + zstd only,
# so of its static dependencies just libzstd and libacl are pulled in; enabling every
# format would drag in libxml2 and ICU.
function(kubexm_find_static var name)
  find_library(${var} NAMES lib${name}.a REQUIRED)
endfunction()
kubexm_find_static(STATIC_ARCHIVE archive)
kubexm_find_static(STATIC_ZSTD zstd)
kubexm_find_static(STATIC_ACL acl)
kubexm_find_static(STATIC_SSL ssl)
kubexm_find_static(STATIC_CRYPTO crypto)
kubexm_find_static(STATIC_YAMLCPP yaml-cpp)

add_library(kubexm_deps_static INTERFACE)
target_link_libraries(kubexm_deps_static INTERFACE
  ${STATIC_ARCHIVE} ${STATIC_ZSTD} ${STATIC_ACL} ${STATIC_YAMLCPP} ${STATIC_SSL} ${STATIC_CRYPTO}
  CLI11::CLI11 nlohmann_json::nlohmann_json)
target_link_options(kubexm_deps_static INTERFACE -static -pthread)
