#pragma once
// What the unit tests share: the test data copied from ../shared (tests/data/README.md says
// where each file comes from) and Portage's own test vectors.

#include <filesystem>
#include <string>
#include <string_view>

#include <sys/types.h>

#include <nlohmann/json_fwd.hpp>

namespace swarm::test {

// tests/data/portage/RELATIVE, as a string (the tests append to it).
std::string portage_data(std::string_view relative = "");
// tests/data/portage/gpkg-samples/RELATIVE: Portage's own GPKGs and broken ones.
std::string gpkg_sample(std::string_view relative);
// One of Portage's test vectors (tests/data/portage/vectors/NAME); fails the test when absent.
nlohmann::json load_vectors(const std::string& name);

// PID is gone, or a zombie nobody reaped yet (PID 1 of a container may not reap).
bool process_gone(pid_t pid);

// A scratch ebuild repository (metadata/md5-cache, profiles/) removed when it goes out of scope.
struct TempRepo {
  std::filesystem::path root;
  TempRepo();
  ~TempRepo();
  TempRepo(const TempRepo&) = delete;
  TempRepo& operator=(const TempRepo&) = delete;
  // Writes ROOT/RELATIVE, creating its directories.
  void write(const std::string& relative, const std::string& text) const;
  // Writes the md5-cache entry of CAT/PF.
  void cache(const std::string& cpv, const std::string& text) const { write("metadata/md5-cache/" + cpv, text); }
};

} // namespace swarm::test
