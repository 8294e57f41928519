#include <doctest/doctest.h>

#include "support.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "core/byte_stream.hpp"
#include "core/fs.hpp"
#include "portage/compression.hpp"
#include "portage/tar.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

std::string read_bytes(const std::filesystem::path& path)
{
  auto content = fs::read_file(path);
  REQUIRE(content.has_value());
  return *content;
}

void write_bytes(const std::filesystem::path& path, std::string_view data)
{
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// A hand-made header block (for dialect features our writer does not produce: pax, base-256).
std::string raw_header(const std::string& name, char typeflag, std::string_view size_field)
{
  std::string block(512, '\0');
  std::memcpy(block.data(), name.data(), std::min<size_t>(name.size(), 100));
  std::memcpy(block.data() + 100, "0000644", 7);
  std::memcpy(block.data() + 108, "0000000", 7);
  std::memcpy(block.data() + 116, "0000000", 7);
  std::memcpy(block.data() + 124, size_field.data(), std::min<size_t>(size_field.size(), 12));
  std::memcpy(block.data() + 136, "00000000000", 11);
  block[156] = typeflag;
  std::memcpy(block.data() + 257,
              "ustar\0"
              "00",
              8);
  std::memset(block.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : block) {
    sum += c;
  }
  const auto text = fmt::format("{:06o}", sum);
  std::memcpy(block.data() + 148, text.data(), 6);
  block[154] = '\0';
  return block;
}

std::string padded(std::string data)
{
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string octal_size(uint64_t size)
{
  return fmt::format("{:011o}", size);
}

std::vector<TarEntry> entries_of(std::string_view tar)
{
  stream::StringSource source(tar);
  auto entries = read_tar_entries(source, 1 << 24);
  REQUIRE(entries.has_value());
  return *entries;
}

// Rebuilds a tar from what our reader saw, with our writer.
std::string rewrite(const std::vector<TarEntry>& entries, TarDialect dialect)
{
  stream::StringSink sink;
  TarWriter writer(sink, dialect);
  for (const auto& entry : entries) {
    const TarWriteEntry out{.name = entry.member.name,
                            .type = entry.member.type,
                            .mode = entry.member.mode,
                            .uid = entry.member.uid,
                            .gid = entry.member.gid,
                            .uname = entry.member.uname,
                            .gname = entry.member.gname,
                            .mtime = entry.member.mtime,
                            .size = 0,
                            .linkname = entry.member.linkname};
    REQUIRE(writer.add(out, entry.content).has_value());
  }
  REQUIRE(writer.finish().has_value());
  return sink.data();
}

} // namespace

TEST_CASE("tar: lists the outer GPKG container without loading it")
{
  auto listing = list_tar_file(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"));
  REQUIRE(listing.has_value());
  CHECK(listing->format == TarFormat::ustar);
  REQUIRE(listing->members.size() == 4);
  CHECK(listing->members[0].name == "hello-1.2.3-r1-1/gpkg-1");
  CHECK(listing->members[0].size == 0);
  CHECK(listing->members[0].data_offset == 512);
  CHECK(listing->members[1].name == "hello-1.2.3-r1-1/metadata.tar.zst");
  CHECK(listing->members[1].size == 470);
  CHECK(listing->members[1].data_offset == 1024);
  CHECK(listing->members[1].header_offset == 512);
  CHECK(listing->members[2].name == "hello-1.2.3-r1-1/image.tar.zst");
  CHECK(listing->members[2].data_offset == 2048);
  CHECK(listing->members[3].name == "hello-1.2.3-r1-1/Manifest");
  CHECK(listing->members[3].size == 883);
  for (const auto& member : listing->members) {
    CHECK(member.type == TarEntryType::regular);
    CHECK(member.mode == 0644);
    CHECK(member.uid == 0);
  }
}

TEST_CASE("tar: rejects truncated and garbage input with a reason")
{
  auto truncated = list_tar_file(swarm::test::gpkg_sample("bad-truncated.gpkg.tar"));
  REQUIRE_FALSE(truncated.has_value());
  CHECK(truncated.error().message.find("truncated") != std::string::npos);
  auto garbage = list_tar_file(swarm::test::gpkg_sample("bad-not-a-tar.gpkg.tar"));
  REQUIRE_FALSE(garbage.has_value());
  CHECK(garbage.error().message.find("not a tar archive") != std::string::npos);
  auto tiny = list_tar_file(swarm::test::gpkg_sample("bad-tiny.gpkg.tar"));
  REQUIRE_FALSE(tiny.has_value());
  CHECK(tiny.error().message.find("truncated tar header") != std::string::npos);
  stream::StringSource empty("");
  TarReader reader(empty);
  CHECK_FALSE(reader.next().has_value());
}

TEST_CASE("tar: reads inner archives and the writer reproduces Python tarfile's bytes")
{
  // The outer container itself: same members, same bytes.
  const auto outer = read_bytes(swarm::test::gpkg_sample("hello-1.2.3-r1-1.gpkg.tar"));
  const auto outer_entries = entries_of(outer);
  CHECK(rewrite(outer_entries, TarDialect::ustar) == outer);

  // metadata.tar (no directory entries) and image.tar (directories, owner root).
  auto metadata = decompress(Compression::zstd, outer_entries[1].content, 1 << 24);
  REQUIRE(metadata.has_value());
  const auto metadata_entries = entries_of(*metadata);
  REQUIRE(metadata_entries.size() == 13);
  CHECK(metadata_entries[0].member.name == "metadata/repository");
  CHECK(metadata_entries[0].content == "gentoo\n");
  CHECK(metadata->size() % k_tar_record == 0);
  CHECK(rewrite(metadata_entries, TarDialect::ustar) == *metadata);

  auto image = decompress(Compression::zstd, outer_entries[2].content, 1 << 24);
  REQUIRE(image.has_value());
  const auto image_entries = entries_of(*image);
  REQUIRE(image_entries.size() == 5);
  CHECK(image_entries[0].member.name == "image/");
  CHECK(image_entries[0].member.type == TarEntryType::directory);
  CHECK(image_entries[0].member.uname == "root");
  CHECK(image_entries[4].member.name == "image/usr/bin/hello");
  CHECK(image_entries[4].member.mode == 0755);
  CHECK(rewrite(image_entries, TarDialect::ustar) == *image);
}

TEST_CASE("tar: long names: ustar prefix split, GNU ././@LongLink")
{
  const std::string long_name = "image/" + std::string(120, 'd') + "/" + std::string(90, 'f');
  for (auto dialect : {TarDialect::ustar, TarDialect::gnu}) {
    stream::StringSink sink;
    TarWriter writer(sink, dialect);
    TarWriteEntry entry;
    entry.name = long_name;
    REQUIRE(writer.add(entry, "content").has_value());
    TarWriteEntry link;
    link.name = "image/link";
    link.type = TarEntryType::symlink;
    link.linkname = std::string(150, 'l');
    const auto linked = writer.add(link);
    CHECK(linked.has_value() == (dialect == TarDialect::gnu));
    REQUIRE(writer.finish().has_value());
    CHECK(sink.data().size() % k_tar_record == 0);
    const auto entries = entries_of(sink.data());
    REQUIRE(entries.size() == (dialect == TarDialect::gnu ? 2u : 1u));
    CHECK(entries[0].member.name == long_name);
    CHECK(entries[0].content == "content");
    if (dialect == TarDialect::gnu) {
      CHECK(tar_header_format(sink.data()) == TarFormat::gnu);
      CHECK(sink.data().substr(0, 13) == "././@LongLink");
      CHECK(entries[1].member.linkname == std::string(150, 'l'));
      CHECK(entries[1].member.type == TarEntryType::symlink);
    } else {
      CHECK(tar_header_format(sink.data()) == TarFormat::ustar);
    }
  }
  // A name that no prefix split can store is refused in ustar.
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::ustar);
  TarWriteEntry entry;
  entry.name = std::string(300, 'x');
  CHECK_FALSE(writer.add(entry, "").has_value());
}

TEST_CASE("tar: a long-name header followed by the end-of-archive block is an error (fuzz regression)")
{
  // The long name belongs to the member after it; dropping it silently read as an empty archive.
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::gnu);
  TarWriteEntry entry;
  entry.name = "image/" + std::string(150, 'n');
  REQUIRE(writer.add(entry, "").has_value());
  REQUIRE(writer.finish().has_value());
  // Keep the ././@LongLink header and its name block, zero the member's own header.
  auto bytes = sink.data();
  std::fill(bytes.begin() + 2 * k_tar_block, bytes.begin() + 3 * k_tar_block, '\0');
  stream::StringSource source(bytes);
  auto entries = read_tar_entries(source, 1 << 20);
  REQUIRE_FALSE(entries.has_value());
  CHECK(entries.error().message == "tar archive ends after an extended header");
}

TEST_CASE("tar: pax path and size records, base-256 sizes")
{
  const std::string pax_records = "29 path=pax/a/very/long/name\n";
  REQUIRE(pax_records.size() == 29);
  std::string tar = raw_header("././@PaxHeader", 'x', octal_size(pax_records.size())) + padded(pax_records);
  tar += raw_header("short", '0', octal_size(5)) + padded("hello");
  // A base-256 size field: 0x80 then the big-endian value.
  std::string base256(12, '\0');
  base256[0] = static_cast<char>(0x80);
  base256[11] = 3;
  tar += raw_header("big", '0', base256) + padded("abc");
  tar += std::string(1024, '\0');
  const auto entries = entries_of(tar);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].member.name == "pax/a/very/long/name");
  CHECK(entries[0].content == "hello");
  CHECK(entries[1].member.name == "big");
  CHECK(entries[1].content == "abc");
}

TEST_CASE("tar: corrupt header inside an archive is an error, with its offset")
{
  stream::StringSink sink;
  TarWriter writer(sink, TarDialect::ustar);
  TarWriteEntry entry;
  entry.name = "a";
  REQUIRE(writer.add(entry, "x").has_value());
  entry.name = "b";
  REQUIRE(writer.add(entry, "y").has_value());
  REQUIRE(writer.finish().has_value());
  auto bytes = sink.data();
  bytes[1024 + 10] = 'Z'; // inside the second header's name
  stream::StringSource source(bytes);
  auto entries = read_tar_entries(source, 1 << 20);
  REQUIRE_FALSE(entries.has_value());
  CHECK(entries.error().message.find("byte 1024") != std::string::npos);

  fs::TempDir dir("tar-test");
  write_bytes(dir / "cut.tar", std::string_view(sink.data()).substr(0, 600));
  auto listing = list_tar_file(dir / "cut.tar");
  CHECK_FALSE(listing.has_value());
}
