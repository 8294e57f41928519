# Every dependency comes from the distribution (Debian 12 package names in tools/setup.sh).
# fmt: the shared library normally (compiling fmt's implementation into every translation unit,
# as header-only mode does, cost a fifth of the build); header-only for SWARM_STATIC, because
# Debian's fmt 9 ships no static archive.
if(SWARM_STATIC)
  set(CMAKE_FIND_LIBRARY_SUFFIXES .a ${CMAKE_FIND_LIBRARY_SUFFIXES})
endif()
find_package(PkgConfig REQUIRED)
find_package(SQLiteCpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(fmt REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(ZLIB REQUIRED)
find_package(BZip2 REQUIRED)
find_package(LibLZMA REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# Signing the binhost's GPKGs (OpenPGP through GnuPG): GPGME drives the gpg binary.
pkg_check_modules(GPGME REQUIRED IMPORTED_TARGET gpgme)
# The full-screen `swarm monitor`: wide-character ncurses (UTF-8 text) and its tinfo, found as
# libraries (NCURSES_LINK_LIBRARIES: full paths, the static archives first for SWARM_STATIC).
# Its pkg-config cflags (-D_XOPEN_SOURCE=600) are left out on purpose: only monitor_tui.cpp
# includes curses.h and needs none of the wide-character API they unlock.
pkg_check_modules(NCURSES REQUIRED ncursesw)

add_library(swarm_deps INTERFACE)
target_link_libraries(swarm_deps INTERFACE
  SQLiteCpp CLI11::CLI11 nlohmann_json::nlohmann_json
  $<IF:$<BOOL:${SWARM_STATIC}>,fmt::fmt-header-only,fmt::fmt>
  PkgConfig::HTTPLIB PkgConfig::CURL PkgConfig::XXHASH PkgConfig::ZSTD PkgConfig::GPGME ${NCURSES_LINK_LIBRARIES}
  OpenSSL::Crypto OpenSSL::SSL ZLIB::ZLIB BZip2::BZip2 LibLZMA::LibLZMA Threads::Threads)

# SWARM_STATIC: link libstdc++/libgcc statically and prefer the static archives Debian ships
# (sqlite3, SQLiteCpp, xxhash, zstd, lzma, bz2, z, crypto, ssl, ncursesw, tinfo). Debian 12
# ships no static cpp-httplib and several of libcurl's dependencies have none, so those stay
# shared there; on a distribution that ships them (Gentoo with USE=static-libs) the result is fully static.
function(swarm_link_static target)
  if(SWARM_STATIC)
    target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
endfunction()
