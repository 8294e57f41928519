#pragma once
// The bodies of swarm's fuzz targets, one plain function per parser. libFuzzer calls them through
// fuzz/entry.cpp (fuzz/CMakeLists.txt, tools/fuzz.sh); the unit tests replay the seed corpora and
// every past crash (tests/fuzz/corpus, tests/fuzz/regressions) through the same functions.
// A target returns 0; a broken invariant throws swarm::fuzz::InvariantBroken (libFuzzer reports
// the uncaught exception as a crash), memory errors are left to the sanitizers.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

namespace swarm::fuzz {

struct InvariantBroken : std::logic_error {
  using std::logic_error::logic_error;
};

using TargetFunction = int (*)(const uint8_t* data, size_t size);

struct Target {
  std::string_view name; // the directory name under tests/fuzz/corpus and tests/fuzz/regressions
  TargetFunction function;
};

int fuzz_tar(const uint8_t* data, size_t size);
int fuzz_gpkg(const uint8_t* data, size_t size);
int fuzz_xpak(const uint8_t* data, size_t size);
int fuzz_compression(const uint8_t* data, size_t size);
int fuzz_packages_index(const uint8_t* data, size_t size);
int fuzz_emerge_output(const uint8_t* data, size_t size);
int fuzz_md5_cache(const uint8_t* data, size_t size);
int fuzz_atom(const uint8_t* data, size_t size);
int fuzz_version(const uint8_t* data, size_t size);
int fuzz_dep_string(const uint8_t* data, size_t size);
int fuzz_protocol(const uint8_t* data, size_t size);

// Every target, in a fixed order.
extern const Target k_targets[];
extern const size_t k_target_count;

} // namespace swarm::fuzz
