#include <doctest/doctest.h>

#include <sys/stat.h>

#include "core/fs.hpp"
#include "core/secrets.hpp"

using namespace swarm;

namespace {

unsigned secret_file_mode(const std::filesystem::path& path)
{
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 07777;
}

config::Config load_token_config(std::map<std::string, std::string> flags, std::map<std::string, std::string> env,
                                 const std::optional<std::string>& file = std::nullopt)
{
  config::Sources sources;
  sources.flags = std::move(flags);
  sources.env_override = &env;
  sources.file = file;
  auto config = config::Config::load(sources);
  REQUIRE(config);
  return *config;
}

} // namespace

TEST_CASE("secrets: a token file's first line, trimmed; empty or missing files are errors")
{
  const fs::TempDir dir("swarm-secrets");
  REQUIRE(fs::write_file_atomic(dir.path() / "t", "  swd_abc  \nsecond line\n", 0600));
  CHECK(secrets::read_token_file(dir.path() / "t").value() == "swd_abc");
  REQUIRE(fs::write_file_atomic(dir.path() / "empty", "\n", 0600));
  CHECK(secrets::read_token_file(dir.path() / "empty").error().message.find("empty") != std::string::npos);
  CHECK_FALSE(secrets::read_token_file(dir.path() / "missing"));
  REQUIRE(fs::write_file_atomic(dir.path() / "big", std::string(5000, 'x'), 0600));
  CHECK_FALSE(secrets::read_token_file(dir.path() / "big"));
}

TEST_CASE("secrets: choose_token takes the highest source; a file beats a token at the same level")
{
  const fs::TempDir dir("swarm-secrets");
  const auto file = (dir.path() / "token").string();
  REQUIRE(fs::write_file_atomic(file, "from-file\n", 0600));

  SUBCASE("nothing anywhere: empty")
  {
    auto chosen = secrets::choose_token(load_token_config({}, {}), "drone.token", "drone.token_file", std::nullopt);
    REQUIRE(chosen);
    CHECK(chosen->token.empty());
  }
  SUBCASE("--token: from the flag, and said so (the warning)")
  {
    auto chosen = secrets::choose_token(load_token_config({{"drone.token", "flag-tok"}}, {}), "drone.token",
                                        "drone.token_file", std::string("env-tok"));
    REQUIRE(chosen);
    CHECK(chosen->token == "flag-tok");
    CHECK(chosen->from_flag);
    CHECK(secrets::token_flag_warning().find("flag-tok") == std::string::npos);
    CHECK(secrets::token_flag_warning().find("--token-file") != std::string::npos);
  }
  SUBCASE("--token-file beats SWARM_TOKEN and the config's token")
  {
    auto chosen =
      secrets::choose_token(load_token_config({{"drone.token_file", file}}, {{"SWARM_DRONE_TOKEN", "env-key"}}),
                            "drone.token", "drone.token_file", std::string("env-tok"));
    REQUIRE(chosen);
    CHECK(chosen->token == "from-file");
    CHECK_FALSE(chosen->from_flag);
    CHECK(chosen->token_file == file);
  }
  SUBCASE("SWARM_TOKEN when nothing more specific is set")
  {
    auto chosen =
      secrets::choose_token(load_token_config({}, {}), "client.token", "client.token_file", std::string(" env-tok\n"));
    REQUIRE(chosen);
    CHECK(chosen->token == "env-tok");
    CHECK(chosen->source == "SWARM_TOKEN");
  }
  SUBCASE("the key's own variable beats SWARM_TOKEN")
  {
    auto chosen = secrets::choose_token(load_token_config({}, {{"SWARM_CLIENT_TOKEN", "key-tok"}}), "client.token",
                                        "client.token_file", std::string("env-tok"));
    REQUIRE(chosen);
    CHECK(chosen->token == "key-tok");
  }
  SUBCASE("SWARM_TOKEN beats the config file")
  {
    REQUIRE(fs::write_file_atomic(dir.path() / "swarm.conf", "[drone]\ntoken = conf-tok\n", 0600));
    auto chosen = secrets::choose_token(load_token_config({}, {}, (dir.path() / "swarm.conf").string()), "drone.token",
                                        "drone.token_file", std::string("env-tok"));
    REQUIRE(chosen);
    CHECK(chosen->token == "env-tok");
  }
  SUBCASE("both on the command line: an error")
  {
    auto chosen = secrets::choose_token(load_token_config({{"drone.token", "t"}, {"drone.token_file", file}}, {}),
                                        "drone.token", "drone.token_file", std::nullopt);
    REQUIRE_FALSE(chosen);
    CHECK(chosen.error().kind == ErrorKind::invalid);
  }
  SUBCASE("an unreadable token file is an error naming it")
  {
    auto chosen = secrets::choose_token(load_token_config({{"drone.token_file", file + ".missing"}}, {}), "drone.token",
                                        "drone.token_file", std::nullopt);
    REQUIRE_FALSE(chosen);
    CHECK(chosen.error().message.find("token.missing") != std::string::npos);
  }
}

TEST_CASE("secrets: tighten removes the extra permission bits and says so")
{
  const fs::TempDir dir("swarm-secrets");
  const auto file = dir.path() / "state.db";
  REQUIRE(fs::write_file_atomic(file, "x", 0644));
  auto warning = secrets::tighten(file, 0600);
  REQUIRE(warning);
  CHECK(warning->find("0644") != std::string::npos);
  CHECK(secret_file_mode(file) == 0600);
  CHECK_FALSE(secrets::tighten(file, 0600)); // already private
  REQUIRE(fs::write_file_atomic(file, "x", 0400));
  CHECK_FALSE(secrets::tighten(file, 0600)); // stricter is left alone
  CHECK(secret_file_mode(file) == 0400);
  CHECK_FALSE(secrets::tighten(dir.path() / "missing", 0600));
  const auto sub = dir.path() / "data";
  std::filesystem::create_directory(sub);
  ::chmod(sub.c_str(), 0755);
  CHECK(secrets::tighten(sub, 0700));
  CHECK(secret_file_mode(sub) == 0700);
}

TEST_CASE("secrets: ScopedUmask restores the previous mask")
{
  const auto before = ::umask(022);
  {
    const secrets::ScopedUmask scoped(077);
    const fs::TempDir dir("swarm-secrets");
    const auto path = dir.path() / "f";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fclose(f);
    CHECK(secret_file_mode(path) == 0600);
  }
  CHECK(::umask(before) == 022);
}
