#include <doctest/doctest.h>

#include <cstdlib>

#include <sys/stat.h>

#include "core/byte_stream.hpp"
#include "core/fs.hpp"
#include "core/openpgp.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "portage/gpkg.hpp"
#include "portage/gpkg_sign.hpp"
#include "portage/tar.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

bool has_gpg()
{
  auto outcome = subprocess::run_capture({"gpg", "--version"});
  return outcome.has_value() && outcome->success();
}

// A short scratch directory (gpg-agent sockets live in the GnuPG home), removed at the end.
struct ShortTemp {
  std::filesystem::path path;
  ShortTemp()
  {
    std::string pattern = "/tmp/sgt.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~ShortTemp()
  {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// A keyring with a throw-away ed25519 key; its agent is stopped at the end.
struct TestKeyring {
  std::unique_ptr<openpgp::Keyring> keyring;
  openpgp::KeyInfo key;
  TestKeyring(const std::filesystem::path& home, const std::string& name = "Test Binhost")
  {
    auto opened = openpgp::Keyring::open(home, true);
    REQUIRE(opened.has_value());
    keyring = std::move(*opened);
    auto created = keyring->create_key(name, "binhost@example.invalid", "ed25519", 0);
    REQUIRE_MESSAGE(created.has_value(), (created ? "" : created.error().message));
    key = *created;
  }
  ~TestKeyring() { keyring->stop_agent(); }
  SignFunction signer() const
  {
    return [this](stream::ByteSource& data, bool clear) {
      return keyring->sign(data, clear ? openpgp::SignMode::clear : openpgp::SignMode::detached, key.fingerprint);
    };
  }
};

std::filesystem::path make_package(const std::filesystem::path& dir)
{
  GpkgContent content;
  content.dir_name = "hello-1.2.3-r1-1";
  content.metadata = {
    {"CATEGORY", "app-misc"}, {"PF", "hello-1.2.3-r1"}, {"SLOT", "0"}, {"BUILD_ID", "1"}, {"EAPI", "8"}};
  ImageFile hello;
  hello.content = "#!/bin/sh\necho hello\n";
  hello.mode = 0755;
  content.image["usr/bin/hello"] = hello;
  const auto path = dir / "hello-1.2.3-r1-1.gpkg.tar";
  REQUIRE(write_gpkg(path, content).has_value());
  return path;
}

std::string run_ok(const std::vector<std::string>& argv)
{
  auto outcome = subprocess::run_capture(argv);
  REQUIRE(outcome.has_value());
  INFO(strings::join(argv, " "), "\n", outcome->output);
  REQUIRE(outcome->success());
  return outcome->output;
}

} // namespace

TEST_CASE("gpkg_sign: a signed package has Portage's layout and verifies with plain gpg")
{
  if (!has_gpg()) {
    MESSAGE("gpg is not installed: skipped");
    return;
  }
  ShortTemp temp;
  TestKeyring keys(temp.path / "gnupg");
  CHECK(keys.key.algorithm == "ed25519");
  CHECK(keys.key.has_secret);
  CHECK(keys.key.active);
  CHECK(keys.key.expires == 0);
  CHECK(keys.key.uid == "Test Binhost <binhost@example.invalid>");

  const auto path = make_package(temp.path);
  REQUIRE(sign_gpkg(path, keys.signer()).has_value());

  // Member order as Portage writes it (the signed sample): each .sig right after its member.
  auto listing = list_tar_file(path);
  REQUIRE(listing.has_value());
  std::vector<std::string> names;
  for (const auto& member : listing->members) {
    names.push_back(member.name);
  }
  CHECK(names == std::vector<std::string>{"hello-1.2.3-r1-1/gpkg-1", "hello-1.2.3-r1-1/metadata.tar.zst",
                                          "hello-1.2.3-r1-1/metadata.tar.zst.sig", "hello-1.2.3-r1-1/image.tar.zst",
                                          "hello-1.2.3-r1-1/image.tar.zst.sig", "hello-1.2.3-r1-1/Manifest"});
  CHECK(listing->format == TarFormat::ustar);
  CHECK(*fs::file_size(path) % k_tar_record == 0);

  // swarm's own reader: signed and verified against the exported public key.
  auto exported = keys.keyring->export_public();
  REQUIRE(exported.has_value());
  CHECK(exported->starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
  const auto pub = temp.path / "binhost.asc";
  REQUIRE(fs::write_file_atomic(pub, *exported).has_value());
  GpkgOptions options;
  options.verify_signature_with = pub;
  auto report = validate_gpkg(path, options);
  REQUIRE(report.has_value());
  CHECK_MESSAGE(report->valid, report->reason);
  CHECK(report->signature == SignatureStatus::verified);

  // Plain gpg, in a home that only knows the public key: every member's detached signature is
  // armoured and good, the Manifest is clear-signed with SHA512 and lists the signatures.
  const auto unpacked = temp.path / "x";
  std::filesystem::create_directories(unpacked);
  run_ok({"tar", "-xf", path.string(), "-C", unpacked.string()});
  const auto pkg = unpacked / "hello-1.2.3-r1-1";
  const auto verify_home = temp.path / "v";
  std::filesystem::create_directories(verify_home);
  ::chmod(verify_home.c_str(), 0700);
  run_ok({"gpg", "--homedir", verify_home.string(), "--batch", "--import", pub.string()});
  for (const auto* member : {"metadata.tar.zst", "image.tar.zst"}) {
    const auto sig = fs::read_file(pkg / (std::string(member) + ".sig"));
    REQUIRE(sig.has_value());
    CHECK(sig->starts_with("-----BEGIN PGP SIGNATURE-----"));
    const auto out = run_ok({"gpg", "--homedir", verify_home.string(), "--batch", "--status-fd", "1", "--verify",
                             (pkg / (std::string(member) + ".sig")).string(), (pkg / member).string()});
    CHECK(out.find("[GNUPG:] GOODSIG " + keys.key.fingerprint.substr(24)) != std::string::npos);
    CHECK(out.find("[GNUPG:] VALIDSIG " + keys.key.fingerprint) != std::string::npos);
  }
  const auto manifest = fs::read_file(pkg / "Manifest");
  REQUIRE(manifest.has_value());
  CHECK(manifest->starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"));
  CHECK(manifest->find("DATA metadata.tar.zst.sig ") != std::string::npos);
  CHECK(manifest->find("DATA image.tar.zst.sig ") != std::string::npos);
  CHECK(manifest->find("DATA gpkg-1 0 ") != std::string::npos);
  const auto out = run_ok(
    {"gpg", "--homedir", verify_home.string(), "--batch", "--status-fd", "1", "--verify", (pkg / "Manifest").string()});
  CHECK(out.find("[GNUPG:] VALIDSIG " + keys.key.fingerprint) != std::string::npos);
}

TEST_CASE("gpkg_sign: a changed member or a foreign key fails verification")
{
  if (!has_gpg()) {
    MESSAGE("gpg is not installed: skipped");
    return;
  }
  ShortTemp temp;
  TestKeyring ours(temp.path / "ours");
  TestKeyring foreign(temp.path / "foreign", "Someone Else");
  auto exported = ours.keyring->export_public();
  REQUIRE(exported.has_value());
  const auto pub = temp.path / "ours.asc";
  REQUIRE(fs::write_file_atomic(pub, *exported).has_value());
  GpkgOptions options;
  options.verify_signature_with = pub;

  SUBCASE("re-signed with another key")
  {
    const auto path = make_package(temp.path);
    REQUIRE(sign_gpkg(path, foreign.signer()).has_value());
    auto report = validate_gpkg(path, options);
    REQUIRE(report.has_value());
    CHECK_FALSE(report->valid);
    CHECK(report->signature == SignatureStatus::bad);
    // Re-signing replaces the signatures: with ours again it verifies.
    REQUIRE(sign_gpkg(path, ours.signer()).has_value());
    auto again = validate_gpkg(path, options);
    REQUIRE(again.has_value());
    CHECK_MESSAGE(again->valid, again->reason);
    CHECK(again->members.size() == 6);
  }
  SUBCASE("unsigned")
  {
    const auto path = make_package(temp.path);
    auto report = validate_gpkg(path, options);
    REQUIRE(report.has_value());
    CHECK_FALSE(report->valid);
    CHECK(report->reason.find("not signed") != std::string::npos);
  }
}

TEST_CASE("openpgp: a long GnuPG home is reached through a short alias; keys are listed, exported, retired")
{
  if (!has_gpg()) {
    MESSAGE("gpg is not installed: skipped");
    return;
  }
  ShortTemp temp;
  const auto home = temp.path / std::string(90, 'd') / "gnupg";
  {
    TestKeyring first(home);
    auto second = first.keyring->create_key("Rotated", "next@example.invalid", "ed25519", 30);
    REQUIRE_MESSAGE(second.has_value(), (second ? "" : second.error().message));
    CHECK(second->active);
    CHECK(second->expires > second->created);
    auto all = first.keyring->keys();
    REQUIRE(all.has_value());
    REQUIRE(all->size() == 2);
    // Both public keys are exported (clients trust both during a rotation).
    auto both = first.keyring->export_public();
    REQUIRE(both.has_value());
    CHECK(first.keyring->remove_key(second->fingerprint).error().kind == ErrorKind::conflict);
    REQUIRE(first.keyring->remove_key(first.key.fingerprint).has_value());
    auto left = first.keyring->keys();
    REQUIRE(left.has_value());
    REQUIRE(left->size() == 1);
    CHECK(left->front().fingerprint == second->fingerprint);
    // The signing key works through the alias (gpg-agent's socket path would be too long).
    stream::StringSource data("hello");
    auto signature = first.keyring->sign(data, openpgp::SignMode::detached, second->fingerprint);
    REQUIRE_MESSAGE(signature.has_value(), (signature ? "" : signature.error().message));
    CHECK(std::filesystem::exists(home / "S.gpg-agent"));
  }
  // stop_agent ended it: the agent removes its socket when it exits.
  CHECK_FALSE(std::filesystem::exists(home / "S.gpg-agent"));
  CHECK(openpgp::normalize_fingerprint("0x" + std::string(40, 'a')) == std::string(40, 'A'));
  CHECK(openpgp::normalize_fingerprint("abc").empty());
}
