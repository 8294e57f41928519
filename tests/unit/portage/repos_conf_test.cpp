#include <doctest/doctest.h>

#include "portage/repos_conf.hpp"

using namespace swarm;
using namespace swarm::portage;

TEST_CASE("repos.conf: what portageq repos_config prints, and the file written back")
{
  // Real output of `portageq repos_config EROOT` (realportage prefix), shortened.
  const auto conf = parse_repos_conf("\n[DEFAULT]\nauto-sync = yes\nmain-repo = test_repo\n\n"
                                     "[test_repo]\nauto-sync = yes\nlocation = /tmp/exp1/repo\nmasters = \n"
                                     "priority = -1000\n\n"
                                     "[overlay]\n# a comment\nlocation: /var/db/repos/overlay\nmasters = test_repo\n");
  REQUIRE(conf.has_value());
  CHECK(conf->main_repo == "test_repo");
  REQUIRE(conf->repositories.size() == 2);
  CHECK(conf->repositories[0].name == "overlay");
  CHECK(conf->location("test_repo") == "/tmp/exp1/repo");
  CHECK(conf->location("overlay") == "/var/db/repos/overlay");
  CHECK(conf->location("gentoo").empty());
  CHECK(conf->repositories[1].attributes.at("masters") == "");

  ReposConf written;
  written.main_repo = "gentoo";
  written.repositories = {{"guru", {{"location", "/var/db/repos/guru"}, {"masters", "gentoo"}}},
                          {"gentoo", {{"location", "/var/db/repos/gentoo"}}}};
  CHECK(write_repos_conf(written) == "[DEFAULT]\nmain-repo = gentoo\n\n"
                                     "[gentoo]\nlocation = /var/db/repos/gentoo\n\n"
                                     "[guru]\nlocation = /var/db/repos/guru\nmasters = gentoo\n\n");
  CHECK(parse_repos_conf(write_repos_conf(written)).value().location("guru") == "/var/db/repos/guru");

  CHECK_FALSE(parse_repos_conf("location = /x\n").has_value());
  CHECK_FALSE(parse_repos_conf("[gentoo\nlocation = /x\n").has_value());
  CHECK_FALSE(parse_repos_conf("[gentoo]\njust words\n").has_value());
}
