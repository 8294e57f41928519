#include <doctest/doctest.h>

#include "core/fs.hpp"
#include "roles/operator/client_update.hpp"
#include "support.hpp"

using namespace swarm;
using namespace swarm::roles::operator_cli;

namespace {

// Portage's part: emerge --pretend prints a recorded output, the install "merges" into a VDB,
// portageq names EROOT.
class FakePortage final : public subprocess::ProcessRunner {
public:
  std::filesystem::path eroot;
  std::string pretend_output;
  int pretend_exit = 0;
  int install_exit = 0;
  std::vector<std::string> install_merges; // CAT/PF the install adds to the VDB
  std::vector<std::vector<std::string>> calls;

  Result<subprocess::Outcome> run(const subprocess::Spec& spec) override
  {
    calls.push_back(spec.argv);
    subprocess::Outcome outcome;
    outcome.exit_code = 0;
    if (spec.argv.at(0) == "portageq") {
      outcome.output = "EROOT='" + eroot.string() + "/'\n";
    } else if (std::find(spec.argv.begin(), spec.argv.end(), "--pretend") != spec.argv.end()) {
      CHECK(spec.env.at("NOCOLOR") == "true");
      outcome.output = pretend_output;
      outcome.exit_code = pretend_exit;
    } else {
      for (const auto& cpv : install_merges) {
        REQUIRE(fs::make_dirs(eroot / "var/db/pkg" / cpv).has_value());
      }
      outcome.exit_code = install_exit;
    }
    return outcome;
  }
};

std::string recorded_output(const std::string& name)
{
  auto text = fs::read_file(swarm::test::portage_data("realportage-emerge/" + name), 1u << 20);
  REQUIRE(text.has_value());
  return *text;
}

void write_world(const std::filesystem::path& root, const std::string& text)
{
  REQUIRE(fs::make_dirs(root / "var/lib/portage").has_value());
  REQUIRE(fs::write_file_atomic(root / "var/lib/portage/world", text).has_value());
}

ClientUpdateSettings fake_settings()
{
  ClientUpdateSettings out;
  out.emerge = "emerge";
  out.portageq = "portageq";
  return out;
}

} // namespace

TEST_CASE("client update: everything from binaries, then the VDB holds the world")
{
  fs::TempDir root{"client"};
  write_world(root.path(), "cat/app-c\n");
  FakePortage portage;
  portage.eroot = root.path();
  portage.pretend_output = recorded_output("world-all-binaries.txt");
  portage.install_merges = {"cat/rt-r-1", "cat/lib-a-1", "cat/lib-b-1", "cat/app-c-1"};
  auto result = update_from_binaries(fake_settings(), portage);
  REQUIRE_MESSAGE(result.has_value(), result.error().message);
  CHECK(result->stage == ClientUpdateResult::Stage::updated);
  CHECK(result->installed);
  CHECK(result->world == std::vector<std::string>{"cat/app-c"});
  CHECK(result->missing.empty());
  REQUIRE(portage.calls.size() == 3);
  CHECK(portage.calls[1] ==
        std::vector<std::string>{"emerge", "--update", "--deep", "--newuse", "--getbinpkgonly", "@world"});
  CHECK(stage_name(result->stage) == "updated");
}

TEST_CASE("client update: a dropped world atom is refused before anything is installed")
{
  fs::TempDir root{"client"};
  FakePortage portage;
  portage.eroot = root.path();
  portage.pretend_output = recorded_output("world-atom-without-binary.txt");
  auto result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::refused);
  CHECK_FALSE(result->installed);
  CHECK(result->report.unsatisfied == std::vector<std::string>{"cat/leaf-d"});
  CHECK(portage.calls.size() == 1); // only the --pretend run

  portage.calls.clear();
  portage.pretend_output = recorded_output("world-getbinpkg-builds-from-source.txt");
  result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::refused);
  CHECK(result->report.from_source == std::vector<std::string>{"cat/leaf-d-1"});
  CHECK(portage.calls.size() == 1);
}

TEST_CASE("client update: a failing --pretend, a failing install, a world atom missing afterwards")
{
  fs::TempDir root{"client"};
  write_world(root.path(), "cat/app-c\ncat/leaf-d\n");
  FakePortage portage;
  portage.eroot = root.path();
  portage.pretend_output = recorded_output("explicit-atom-without-binary.txt");
  portage.pretend_exit = 1;
  auto result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::pretend_failed);
  CHECK(result->emerge_exit_code == 1);
  CHECK(portage.calls.size() == 1);

  portage.pretend_exit = 0;
  portage.pretend_output = recorded_output("world-all-binaries.txt");
  portage.install_exit = 1;
  result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::install_failed);
  CHECK(result->installed);

  // Portage said it would install everything and exited 0, yet leaf-d is not installed.
  portage.install_exit = 0;
  portage.install_merges = {"cat/app-c-1"};
  result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::incomplete);
  CHECK(result->missing == std::vector<std::string>{"cat/leaf-d"});
}

TEST_CASE("client update: nothing to do runs no install")
{
  fs::TempDir root{"client"};
  write_world(root.path(), "cat/app-c\n");
  REQUIRE(fs::make_dirs(root.path() / "var/db/pkg/cat/app-c-1").has_value());
  FakePortage portage;
  portage.eroot = root.path();
  portage.pretend_output = recorded_output("world-nothing-to-do.txt");
  auto result = update_from_binaries(fake_settings(), portage);
  REQUIRE(result.has_value());
  CHECK(result->stage == ClientUpdateResult::Stage::updated);
  CHECK_FALSE(result->installed);
  CHECK(portage.calls.size() == 2); // --pretend and portageq
}
