#include <doctest/doctest.h>

#include "portage/make_conf.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

BuildProfile client_profile()
{
  BuildProfile profile;
  profile.settings = {{"USE", "amd64 ssl video_cards_fbdev"},
                      {"USE_EXPAND", "VIDEO_CARDS PYTHON_TARGETS"},
                      {"VIDEO_CARDS", "fbdev"},
                      {"CFLAGS", "-O2 -march=x86-64-v2"},
                      {"CXXFLAGS", "-O2 -pipe"},
                      {"CHOST", "x86_64-pc-linux-gnu"},
                      {"ACCEPT_KEYWORDS", "amd64"},
                      {"ACCEPT_LICENSE", "*"},
                      {"ARCH", "amd64"},
                      {"FEATURES", "nodoc splitdebug"}};
  profile.make_profile_repo = "gentoo";
  profile.make_profile = "default/linux/amd64/23.0";
  return profile;
}

} // namespace

TEST_CASE("make.conf: statements, quotes across lines, comments, export and source")
{
  const auto statements = parse_make_conf("# a comment with \"quotes\n"
                                          "CFLAGS=\"-O2\n  -pipe\" # trailing\n"
                                          "\n"
                                          "export MAKEOPTS='-j4 # not a comment'\n"
                                          "source /etc/portage/make.conf.local\n"
                                          "FEATURES=\"${FEATURES} \\\"x\\\"\"\n"
                                          "USE=a\\\n"
                                          " b\n"
                                          "LAST=1");
  REQUIRE(statements.has_value());
  REQUIRE(statements->size() == 8);
  CHECK((*statements)[0].name == "");
  CHECK((*statements)[1].name == "CFLAGS");
  CHECK((*statements)[1].text == "CFLAGS=\"-O2\n  -pipe\" # trailing\n");
  CHECK((*statements)[2].text == "\n");
  CHECK((*statements)[3].name == "MAKEOPTS");
  CHECK((*statements)[4].name == "");
  CHECK((*statements)[5].name == "FEATURES");
  CHECK((*statements)[6].name == "USE");
  CHECK((*statements)[7].text == "LAST=1\n");
  // The last line had no newline: it gets one (checked through removal below).
  CHECK(remove_assignments("A=1\nB=\"x\ny\"\nC=3", {"B"}).value() == "A=1\nC=3\n");
  CHECK_FALSE(parse_make_conf("CFLAGS=\"-O2\n").has_value());
  CHECK_FALSE(parse_make_conf("CFLAGS='-O2\n").has_value());
}

TEST_CASE("make.conf: values are quoted so that Portage reads them back verbatim")
{
  CHECK(quote_make_conf_value("-O2 -pipe") == "\"-O2 -pipe\"");
  CHECK(quote_make_conf_value("a\"b$c`d\\e") == "\"a\\\"b\\$c\\`d\\\\e\"");
}

TEST_CASE("make.conf: a build profile's settings replace a machine's, which keeps its own local ones")
{
  const std::string machine = "CFLAGS=\"-O3 -march=native\"\n"
                              "CXXFLAGS=\"${CFLAGS}\"\n"
                              "USE=\"-ssl doc\"\n"
                              "VIDEO_CARDS=\"nvidia\"\n"
                              "LDFLAGS=\"-Wl,-O1\"\n"
                              "PORTAGE_BINHOST=\"http://mirror/\"\n"
                              "MAKEOPTS=\"-j8\"\n"
                              "DISTDIR=\"/srv/distfiles\"\n"
                              "FEATURES=\"-sandbox -userpriv nostrip\"\n";
  const auto out = profile_make_conf(machine, client_profile());
  REQUIRE(out.has_value());
  CHECK(*out == "MAKEOPTS=\"-j8\"\n"
                "DISTDIR=\"/srv/distfiles\"\n"
                "FEATURES=\"-sandbox -userpriv nostrip\"\n"
                "\n"
                "# --- swarm: the build profile's settings (everything above is this machine's own) ---\n"
                "ACCEPT_KEYWORDS=\"-* amd64\"\n"
                "ACCEPT_LICENSE=\"-* *\"\n"
                "CBUILD=\"\"\n"
                "CFLAGS=\"-O2 -march=x86-64-v2\"\n"
                "CHOST=\"x86_64-pc-linux-gnu\"\n"
                "CXXFLAGS=\"-O2 -pipe\"\n"
                "FCFLAGS=\"\"\n"
                "FFLAGS=\"\"\n"
                "INSTALL_MASK=\"\"\n"
                "LDFLAGS=\"\"\n"
                "PKG_INSTALL_MASK=\"\"\n"
                "PORTAGE_BINHOST=\"\"\n"
                "PYTHON_TARGETS=\"\"\n"
                "RUSTFLAGS=\"\"\n"
                "USE=\"-* amd64 ssl video_cards_fbdev\"\n"
                "USE_EXPAND=\"-* VIDEO_CARDS PYTHON_TARGETS\"\n"
                "VIDEO_CARDS=\"fbdev\"\n"
                "FEATURES=\"${FEATURES} -binpkg-docompress -binpkg-dostrip -compressdebug -installsources nodoc "
                "-noinfo -noman -nostrip splitdebug\"\n");
  // ARCH, ELIBC and KERNEL are the make.profile's: make.conf may not set them.
  CHECK(out->find("ARCH=") == std::string::npos);
  CHECK(profile_owned_variables(client_profile()).contains("PYTHON_TARGETS"));
  CHECK_FALSE(profile_owned_variables(client_profile()).contains("ELIBC"));
  CHECK_FALSE(profile_make_conf("CFLAGS=\"-O2\n", client_profile()).has_value());
}

TEST_CASE("make.conf: the USE pin of one package, within its IUSE")
{
  CHECK(use_pin_line("sw-apps/viewer-1.2", {"+ssl", "-doc", "python_targets_python3_12", "ssl"},
                     {"ssl", "python_targets_python3_12", "amd64"}) ==
        "=sw-apps/viewer-1.2 ssl -doc python_targets_python3_12\n");
  CHECK(use_pin_line("sw-apps/viewer-1.2", {"+ssl", "doc"}, {}) == "=sw-apps/viewer-1.2 -ssl -doc\n");
  CHECK(use_pin_line("sw-apps/viewer-1.2", {}, {"ssl"}) == "");
}
