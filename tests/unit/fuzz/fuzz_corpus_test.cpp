// Every seed of the fuzz corpora and every input that once crashed a fuzz target
// (tests/fuzz/corpus/<target>/, tests/fuzz/regressions/<target>/) runs through its target in
// each unit test run: the normal build checks the targets' invariants on them, the sanitizer
// builds their memory safety, without clang or libFuzzer.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "../fuzz/targets.hpp"

namespace {

const std::filesystem::path k_fuzz_dir = std::filesystem::path(SWARM_SOURCE_DIR) / "tests" / "fuzz";

std::string read_fuzz_input(const std::filesystem::path& path)
{
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::filesystem::path> fuzz_inputs(const std::filesystem::path& dir)
{
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.is_regular_file()) {
        files.push_back(entry.path());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

void replay_fuzz_dir(const std::filesystem::path& base, bool need_inputs)
{
  for (size_t i = 0; i < swarm::fuzz::k_target_count; ++i) {
    const auto& target = swarm::fuzz::k_targets[i];
    const auto files = fuzz_inputs(base / std::string(target.name));
    if (need_inputs) {
      INFO("target ", target.name);
      CHECK_FALSE(files.empty());
    }
    for (const auto& file : files) {
      const auto input = read_fuzz_input(file);
      INFO(file.string());
      CHECK_NOTHROW(target.function(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
    }
  }
}

} // namespace

TEST_CASE("fuzz: every directory of the corpora and regressions names a target")
{
  std::set<std::string> names;
  for (size_t i = 0; i < swarm::fuzz::k_target_count; ++i) {
    names.emplace(swarm::fuzz::k_targets[i].name);
  }
  for (const auto* kind : {"corpus", "regressions"}) {
    const auto dir = k_fuzz_dir / kind;
    if (!std::filesystem::is_directory(dir)) {
      continue;
    }
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      INFO(entry.path().string());
      CHECK(names.contains(entry.path().filename().string()));
    }
  }
}

TEST_CASE("fuzz: the seed corpus of every target runs through it")
{
  replay_fuzz_dir(k_fuzz_dir / "corpus", true);
}

TEST_CASE("fuzz: every input that crashed a target runs through it")
{
  replay_fuzz_dir(k_fuzz_dir / "regressions", false);
}
