#!/bin/sh
# Installs what swarm needs on Debian 12 (as root, only what is missing), then configures and
# builds into build/. Extra CMake arguments: SWARM_CMAKE_ARGS="-DSWARM_SANITIZE=address".
# BUILD_DIR overrides the build directory.
set -eu
cd "$(dirname "$0")/.."

PACKAGES="g++ cmake ninja-build pkg-config git python3 ca-certificates \
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libfmt-dev libsqlitecpp-dev libsqlite3-dev \
  libcurl4-openssl-dev libxxhash-dev doctest-dev libzstd-dev liblzma-dev libbz2-dev zlib1g-dev \
  libssl-dev libncurses-dev tmux clang-format-14 libgpgme-dev gnupg prometheus chromium \
  clang-16 libc++-16-dev libc++abi-16-dev libclang-rt-16-dev"

missing=""
for package in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "swarm: error: missing packages:$missing (run this as root, or apt-get install them)" >&2
    exit 2
  fi
  echo "setup: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo ${SWARM_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR"
