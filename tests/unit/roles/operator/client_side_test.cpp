#include <doctest/doctest.h>

#include "roles/operator/client_side.hpp"

using namespace swarm::roles::operator_cli;

TEST_CASE("client side: emerge argv, never through a shell")
{
  CHECK(pretend_argv("/usr/bin/emerge") == std::vector<std::string>{"/usr/bin/emerge", "--pretend", "--verbose",
                                                                    "--update", "--deep", "--newuse", "@world"});
  CHECK(client_pretend_argv("emerge") == std::vector<std::string>{"emerge", "--pretend", "--verbose", "--update",
                                                                  "--deep", "--newuse", "--getbinpkgonly", "@world"});
  CHECK(client_update_argv("emerge") ==
        std::vector<std::string>{"emerge", "--update", "--deep", "--newuse", "--getbinpkgonly", "@world"});
}

TEST_CASE("client side: binrepos.conf text")
{
  const auto text = binrepos_conf_text("http://orch.lan:7070/production", "http://gw.lan:7000");
  REQUIRE(text);
  CHECK(text->find("\n[swarm]\npriority = 10\nsync-uri = http://orch.lan:7070/production\n") != std::string::npos);
  CHECK(text->find("verify-signature = false\n") != std::string::npos);
  CHECK(text->starts_with("# Written by `swarm client setup` from http://gw.lan:7000"));
  CHECK(binrepos_conf_profile(*text) == "default");
  CHECK_FALSE(binrepos_conf_text("ftp://x/", "g"));
  CHECK_FALSE(binrepos_conf_text("http://x/\n[evil]", "g"));
}

TEST_CASE("client side: package arguments")
{
  CHECK(cpv_argument("=dev-libs/foo-1.0-r1").value() == "dev-libs/foo-1.0-r1");
  CHECK(cpv_argument("dev-libs/foo-1.0").value() == "dev-libs/foo-1.0");
  CHECK_FALSE(cpv_argument("dev-libs/foo"));
  CHECK_FALSE(cpv_argument("foo-1.0"));
  CHECK_FALSE(cpv_argument("=dev-libs/foo-1.0; rm -rf /"));
}

TEST_CASE("client side: a profile's binrepos.conf section and URL")
{
  const auto text = binrepos_conf_text("http://orch.lan:7070/p/desktop/production", "http://gw.lan:7000", "desktop");
  REQUIRE(text);
  CHECK(text->find("\n[swarm-desktop]\npriority = 10\nsync-uri = http://orch.lan:7070/p/desktop/production\n") !=
        std::string::npos);
  CHECK(binrepos_conf_profile(*text) == "desktop");
  CHECK_FALSE(binrepos_conf_profile("[binhost]\nsync-uri = http://x/\n"));
  CHECK_FALSE(binrepos_conf_profile("[swarm-../x]\n"));
  CHECK_FALSE(binrepos_conf_text("http://x/", "g", "../etc"));
  CHECK(profile_binhost_url("http://orch.lan:7070/production", "default") == "http://orch.lan:7070/production");
  CHECK(profile_binhost_url("http://orch.lan:7070/production", "server") == "http://orch.lan:7070/p/server/production");
}

TEST_CASE("client side: a signed binhost's binrepos.conf verifies, and its keys are ultimately trusted")
{
  const auto text = binrepos_conf_text("http://orch.lan:7070/production", "http://gw.lan:7000", "default", true);
  REQUIRE(text);
  CHECK(text->find("verify-signature = true\n") != std::string::npos);
  CHECK(text->find("verify-signature = false") == std::string::npos);

  const auto commands = trust_key_commands("/etc/portage/gnupg", "/etc/portage/gnupg/swarm-binhost.asc");
  REQUIRE(commands.size() == 4);
  CHECK(commands[0] == std::vector<std::string>{"gpg", "--homedir", "/etc/portage/gnupg", "--batch", "--no-tty",
                                                "--import", "/etc/portage/gnupg/swarm-binhost.asc"});
  CHECK(commands[3].back() == "--check-trustdb");
  // gpg --with-colons: the primary keys' fingerprints, not the subkeys'.
  const std::string colons = "pub:-:255:22:5D90EA06352177F6:1700000000:::-:::scSC::::::23::0:\n"
                             "fpr:::::::::06B3A311BD775C280D22A9305D90EA06352177F6:\n"
                             "uid:-::::1700000000::AB::Binhost <b@example.invalid>::::::::::0:\n"
                             "sub:-:255:18:1111111111111111:1700000000::::::e::::::23:\n"
                             "fpr:::::::::AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:\n"
                             "pub:-:255:22:0000000000000001:1700000000:::-:::scSC::::::23::0:\n"
                             "fpr:::::::::BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB:\n";
  CHECK(ultimate_ownertrust(colons) ==
        "06B3A311BD775C280D22A9305D90EA06352177F6:6:\nBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB:6:\n");
  CHECK(ultimate_ownertrust("").empty());
}
