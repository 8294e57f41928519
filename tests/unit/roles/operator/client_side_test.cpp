#include <doctest/doctest.h>

#include "roles/operator/client_side.hpp"

using namespace swarm::roles::operator_cli;

TEST_CASE("client side: emerge argv, never through a shell")
{
  CHECK(pretend_argv("/usr/bin/emerge") == std::vector<std::string>{"/usr/bin/emerge", "--pretend", "--verbose",
                                                                    "--update", "--deep", "--newuse", "@world"});
  CHECK(client_update_argv("emerge") ==
        std::vector<std::string>{"emerge", "--getbinpkg", "--update", "--deep", "--newuse", "@world"});
}

TEST_CASE("client side: binrepos.conf text")
{
  const auto text = binrepos_conf_text("http://orch.lan:7070/production", "http://gw.lan:7000");
  REQUIRE(text);
  CHECK(text->find("\n[swarm]\npriority = 10\nsync-uri = http://orch.lan:7070/production\n") != std::string::npos);
  CHECK(text->find("verify-signature = false\n") != std::string::npos);
  CHECK(text->starts_with("# Written by `swarm client setup` from http://gw.lan:7000"));
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
