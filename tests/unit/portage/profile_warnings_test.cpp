#include <doctest/doctest.h>

#include "portage/profile_warnings.hpp"

using namespace swarm::portage;

TEST_CASE("profile warnings: -march=native in the global flags and in an env/ file")
{
  BuildProfile profile;
  profile.settings["CFLAGS"] = "-O2 -march=native -pipe";
  profile.settings["CXXFLAGS"] = "${CFLAGS} -mtune=native -march=native";
  profile.settings["LDFLAGS"] = "-Wl,-O1 -flto -march=native"; // LTO generates code at link time
  profile.settings["RUSTFLAGS"] = "-C opt-level=3 -C target-cpu=native";
  profile.settings["MAKEOPTS"] = "-march=native"; // not a flag variable
  profile.files["env/fast.conf"] = "# tuned\nexport FCFLAGS='-O3 -mcpu=native'\nFOO=-march=native\n";
  const auto warnings = native_flag_warnings(profile);
  REQUIRE(warnings.size() == 5);
  CHECK(warnings[0].starts_with("CFLAGS has -march=native: a drone would build for its own CPU"));
  CHECK(warnings[1].starts_with("CXXFLAGS has -mtune=native -march=native:"));
  CHECK(warnings[2].starts_with("LDFLAGS has -march=native:"));
  CHECK(warnings[3].starts_with("RUSTFLAGS has -C target-cpu=native:"));
  CHECK(warnings[3].find("for rustc") != std::string::npos);
  CHECK(warnings[4].starts_with("FCFLAGS in env/fast.conf has -mcpu=native"));
  CHECK(warnings[0].find("-march=x86-64-v3") != std::string::npos); // says what to use instead
}

TEST_CASE("profile warnings: a named CPU is fine")
{
  BuildProfile profile;
  profile.settings["CFLAGS"] = "-O2 -march=znver3 -pipe";
  profile.settings["CXXFLAGS"] = "-O2 -march=x86-64-v3";
  profile.settings["RUSTFLAGS"] = "-C target-cpu=znver3 -Ctarget-feature=+avx2";
  profile.files["package.use/x"] = "cat/pkg -march=native\n"; // not an env/ file
  CHECK(native_flag_warnings(profile).empty());
}
