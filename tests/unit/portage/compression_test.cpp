#include <doctest/doctest.h>

#include "core/byte_stream.hpp"
#include "portage/compression.hpp"

using namespace swarm;
using namespace swarm::portage;

namespace {

std::string sample_text()
{
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    text += "line " + std::to_string(i) + " of some compressible text\n";
  }
  return text;
}

// Reads a source in small, odd-sized pieces (as a tar reader pulling headers would).
std::string drain(stream::ByteSource& source)
{
  std::string out;
  char buffer[333];
  while (true) {
    auto got = source.read(buffer, sizeof buffer);
    REQUIRE(got.has_value());
    if (*got == 0) {
      return out;
    }
    out.append(buffer, *got);
  }
}

} // namespace

TEST_CASE("compression: round trip through every supported codec, streaming")
{
  const auto text = sample_text();
  for (auto codec : {Compression::none, Compression::zstd, Compression::xz, Compression::gzip, Compression::bzip2}) {
    CAPTURE(compression_name(codec));
    stream::StringSink sink;
    auto compressor = make_compressor(codec, sink);
    REQUIRE(compressor.has_value());
    for (size_t pos = 0; pos < text.size(); pos += 4096) {
      REQUIRE((*compressor)->write(std::string_view(text).substr(pos, 4096)).has_value());
    }
    REQUIRE((*compressor)->finish().has_value());
    if (codec != Compression::none) {
      CHECK(sink.data().size() < text.size() / 4);
      CHECK(sniff_compression(sink.data()) == codec);
    }
    stream::StringSource source(sink.data());
    auto decompressor = make_decompressor(codec, source);
    REQUIRE(decompressor.has_value());
    CHECK(drain(**decompressor) == text);
  }
}

TEST_CASE("compression: names and suffixes as Portage uses them")
{
  CHECK(compression_from_tar_name("hello-1/metadata.tar.zst") == Compression::zstd);
  CHECK(compression_from_tar_name("image.tar.xz") == Compression::xz);
  CHECK(compression_from_tar_name("image.tar.gz") == Compression::gzip);
  CHECK(compression_from_tar_name("image.tar.bz2") == Compression::bzip2);
  CHECK(compression_from_tar_name("image.tar") == Compression::none);
  CHECK(compression_from_tar_name("image.tar.lz4") == Compression::lz4);
  CHECK(compression_from_tar_name("image.tar.lz") == Compression::lzip);
  CHECK_FALSE(compression_from_tar_name("image.tar.rar").has_value());
  CHECK_FALSE(compression_from_tar_name("image.zip").has_value());
  CHECK(compression_from_name("zstd") == Compression::zstd);
  CHECK(compression_from_name("") == Compression::none);
  CHECK_FALSE(compression_from_name("brotli").has_value());
  CHECK(compression_suffix(Compression::zstd) == ".zst");
  CHECK(compression_suffix(Compression::lzop) == ".lzo");
}

TEST_CASE("compression: unsupported codecs are a clear error")
{
  stream::StringSource source("whatever");
  for (auto codec : {Compression::lz4, Compression::lzip, Compression::lzop}) {
    CHECK_FALSE(compression_supported(codec));
    auto decompressor = make_decompressor(codec, source);
    REQUIRE_FALSE(decompressor.has_value());
    CHECK(decompressor.error().message.find(std::string(compression_name(codec))) != std::string::npos);
    stream::StringSink sink;
    CHECK_FALSE(make_compressor(codec, sink).has_value());
  }
}

TEST_CASE("compression: magic sniffing for diagnostics")
{
  CHECK(sniff_compression("\x28\xb5\x2f\xfd....") == Compression::zstd);
  CHECK(sniff_compression(std::string_view("\xfd"
                                           "7zXZ\0..",
                                           8)) == Compression::xz);
  CHECK(sniff_compression("\x1f\x8b\x08") == Compression::gzip);
  CHECK(sniff_compression("BZh91AY") == Compression::bzip2);
  CHECK(sniff_compression("LZIP\x01") == Compression::lzip);
  CHECK_FALSE(sniff_compression("plain text").has_value());
}

TEST_CASE("compression: truncated and corrupt input is an error, never a silent short read")
{
  const auto text = sample_text();
  for (auto codec : {Compression::zstd, Compression::xz, Compression::gzip, Compression::bzip2}) {
    CAPTURE(compression_name(codec));
    auto packed = compress(codec, text);
    REQUIRE(packed.has_value());
    auto truncated = decompress(codec, std::string_view(*packed).substr(0, packed->size() / 2), 1 << 24);
    CHECK_FALSE(truncated.has_value());
    auto garbage = decompress(codec, "this is not compressed data at all, not even close", 1 << 24);
    CHECK_FALSE(garbage.has_value());
    auto limited = decompress(codec, *packed, 1000);
    CHECK_FALSE(limited.has_value());
  }
}

TEST_CASE("compression: concatenated gzip members and zstd frames decompress as one")
{
  for (auto codec : {Compression::zstd, Compression::gzip, Compression::bzip2, Compression::xz}) {
    CAPTURE(compression_name(codec));
    auto a = compress(codec, "first part, ");
    auto b = compress(codec, "second part");
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    auto both = decompress(codec, *a + *b, 1 << 20);
    REQUIRE(both.has_value());
    CHECK(*both == "first part, second part");
  }
}

TEST_CASE("compression: gzip header carries the requested mtime")
{
  CompressOptions options;
  options.gzip_mtime = 1689963671;
  auto packed = compress(Compression::gzip, "x", options);
  REQUIRE(packed.has_value());
  const auto& bytes = *packed;
  const uint32_t mtime = static_cast<unsigned char>(bytes[4]) | static_cast<unsigned char>(bytes[5]) << 8 |
                         static_cast<unsigned char>(bytes[6]) << 16 |
                         static_cast<uint32_t>(static_cast<unsigned char>(bytes[7])) << 24;
  CHECK(mtime == 1689963671u);
}
