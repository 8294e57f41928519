#include "support.hpp"

#include <cerrno>
#include <csignal>
#include <fstream>
#include <random>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace swarm::test {

std::string portage_data(std::string_view relative)
{
  return (std::filesystem::path(SWARM_TEST_DATA_DIR) / "portage" / relative).string();
}

std::string gpkg_sample(std::string_view relative)
{
  return (std::filesystem::path(portage_data("gpkg-samples")) / relative).string();
}

nlohmann::json load_vectors(const std::string& name)
{
  std::ifstream in(portage_data("vectors/") + name);
  REQUIRE_MESSAGE(in.good(), "missing test vectors ", name);
  return nlohmann::json::parse(in);
}

bool process_gone(pid_t pid)
{
  if (::kill(pid, 0) != 0) {
    return errno == ESRCH;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] == 'Z';
}

TempRepo::TempRepo()
{
  std::random_device random;
  root = std::filesystem::temp_directory_path() / ("swarm-repo-" + std::to_string(random()));
  std::filesystem::create_directories(root / "metadata" / "md5-cache");
  std::filesystem::create_directories(root / "profiles");
}

TempRepo::~TempRepo()
{
  std::error_code error;
  std::filesystem::remove_all(root, error);
}

void TempRepo::write(const std::string& relative, const std::string& text) const
{
  const auto path = root / relative;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

} // namespace swarm::test
