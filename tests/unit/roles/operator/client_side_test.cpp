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

TEST_CASE("client side: the CA `client setup --ca` installs must be PEM certificates")
{
  const std::string cert = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUQkAA\nAAAA\n-----END CERTIFICATE-----\n";
  CHECK(check_pem_certificates(cert).value() == 1);
  CHECK(check_pem_certificates("# my CA\n\n" + cert + "\n" + cert).value() == 2);
  CHECK(check_pem_certificates("").error().message.find("no PEM certificate") != std::string::npos);
  CHECK(check_pem_certificates("hello\n").error().message.find("outside") != std::string::npos);
  const auto key = check_pem_certificates("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n");
  REQUIRE_FALSE(key);
  CHECK(key.error().message.find("PRIVATE KEY") != std::string::npos);
  CHECK_FALSE(check_pem_certificates(cert + "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n"));
  CHECK_FALSE(check_pem_certificates("-----BEGIN CERTIFICATE-----\nMIIB\n"));
  CHECK_FALSE(check_pem_certificates("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"));
  CHECK_FALSE(check_pem_certificates("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"));
  CHECK_FALSE(check_pem_certificates("-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"));
}

TEST_CASE("client side: the CA's trust-anchor name and the command that installs it")
{
  CHECK(ca_anchor_name("https://gw.example.org:7443/production") == "swarm-gw.example.org.crt");
  CHECK(ca_anchor_name("https://127.0.0.1:7443") == "swarm-127.0.0.1.crt");
  CHECK(ca_anchor_name("https://[::1]:7443/p/x/production") == "swarm-__1.crt");
  CHECK(ca_anchor_name("not a url") == "swarm-gateway.crt");

  CHECK(find_program("sh", "/nonexistent:/bin:/usr/bin").has_value());
  CHECK(find_program("/bin/sh", "").value() == "/bin/sh");
  CHECK_FALSE(find_program("/nonexistent/update-ca-certificates", "/bin"));
  CHECK_FALSE(find_program("swarm-no-such-command", "/bin:/usr/bin"));
  CHECK_FALSE(find_program("", "/bin"));
}
