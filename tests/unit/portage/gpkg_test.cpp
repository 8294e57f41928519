#include <doctest/doctest.h>

#include "support.hpp"

#include <cstring>
#include <set>

#include "core/byte_stream.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "portage/compression.hpp"
#include "portage/gpkg.hpp"
#include "portage/tar.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

GpkgReport validate(const std::string& path, const GpkgOptions& options = {})
{
  auto report = validate_gpkg(path, options);
  REQUIRE(report.has_value());
  if (report->valid) {
    CHECK(report->reason.empty());
  } else {
    CHECK_FALSE(report->reason.empty());
  }
  auto sha256 = hash::hash_file(path, {hash::Algo::sha256});
  REQUIRE(sha256.has_value());
  CHECK(report->sha256 == sha256->at(hash::Algo::sha256));
  CHECK(report->size == *fs::file_size(path));
  return *report;
}

bool contains(const std::string& text, std::string_view part)
{
  return text.find(part) != std::string::npos;
}

bool gpg_available()
{
  auto outcome = subprocess::run_capture({"gpg", "--version"});
  return outcome.has_value() && outcome->success();
}

// An outer container with the given members and a Manifest made for them (or the given one).
std::string craft(const std::vector<std::pair<std::string, std::string>>& members,
                  std::optional<std::string> manifest = {})
{
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::ustar);
  std::string made;
  for (const auto& [name, content] : members) {
    TarWriteEntry entry;
    entry.name = name;
    REQUIRE(writer.add(entry, content).has_value());
    const auto base = name.substr(name.rfind('/') + 1);
    if (base != "Manifest") {
      made +=
        fmt::format("DATA {} {} SHA512 {} BLAKE2B {}\n", base, content.size(),
                    hash::hex_digest(hash::Algo::sha512, content), hash::hex_digest(hash::Algo::blake2b, content));
    }
  }
  TarWriteEntry entry;
  entry.name = members.front().first.substr(0, members.front().first.find('/') + 1) + "Manifest";
  REQUIRE(writer.add(entry, manifest.value_or(made)).has_value());
  REQUIRE(writer.finish().has_value());
  return sink.data();
}

std::string metadata_tar(const std::map<std::string, std::string>& keys)
{
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::ustar);
  for (const auto& [key, value] : keys) {
    TarWriteEntry entry;
    entry.name = "metadata/" + key;
    REQUIRE(writer.add(entry, value).has_value());
  }
  REQUIRE(writer.finish().has_value());
  return sink.data();
}

GpkgReport validate_bytes(const fs::TempDir& dir, const std::string& bytes, const GpkgOptions& options = {})
{
  const auto path = dir / "crafted.gpkg.tar";
  REQUIRE(fs::write_file_atomic(path, bytes).has_value());
  return validate(path.string(), options);
}

const std::map<std::string, std::string> k_good_metadata{
  {"CATEGORY", "app-misc\n"}, {"PF", "foo-1\n"}, {"SLOT", "0\n"}, {"BUILD_ID", "1"}};

} // namespace

TEST_CASE("gpkg: every sample is judged as its README says")
{
  // Each file of gpkg-samples/ must appear here: a new sample without a verdict fails.
  std::set<std::string> judged;
  auto judge = [&judged](const std::string& name) {
    judged.insert(name);
    return validate(swarm::test::gpkg_sample(name));
  };

  for (const auto& [name, codec] : {std::pair{"hello-1.2.3-r1-1.gpkg.tar", Compression::zstd},
                                    std::pair{"hello-1.2.3-r1-1.xz.gpkg.tar", Compression::xz},
                                    std::pair{"hello-1.2.3-r1-1.gzip.gpkg.tar", Compression::gzip},
                                    std::pair{"hello-1.2.3-r1-1.bzip2.gpkg.tar", Compression::bzip2}}) {
    CAPTURE(name);
    const auto report = judge(name);
    CHECK(report.valid);
    CHECK(report.format == BinpkgFormat::gpkg);
    CHECK(report.dir_name == "hello-1.2.3-r1-1");
    CHECK(report.tar_format == TarFormat::ustar);
    CHECK(report.metadata_compression == codec);
    CHECK(report.image_compression == codec);
    CHECK(report.metadata.at("CATEGORY") == "app-misc");
    CHECK(report.metadata.at("PF") == "hello-1.2.3-r1");
    CHECK(report.metadata.at("SLOT") == "0");
    CHECK(report.metadata.at("BUILD_ID") == "1");
    CHECK(report.metadata.at("USE") == "amd64 elibc_glibc kernel_linux");
    CHECK(report.metadata.at("DESCRIPTION") == "A test package");
    CHECK_FALSE(report.is_signed);
    CHECK(report.signature == SignatureStatus::unsigned_package);
    CHECK(report.members.size() == 4);
    CHECK(report.size == 10240);
  }

  const auto signed_report = judge("hello-1.2.3-r1-1.signed.gpkg.tar");
  CHECK(signed_report.valid);
  CHECK(signed_report.is_signed);
  CHECK(signed_report.signature == SignatureStatus::not_verified);
  CHECK(signed_report.members.size() == 6);

  const auto truncated = judge("bad-truncated.gpkg.tar");
  CHECK_FALSE(truncated.valid);
  CHECK(truncated.format == BinpkgFormat::gpkg);
  CHECK(contains(truncated.reason, "truncated"));

  const auto tampered = judge("bad-tampered-image.gpkg.tar");
  CHECK_FALSE(tampered.valid);
  CHECK(contains(tampered.reason, "image.tar.zst"));
  CHECK(contains(tampered.reason, "checksum does not match"));

  const auto not_tar = judge("bad-not-a-tar.gpkg.tar");
  CHECK_FALSE(not_tar.valid);
  CHECK(not_tar.format == BinpkgFormat::unknown);
  CHECK(contains(not_tar.reason, "not a GPKG"));

  const auto tiny = judge("bad-tiny.gpkg.tar");
  CHECK_FALSE(tiny.valid);
  CHECK(tiny.format == BinpkgFormat::unknown);
  CHECK(tiny.size == 7);

  const auto traversal = judge("bad-path-traversal.gpkg.tar");
  CHECK_FALSE(traversal.valid);
  CHECK(contains(traversal.reason, "../../etc/gpkg-1"));

  const auto marker_last = judge("odd-marker-not-first.gpkg.tar");
  CHECK_FALSE(marker_last.valid);
  CHECK(marker_last.format == BinpkgFormat::gpkg);
  CHECK(contains(marker_last.reason, "gpkg-1 is not the first member"));

  const auto other = judge("odd-metadata-names-other-package.gpkg.tar");
  CHECK(other.valid); // a well-formed GPKG …
  GpkgOptions expect;
  expect.expect_cpv = "app-misc/hello-1.2.3-r1";
  const auto as_upload = validate(swarm::test::gpkg_sample("odd-metadata-names-other-package.gpkg.tar"), expect);
  CHECK_FALSE(as_upload.valid); // … but not the package the upload was for
  CHECK(as_upload.reason == "metadata names evil-9.9, expected app-misc/hello-1.2.3-r1");
  CHECK(validate(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"), expect).valid);
  expect.expect_cpv = "dev-libs/hello-1.2.3-r1";
  CHECK(validate(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"), expect).reason ==
        "metadata names app-misc/hello-1.2.3-r1, expected dev-libs/hello-1.2.3-r1");

  for (const auto& entry : std::filesystem::directory_iterator(swarm::test::gpkg_sample(""))) {
    const auto name = entry.path().filename().string();
    if (name.ends_with(".gpkg.tar")) {
      CHECK_MESSAGE(judged.contains(name), "sample without a verdict: " << name);
    }
  }
}

TEST_CASE("gpkg: signature verification with the test key, and failure without it")
{
  if (!gpg_available()) {
    MESSAGE("gpg not installed: signature verification not tested");
    return;
  }
  GpkgOptions options;
  options.verify_signature_with = swarm::test::gpkg_sample("test-signing-key.pub.asc");
  const auto good = validate(swarm::test::gpkg_sample("hello-1.2.3-r1-1.signed.gpkg.tar"), options);
  CHECK(good.valid);
  CHECK(good.signature == SignatureStatus::verified);

  // An empty keyring: gpg cannot verify, as Portage says "GnuPG verification failed".
  fs::TempDir home("gpkg-gpg");
  options.verify_signature_with = home.path();
  const auto unknown_key = validate(swarm::test::gpkg_sample("hello-1.2.3-r1-1.signed.gpkg.tar"), options);
  CHECK_FALSE(unknown_key.valid);
  CHECK(unknown_key.signature == SignatureStatus::bad);
  CHECK(contains(unknown_key.reason, "GnuPG verification failed"));

  // With a key configured an unsigned package is refused.
  options.verify_signature_with = swarm::test::gpkg_sample("test-signing-key.pub.asc");
  const auto unsigned_package = validate(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"), options);
  CHECK_FALSE(unsigned_package.valid);
  CHECK(contains(unsigned_package.reason, "not signed"));
}

TEST_CASE("gpkg: the real onepassword package (signed, xz) is accepted")
{
  const auto report = validate(swarm::test::portage_data("gpkg-real/onepassword-cli-0-1.gpkg.tar"));
  CHECK(report.valid);
  CHECK(report.is_signed);
  CHECK(report.metadata_compression == Compression::xz);
  CHECK(report.dir_name == "onepassword-cli-0-1");
  CHECK(report.metadata.at("PF") == "onepassword-cli-0");
  CHECK(report.metadata.at("BUILD_ID") == "1");
  CHECK(report.size == 20480);
  CHECK_FALSE(report.metadata.contains("environment.bz2"));
  CHECK_FALSE(report.metadata.contains("onepassword-cli-0.ebuild"));
}

TEST_CASE("gpkg: old xpak packages are recognised, with their metadata")
{
  for (const auto& [path, cpv] :
       {std::pair{"acct-group/adm/adm-0-r2-1.xpak", "acct-group/adm-0-r2"},
        std::pair{"acct-user/nobody/nobody-0-r1-2.xpak", "acct-user/nobody-0-r1"},
        std::pair{"app-misc/mime-types/mime-types-2.1.53-1.xpak", "app-misc/mime-types-2.1.53"}}) {
    CAPTURE(path);
    GpkgOptions options;
    options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
    const auto report = validate(swarm::test::portage_data(std::string("binhost-257/") + path), options);
    CHECK_FALSE(report.valid);
    CHECK(report.format == BinpkgFormat::xpak);
    CHECK(report.reason == "not a GPKG (old xpak format)");
    CHECK(report.metadata.at("CATEGORY") + "/" + report.metadata.at("PF") == cpv);
    CHECK(report.file_digests.contains(hash::Algo::md5));
  }
}

TEST_CASE("gpkg: Manifest parsing: hash order free, strict lines")
{
  auto parsed = parse_gpkg_manifest("DATA a 3 SHA512 aa BLAKE2B bb\nDATA b 0 BLAKE2B cc SHA512 dd\n\n");
  REQUIRE(parsed.has_value());
  CHECK(parsed->at("a").size == 3);
  CHECK(parsed->at("a").hashes.at("BLAKE2B") == "bb");
  CHECK(parsed->at("b").hashes.at("SHA512") == "dd");
  CHECK_FALSE(parse_gpkg_manifest("DATA a 3 SHA512 aa\nDATA a 3 SHA512 aa\n").has_value());
  CHECK_FALSE(parse_gpkg_manifest("EBUILD a 3 SHA512 aa\n").has_value());
  CHECK_FALSE(parse_gpkg_manifest("DATA a x SHA512 aa\n").has_value());
  CHECK_FALSE(parse_gpkg_manifest("DATA a 3 SHA512\n").has_value());

  const auto plain =
    clearsigned_plaintext("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nDATA a 1 SHA512 x\n- -escaped\n"
                          "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n");
  REQUIRE(plain.has_value());
  CHECK(*plain == "DATA a 1 SHA512 x\n-escaped\n");
  CHECK_FALSE(clearsigned_plaintext("DATA a 1 SHA512 x\n").has_value());
  CHECK(normalize_metadata_value("  a\tb\n\nc \n") == "a b c");
}

TEST_CASE("gpkg: structural attacks and Manifest mismatches are rejected")
{
  fs::TempDir dir("gpkg-test");
  auto metadata = compress(Compression::zstd, metadata_tar(k_good_metadata));
  auto image = compress(Compression::zstd, metadata_tar({}));
  REQUIRE(metadata.has_value());
  REQUIRE(image.has_value());
  const std::vector<std::pair<std::string, std::string>> good{
    {"foo-1-1/gpkg-1", ""}, {"foo-1-1/metadata.tar.zst", *metadata}, {"foo-1-1/image.tar.zst", *image}};
  CHECK(validate_bytes(dir, craft(good)).valid);

  auto with = [&good](std::pair<std::string, std::string> extra) {
    auto members = good;
    members.push_back(std::move(extra));
    return members;
  };
  CHECK(contains(validate_bytes(dir, craft(with({"foo-1-1/metadata.tar.zst", "again"}))).reason, "twice"));
  CHECK(contains(validate_bytes(dir, craft(with({"other-dir/extra", "x"}))).reason, "more than one directory"));
  CHECK(contains(validate_bytes(dir, craft(with({"foo-1-1/sub/deep", "x"}))).reason, "one level deep"));

  // A member the Manifest does not list, and a Manifest line without a member.
  auto manifest = craft(good);
  const auto unlisted = craft(with({"foo-1-1/extra", "x"}), std::string());
  CHECK(contains(validate_bytes(dir, unlisted).reason, "not listed in the Manifest"));
  std::string made;
  for (const auto& [name, content] : good) {
    made += fmt::format("DATA {} {} BLAKE2B {}\n", name.substr(8), content.size(),
                        hash::hex_digest(hash::Algo::blake2b, content));
  }
  CHECK(validate_bytes(dir, craft(good, made)).valid); // one supported hash is enough
  CHECK(contains(validate_bytes(dir, craft(good, made + "DATA ghost 1 BLAKE2B 00\n")).reason, "ghost"));
  CHECK(contains(validate_bytes(dir, craft(good, made + "DATA\n")).reason, "Manifest"));
  const auto wrong_size = craft(good, "DATA gpkg-1 1 BLAKE2B 00\n");
  CHECK(contains(validate_bytes(dir, wrong_size).reason, "the Manifest says 1"));
  const auto only_unknown_hash = craft(good, "DATA gpkg-1 0 WHIRLPOOL 00\nDATA metadata.tar.zst " +
                                               std::to_string(metadata->size()) + " WHIRLPOOL 00\n");
  CHECK(contains(validate_bytes(dir, only_unknown_hash).reason, "no hash swarm supports"));

  // A directory member, and a package without metadata keys Portage requires.
  stream::StringSink with_dir;
  {
    TarWriter writer(with_dir, TarDialect::ustar);
    TarWriteEntry entry;
    entry.name = "foo-1-1/gpkg-1";
    REQUIRE(writer.add(entry, "").has_value());
    entry.name = "foo-1-1/sub";
    entry.type = TarEntryType::directory;
    REQUIRE(writer.add(entry).has_value());
    REQUIRE(writer.finish().has_value());
  }
  CHECK(contains(validate_bytes(dir, with_dir.data()).reason, "only regular files"));
  auto no_slot = compress(Compression::zstd, metadata_tar({{"CATEGORY", "app-misc\n"}, {"PF", "foo-1\n"}}));
  REQUIRE(no_slot.has_value());
  const auto no_slot_package =
    craft({{"foo-1-1/gpkg-1", ""}, {"foo-1-1/metadata.tar.zst", *no_slot}, {"foo-1-1/image.tar.zst", *image}});
  CHECK(validate_bytes(dir, no_slot_package).reason == "metadata has no SLOT");
  const auto lz4 =
    craft({{"foo-1-1/gpkg-1", ""}, {"foo-1-1/metadata.tar.lz4", "x"}, {"foo-1-1/image.tar.zst", *image}});
  CHECK(contains(validate_bytes(dir, lz4).reason, "unsupported compression lz4"));
}

TEST_CASE("gpkg: what write_gpkg writes validates and has Portage's layout")
{
  fs::TempDir dir("gpkg-write");
  GpkgContent content;
  content.dir_name = "hello-1.2.3-r1-7";
  content.metadata = {{"CATEGORY", "app-misc"},
                      {"PF", "hello-1.2.3-r1"},
                      {"SLOT", "0"},
                      {"BUILD_ID", "7\n"},
                      {"EAPI", "8"},
                      {"USE", "amd64 elibc_glibc"},
                      {"repository", "gentoo"},
                      {"DESCRIPTION", "A test  package"}};
  content.image["usr/bin/hello"] = {"#!/bin/sh\necho hello\n", 0755, TarEntryType::regular, ""};
  content.image["usr/share/doc/hello/README"] = {"read me\n", 0644, TarEntryType::regular, ""};
  content.image["usr/bin/hi"] = {"", 0777, TarEntryType::symlink, "hello"};
  content.mtime = 1700000000;

  for (auto codec : {Compression::zstd, Compression::xz, Compression::gzip, Compression::bzip2, Compression::none}) {
    CAPTURE(compression_name(codec));
    content.compression = codec;
    const auto path = dir / "hello.gpkg.tar";
    REQUIRE(write_gpkg(path, content).has_value());
    GpkgOptions options;
    options.expect_cpv = "app-misc/hello-1.2.3-r1";
    const auto report = validate(path.string(), options);
    CHECK(report.valid);
    CHECK(report.metadata.at("BUILD_ID") == "7");
    CHECK(report.metadata.at("DESCRIPTION") == "A test package");
    CHECK(report.size % k_tar_record == 0);
    CHECK(report.metadata_compression == codec);
    const auto suffix = std::string(compression_suffix(codec));
    REQUIRE(report.members.size() == 4);
    CHECK(report.members[0].name == "hello-1.2.3-r1-7/gpkg-1");
    CHECK(report.members[1].name == "hello-1.2.3-r1-7/metadata.tar" + suffix);
    CHECK(report.members[2].name == "hello-1.2.3-r1-7/image.tar" + suffix);
    CHECK(report.members[3].name == "hello-1.2.3-r1-7/Manifest");
  }

  // Compare with Portage's own zstd sample: outer headers and Manifest shape.
  content.compression = Compression::zstd;
  const auto path = dir / "hello.gpkg.tar";
  REQUIRE(write_gpkg(path, content).has_value());
  auto ours = list_tar_file(path);
  auto portage = list_tar_file(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"));
  REQUIRE(ours.has_value());
  REQUIRE(portage.has_value());
  CHECK(ours->format == portage->format);
  REQUIRE(ours->members.size() == portage->members.size());
  for (size_t i = 0; i < ours->members.size(); ++i) {
    const auto& a = ours->members[i];
    const auto& b = portage->members[i];
    CHECK(a.name.substr(a.name.find('/')) == b.name.substr(b.name.find('/')));
    CHECK(a.mode == b.mode);
    CHECK(a.uid == b.uid);
    CHECK(a.uname == b.uname);
    CHECK(a.typeflag == b.typeflag);
  }
  auto file = stream::File::open_read(path);
  REQUIRE(file.has_value());
  const auto& manifest_member = ours->members[3];
  std::string manifest(manifest_member.size, '\0');
  REQUIRE(file->read_at(manifest_member.data_offset, manifest.data(), manifest.size()).has_value());
  const auto lines = strings::split_any(manifest, "\n");
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].starts_with("DATA gpkg-1 0 BLAKE2B 786a02f7"));
  CHECK(contains(lines[0], " SHA512 cf83e135"));
  CHECK(lines[1].starts_with("DATA metadata.tar.zst "));
  CHECK(lines[2].starts_with("DATA image.tar.zst "));
  CHECK(manifest.ends_with("\n"));

  // Inner archives: metadata without directory entries, BUILD_ID without newline; image with
  // directories in sorted depth-first order, owned by root.
  stream::FileRangeSource metadata_raw(*file, ours->members[1].data_offset, ours->members[1].size);
  auto metadata_stream = make_decompressor(Compression::zstd, metadata_raw);
  REQUIRE(metadata_stream.has_value());
  auto metadata_entries = read_tar_entries(**metadata_stream, 1 << 20);
  REQUIRE(metadata_entries.has_value());
  for (const auto& entry : *metadata_entries) {
    CHECK(entry.member.type == TarEntryType::regular);
    CHECK(entry.member.name.starts_with("metadata/"));
    if (entry.member.name == "metadata/BUILD_ID") {
      CHECK(entry.content == "7");
    } else {
      CHECK(entry.content.ends_with("\n"));
    }
  }
  stream::FileRangeSource image_raw(*file, ours->members[2].data_offset, ours->members[2].size);
  auto image_stream = make_decompressor(Compression::zstd, image_raw);
  REQUIRE(image_stream.has_value());
  auto image_entries = read_tar_entries(**image_stream, 1 << 20);
  REQUIRE(image_entries.has_value());
  std::vector<std::string> names;
  for (const auto& entry : *image_entries) {
    names.push_back(entry.member.name);
    CHECK(entry.member.uname == "root");
    CHECK(entry.member.mtime == 1700000000);
  }
  CHECK(names == std::vector<std::string>{"image/", "image/usr/", "image/usr/bin/", "image/usr/bin/hello",
                                          "image/usr/bin/hi", "image/usr/share/", "image/usr/share/doc/",
                                          "image/usr/share/doc/hello/", "image/usr/share/doc/hello/README"});
  CHECK((*image_entries)[4].member.type == TarEntryType::symlink);
  CHECK((*image_entries)[4].member.linkname == "hello");
  CHECK((*image_entries)[3].member.mode == 0755);

  // Nothing but the package is left in the directory (the temporary was renamed).
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    ++files;
  }
  CHECK(files == 1);
  content.dir_name = "../evil";
  CHECK_FALSE(write_gpkg(dir / "evil.gpkg.tar", content).has_value());
}

TEST_CASE("gpkg: a large image streams through the hashers")
{
  fs::TempDir dir("gpkg-large");
  GpkgContent content;
  content.dir_name = "big-1-1";
  content.metadata = k_good_metadata;
  content.metadata["PF"] = "big-1";
  std::string blob(24u << 20, '\0');
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i < blob.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::memcpy(blob.data() + i, &x, 8);
  }
  content.image["usr/share/big/blob"] = {std::move(blob), 0644, TarEntryType::regular, ""};
  content.compression = Compression::none;
  const auto path = dir / "big.gpkg.tar";
  REQUIRE(write_gpkg(path, content).has_value());
  const auto report = validate(path.string());
  CHECK(report.valid);
  CHECK(report.size > (24u << 20));
}

namespace {

// An image.tar.zst with the given entries (content empty).
std::string image_tar(const std::vector<TarWriteEntry>& entries)
{
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::gnu);
  for (const auto& entry : entries) {
    REQUIRE(writer.add(entry).has_value());
  }
  REQUIRE(writer.finish().has_value());
  auto compressed = compress(Compression::zstd, sink.data());
  REQUIRE(compressed.has_value());
  return *compressed;
}

TarWriteEntry image_entry(std::string name, TarEntryType type = TarEntryType::regular, std::string link = {})
{
  TarWriteEntry entry;
  entry.name = std::move(name);
  entry.type = type;
  entry.linkname = std::move(link);
  return entry;
}

TarMember image_member_of(std::string name, TarEntryType type = TarEntryType::regular, std::string link = {})
{
  TarMember out;
  out.name = std::move(name);
  out.type = type;
  out.linkname = std::move(link);
  return out;
}

} // namespace

TEST_CASE("gpkg: image members that must not be installed")
{
  using enum TarEntryType;
  CHECK_FALSE(unsafe_image_member(image_member_of("image/")).has_value());
  CHECK_FALSE(unsafe_image_member(image_member_of("image/usr/bin/hello")).has_value());
  CHECK_FALSE(unsafe_image_member(image_member_of("./image/usr/", directory)).has_value());
  CHECK_FALSE(unsafe_image_member(image_member_of("image/usr/lib/libfoo.so", symlink, "libfoo.so.1")).has_value());
  CHECK_FALSE(
    unsafe_image_member(image_member_of("image/usr/lib/libfoo.so", symlink, "../../usr/lib64/x")).has_value());
  CHECK_FALSE(
    unsafe_image_member(image_member_of("image/etc/localtime", symlink, "/usr/share/zoneinfo/UTC")).has_value());
  CHECK_FALSE(unsafe_image_member(image_member_of("image/usr/bin/b", hardlink, "image/usr/bin/a")).has_value());

  struct Case {
    TarMember m;
    const char* says;
  };
  for (const auto& c : {
         Case{image_member_of("/etc/passwd"), "absolute"},
         Case{image_member_of("image/../../etc/passwd"), "'..'"},
         Case{image_member_of("etc/passwd"), "not below image/"},
         Case{image_member_of("imagex/passwd"), "not below image/"},
         Case{image_member_of("image/dev/sda", block_device), "block-device"},
         Case{image_member_of("image/dev/tty", char_device), "char-device"},
         Case{image_member_of("image/run/fifo", fifo), "fifo"},
         Case{image_member_of("image/x", other), "other"},
         Case{image_member_of("image/usr/lib/evil", symlink, "../../../etc/shadow"), "outside the image"},
         Case{image_member_of("image/evil", symlink, ".."), "outside the image"},
         Case{image_member_of("image/usr/empty", symlink, ""), "no target"},
         Case{image_member_of("image/usr/bin/b", hardlink, "/etc/shadow"), "absolute"},
         Case{image_member_of("image/usr/bin/b", hardlink, "image/../etc/shadow"), "'..'"},
         Case{image_member_of("image/usr/bin/b", hardlink, "etc/shadow"), "not below image/"},
       }) {
    CAPTURE(c.m.name);
    const auto problem = unsafe_image_member(c.m);
    REQUIRE(problem.has_value());
    CHECK(contains(*problem, c.says));
  }
}

TEST_CASE("gpkg: uploads with unsafe image members or decompression bombs are refused")
{
  fs::TempDir dir("gpkg-image");
  auto metadata = compress(Compression::zstd, metadata_tar(k_good_metadata));
  REQUIRE(metadata.has_value());
  const auto package = [&](const std::string& image) {
    return craft({{"foo-1-1/gpkg-1", ""}, {"foo-1-1/metadata.tar.zst", *metadata}, {"foo-1-1/image.tar.zst", image}});
  };
  using enum TarEntryType;
  const auto good = image_tar({image_entry("image/", directory), image_entry("image/usr/", directory),
                               image_entry("image/usr/a"), image_entry("image/usr/b", symlink, "a")});
  CHECK(validate_bytes(dir, package(good)).valid);

  for (const auto& [entry, says] : std::vector<std::pair<TarWriteEntry, std::string>>{
         {image_entry("/etc/cron.d/evil"), "absolute"},
         {image_entry("image/../../root/.ssh/authorized_keys"), "'..'"},
         {image_entry("image/dev/sda", block_device), "block-device"},
         {image_entry("image/dev/mem", char_device), "char-device"},
         {image_entry("image/run/pipe", fifo), "fifo"},
         {image_entry("image/usr/lib/x", symlink, "../../../../etc/shadow"), "outside the image"},
         {image_entry("image/usr/bin/x", hardlink, "/etc/shadow"), "absolute"},
       }) {
    CAPTURE(entry.name);
    const auto report = validate_bytes(dir, package(image_tar({image_entry("image/", directory), entry})));
    CHECK_FALSE(report.valid);
    CHECK(contains(report.reason, says));
    CHECK(contains(report.reason, "image.tar.zst"));
  }

  // Decompressed sizes are limited while streaming: a small package that inflates past them.
  stream::StringSink big_tar;
  {
    TarWriter writer(big_tar, TarDialect::gnu);
    auto entry = image_entry("image/zeros");
    const std::string zeros(8u << 20, '\0');
    REQUIRE(writer.add(entry, zeros).has_value());
    REQUIRE(writer.finish().has_value());
  }
  auto bomb = compress(Compression::zstd, big_tar.data());
  REQUIRE(bomb.has_value());
  CHECK(bomb->size() < (64u << 10));
  GpkgOptions options;
  options.max_image_bytes = 1u << 20;
  auto report = validate_bytes(dir, package(*bomb), options);
  CHECK_FALSE(report.valid);
  CAPTURE(report.reason);
  CHECK(contains(report.reason, "larger than 1048576 bytes once decompressed"));
  CHECK(validate_bytes(dir, package(*bomb)).valid); // within the default limit

  options = {};
  options.max_image_members = 2;
  report = validate_bytes(dir, package(good), options);
  CHECK_FALSE(report.valid);
  CHECK(contains(report.reason, "more than 2 members"));

  // Metadata: a skipped member (environment.bz2) still counts towards the decompressed limit,
  // and a text value held in memory has its own small limit.
  auto keys = k_good_metadata;
  keys["environment.bz2"] = std::string(4u << 20, 'e');
  auto big_metadata = compress(Compression::zstd, metadata_tar(keys));
  REQUIRE(big_metadata.has_value());
  const auto with_metadata = [&](const std::string& meta) {
    return craft({{"foo-1-1/gpkg-1", ""}, {"foo-1-1/metadata.tar.zst", meta}, {"foo-1-1/image.tar.zst", good}});
  };
  CHECK(validate_bytes(dir, with_metadata(*big_metadata)).valid);
  options = {};
  options.max_metadata_bytes = 1u << 20;
  report = validate_bytes(dir, with_metadata(*big_metadata), options);
  CHECK_FALSE(report.valid);
  CHECK(contains(report.reason, "metadata.tar.zst is larger than 1048576 bytes once decompressed"));
  keys = k_good_metadata;
  keys["DESCRIPTION"] = std::string(2u << 20, 'd');
  auto long_value = compress(Compression::zstd, metadata_tar(keys));
  REQUIRE(long_value.has_value());
  report = validate_bytes(dir, with_metadata(*long_value));
  CHECK_FALSE(report.valid);
  CHECK(contains(report.reason, "metadata value DESCRIPTION"));
}
