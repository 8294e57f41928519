#pragma once
// Binary-package compression (BINPKG_COMPRESS): zstd, xz, gzip, bzip2 in and out, streaming.
// Portage picks the codec from a member's file name suffix (gpkg.py
// _extract_filename_compression); magic-byte sniffing is only for diagnostics.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/byte_stream.hpp"
#include "core/error.hpp"

namespace swarm::portage {

enum class Compression { none, gzip, bzip2, xz, zstd, lz4, lzip, lzop };

// BINPKG_COMPRESS name: "none", "gzip", "bzip2", "xz", "zstd", "lz4", "lzip", "lzop".
std::string_view compression_name(Compression compression);
// Inverse of compression_name; "" also means none (as Portage reads BINPKG_COMPRESS).
std::optional<Compression> compression_from_name(std::string_view name);
// File suffix Portage appends: "" (none), ".gz", ".bz2", ".xz", ".zst", ".lz4", ".lz", ".lzo".
std::string_view compression_suffix(Compression compression);
// True for the codecs swarm can read and write (none, gzip, bzip2, xz, zstd).
bool compression_supported(Compression compression);

// The codec of a tar member named like `metadata.tar.zst` (basename or path): the suffix after
// ".tar". A name not of the form `*.tar[.suffix]` or an unknown suffix is an error.
Result<Compression> compression_from_tar_name(std::string_view name);

// Diagnostics only: the codec whose magic bytes start `head` (compression_probe.py), if any.
std::optional<Compression> sniff_compression(std::string_view head);

// A source that yields the decompressed bytes of `input`. Unsupported codecs (lz4, lzip,
// lzop) are a clear error. Concatenated frames/members are read through to the end.
Result<std::unique_ptr<stream::ByteSource>> make_decompressor(Compression compression, stream::ByteSource& input);

// A sink that compresses into `output`; finish() ends the stream (it does not finish `output`).
// level 0 = the codec's usual default (zstd 3, xz 6, gzip 6, bzip2 9). `gzip_mtime` is
// stored in the gzip header.
struct CompressOptions {
  int level = 0;
  uint32_t gzip_mtime = 0;
};
Result<std::unique_ptr<stream::ByteSink>> make_compressor(Compression compression, stream::ByteSink& output,
                                                          const CompressOptions& options = {});

// Passes `inner` through, failing (too_large, naming `what`) once more than `limit` bytes have
// come: a decompression bomb is stopped while streaming, never held in memory.
class BoundedSource : public stream::ByteSource {
public:
  BoundedSource(stream::ByteSource& inner, uint64_t limit, std::string what)
      : m_inner(inner), m_limit(limit), m_what(std::move(what))
  {}
  Result<size_t> read(char* buffer, size_t size) override;
  uint64_t consumed() const { return m_consumed; }

private:
  stream::ByteSource& m_inner;
  uint64_t m_limit;
  std::string m_what;
  uint64_t m_consumed = 0;
};

// Whole-buffer helpers for small data; decompress fails past `limit` output bytes.
Result<std::string> compress(Compression compression, std::string_view data, const CompressOptions& options = {});
Result<std::string> decompress(Compression compression, std::string_view data, size_t limit);

} // namespace swarm::portage
