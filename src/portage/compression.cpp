#include "portage/compression.hpp"

#include <array>
#include <cstring>
#include <vector>

#include <bzlib.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

namespace swarm::portage {

namespace {

constexpr size_t k_chunk = 1 << 16;

struct CodecInfo {
  Compression compression;
  std::string_view name;
  std::string_view suffix;
};

constexpr std::array<CodecInfo, 8> k_codecs{{
  {Compression::none, "none", ""},
  {Compression::gzip, "gzip", ".gz"},
  {Compression::bzip2, "bzip2", ".bz2"},
  {Compression::xz, "xz", ".xz"},
  {Compression::zstd, "zstd", ".zst"},
  {Compression::lz4, "lz4", ".lz4"},
  {Compression::lzip, "lzip", ".lz"},
  {Compression::lzop, "lzop", ".lzo"},
}};

const CodecInfo& info(Compression compression)
{
  for (const auto& codec : k_codecs) {
    if (codec.compression == compression) {
      return codec;
    }
  }
  return k_codecs[0];
}

// Input side shared by every decompressor: a buffer refilled from the compressed source.
class InputBuffer {
public:
  explicit InputBuffer(stream::ByteSource& input) : m_input(input), m_buffer(k_chunk) {}

  // Makes sure some input is available unless the source is exhausted.
  Result<> fill()
  {
    if (m_pos < m_len || m_eof) {
      return {};
    }
    auto got = m_input.read(m_buffer.data(), m_buffer.size());
    if (!got) {
      return fail(got.error());
    }
    m_pos = 0;
    m_len = *got;
    m_eof = *got == 0;
    return {};
  }
  const char* data() const { return m_buffer.data() + m_pos; }
  size_t available() const { return m_len - m_pos; }
  void consume(size_t n) { m_pos += n; }
  bool eof() const { return m_eof && m_pos == m_len; }

private:
  stream::ByteSource& m_input;
  std::vector<char> m_buffer;
  size_t m_pos = 0;
  size_t m_len = 0;
  bool m_eof = false;
};

class PassThrough : public stream::ByteSource {
public:
  explicit PassThrough(stream::ByteSource& input) : m_input(input) {}
  Result<size_t> read(char* buffer, size_t size) override { return m_input.read(buffer, size); }
  Result<> skip(uint64_t size) override { return m_input.skip(size); }

private:
  stream::ByteSource& m_input;
};

class ZstdSource : public stream::ByteSource {
public:
  explicit ZstdSource(stream::ByteSource& input) : m_in(input), m_ctx(ZSTD_createDCtx())
  {
    // Portage decompresses with `zstd -d --long=31`: allow windows that large.
    ZSTD_DCtx_setParameter(m_ctx, ZSTD_d_windowLogMax, 31);
  }
  ~ZstdSource() override { ZSTD_freeDCtx(m_ctx); }
  ZstdSource(const ZstdSource&) = delete;
  ZstdSource& operator=(const ZstdSource&) = delete;

  Result<size_t> read(char* buffer, size_t size) override
  {
    ZSTD_outBuffer out{buffer, size, 0};
    while (out.pos == 0) {
      if (auto filled = m_in.fill(); !filled) {
        return fail(filled.error());
      }
      if (m_in.eof()) {
        if (!m_frame_done) {
          return fail(ErrorKind::invalid, "zstd: truncated input");
        }
        return size_t{0};
      }
      ZSTD_inBuffer in{m_in.data(), m_in.available(), 0};
      const auto ret = ZSTD_decompressStream(m_ctx, &out, &in);
      m_in.consume(in.pos);
      if (ZSTD_isError(ret)) {
        return fail(ErrorKind::invalid, "zstd: {}", ZSTD_getErrorName(ret));
      }
      m_frame_done = ret == 0;
    }
    return out.pos;
  }

private:
  InputBuffer m_in;
  ZSTD_DCtx* m_ctx;
  bool m_frame_done = false;
};

class XzSource : public stream::ByteSource {
public:
  explicit XzSource(stream::ByteSource& input) : m_in(input)
  {
    m_ready = lzma_stream_decoder(&m_strm, UINT64_MAX, LZMA_CONCATENATED) == LZMA_OK;
  }
  ~XzSource() override { lzma_end(&m_strm); }
  XzSource(const XzSource&) = delete;
  XzSource& operator=(const XzSource&) = delete;

  Result<size_t> read(char* buffer, size_t size) override
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "xz: cannot initialise decoder");
    }
    if (m_done) {
      return size_t{0};
    }
    m_strm.next_out = reinterpret_cast<uint8_t*>(buffer);
    m_strm.avail_out = size;
    while (m_strm.avail_out == size) {
      if (auto filled = m_in.fill(); !filled) {
        return fail(filled.error());
      }
      m_strm.next_in = reinterpret_cast<const uint8_t*>(m_in.data());
      m_strm.avail_in = m_in.available();
      const auto action = m_in.eof() ? LZMA_FINISH : LZMA_RUN;
      const auto ret = lzma_code(&m_strm, action);
      m_in.consume(m_in.available() - m_strm.avail_in);
      if (ret == LZMA_STREAM_END) {
        m_done = true;
        break;
      }
      if (ret != LZMA_OK) {
        return fail(ErrorKind::invalid, "xz: {}", ret == LZMA_BUF_ERROR ? "truncated input" : "corrupt data");
      }
    }
    return size - m_strm.avail_out;
  }

private:
  InputBuffer m_in;
  lzma_stream m_strm = LZMA_STREAM_INIT;
  bool m_ready = false;
  bool m_done = false;
};

class GzipSource : public stream::ByteSource {
public:
  explicit GzipSource(stream::ByteSource& input) : m_in(input)
  {
    std::memset(&m_strm, 0, sizeof m_strm);
    m_ready = inflateInit2(&m_strm, 15 + 16) == Z_OK;
  }
  ~GzipSource() override { inflateEnd(&m_strm); }
  GzipSource(const GzipSource&) = delete;
  GzipSource& operator=(const GzipSource&) = delete;

  Result<size_t> read(char* buffer, size_t size) override
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "gzip: cannot initialise decoder");
    }
    m_strm.next_out = reinterpret_cast<Bytef*>(buffer);
    m_strm.avail_out = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    const auto want = m_strm.avail_out;
    while (m_strm.avail_out == want) {
      if (auto filled = m_in.fill(); !filled) {
        return fail(filled.error());
      }
      if (m_in.eof()) {
        if (!m_member_done) {
          return fail(ErrorKind::invalid, "gzip: truncated input");
        }
        break;
      }
      if (m_member_done) {
        // Another gzip member follows (gzip -d reads concatenated members).
        inflateReset(&m_strm);
        m_member_done = false;
      }
      m_strm.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(m_in.data()));
      m_strm.avail_in = static_cast<uInt>(m_in.available());
      const auto ret = inflate(&m_strm, Z_NO_FLUSH);
      m_in.consume(m_in.available() - m_strm.avail_in);
      if (ret == Z_STREAM_END) {
        m_member_done = true;
        continue;
      }
      if (ret != Z_OK && ret != Z_BUF_ERROR) {
        return fail(ErrorKind::invalid, "gzip: {}", m_strm.msg != nullptr ? m_strm.msg : "corrupt data");
      }
    }
    return static_cast<size_t>(want - m_strm.avail_out);
  }

private:
  InputBuffer m_in;
  z_stream m_strm;
  bool m_ready = false;
  bool m_member_done = false;
};

class Bzip2Source : public stream::ByteSource {
public:
  explicit Bzip2Source(stream::ByteSource& input) : m_in(input) { init(); }
  ~Bzip2Source() override { BZ2_bzDecompressEnd(&m_strm); }
  Bzip2Source(const Bzip2Source&) = delete;
  Bzip2Source& operator=(const Bzip2Source&) = delete;

  Result<size_t> read(char* buffer, size_t size) override
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "bzip2: cannot initialise decoder");
    }
    m_strm.next_out = buffer;
    m_strm.avail_out = static_cast<unsigned>(std::min<size_t>(size, 1u << 30));
    const auto want = m_strm.avail_out;
    while (m_strm.avail_out == want) {
      if (auto filled = m_in.fill(); !filled) {
        return fail(filled.error());
      }
      if (m_in.eof()) {
        if (!m_stream_done) {
          return fail(ErrorKind::invalid, "bzip2: truncated input");
        }
        break;
      }
      if (m_stream_done) {
        // Concatenated bzip2 streams (pbzip2, lbzip2) decompress as one.
        char* next_out = m_strm.next_out;
        const unsigned avail_out = m_strm.avail_out;
        BZ2_bzDecompressEnd(&m_strm);
        init();
        m_strm.next_out = next_out;
        m_strm.avail_out = avail_out;
        m_stream_done = false;
      }
      m_strm.next_in = const_cast<char*>(m_in.data());
      m_strm.avail_in = static_cast<unsigned>(m_in.available());
      const auto ret = BZ2_bzDecompress(&m_strm);
      m_in.consume(m_in.available() - m_strm.avail_in);
      if (ret == BZ_STREAM_END) {
        m_stream_done = true;
        continue;
      }
      if (ret != BZ_OK) {
        return fail(ErrorKind::invalid, "bzip2: corrupt data (code {})", ret);
      }
    }
    return static_cast<size_t>(want - m_strm.avail_out);
  }

private:
  void init()
  {
    std::memset(&m_strm, 0, sizeof m_strm);
    m_ready = BZ2_bzDecompressInit(&m_strm, 0, 0) == BZ_OK;
  }

  InputBuffer m_in;
  bz_stream m_strm;
  bool m_ready = false;
  bool m_stream_done = false;
};

class ZstdSink : public stream::ByteSink {
public:
  ZstdSink(stream::ByteSink& output, int level)
      : m_out(output), m_ctx(ZSTD_createCCtx()), m_buffer(ZSTD_CStreamOutSize())
  {
    ZSTD_CCtx_setParameter(m_ctx, ZSTD_c_compressionLevel, level == 0 ? 3 : level);
    ZSTD_CCtx_setParameter(m_ctx, ZSTD_c_checksumFlag, 1);
  }
  ~ZstdSink() override { ZSTD_freeCCtx(m_ctx); }
  ZstdSink(const ZstdSink&) = delete;
  ZstdSink& operator=(const ZstdSink&) = delete;

  Result<> write(const char* data, size_t size) override { return run(data, size, ZSTD_e_continue); }
  using ByteSink::write;
  Result<> finish() override { return run(nullptr, 0, ZSTD_e_end); }

private:
  Result<> run(const char* data, size_t size, ZSTD_EndDirective mode)
  {
    ZSTD_inBuffer in{data, size, 0};
    while (true) {
      ZSTD_outBuffer out{m_buffer.data(), m_buffer.size(), 0};
      const auto remaining = ZSTD_compressStream2(m_ctx, &out, &in, mode);
      if (ZSTD_isError(remaining)) {
        return fail(ErrorKind::internal, "zstd: {}", ZSTD_getErrorName(remaining));
      }
      if (auto put = m_out.write(m_buffer.data(), out.pos); !put) {
        return put;
      }
      const bool done = mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size;
      if (done) {
        return {};
      }
    }
  }

  stream::ByteSink& m_out;
  ZSTD_CCtx* m_ctx;
  std::vector<char> m_buffer;
};

class XzSink : public stream::ByteSink {
public:
  XzSink(stream::ByteSink& output, int level) : m_out(output), m_buffer(k_chunk)
  {
    m_ready = lzma_easy_encoder(&m_strm, static_cast<uint32_t>(level == 0 ? 6 : level), LZMA_CHECK_CRC64) == LZMA_OK;
  }
  ~XzSink() override { lzma_end(&m_strm); }
  XzSink(const XzSink&) = delete;
  XzSink& operator=(const XzSink&) = delete;

  Result<> write(const char* data, size_t size) override { return run(data, size, LZMA_RUN); }
  using ByteSink::write;
  Result<> finish() override { return run(nullptr, 0, LZMA_FINISH); }

private:
  Result<> run(const char* data, size_t size, lzma_action action)
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "xz: cannot initialise encoder");
    }
    m_strm.next_in = reinterpret_cast<const uint8_t*>(data);
    m_strm.avail_in = size;
    while (true) {
      m_strm.next_out = reinterpret_cast<uint8_t*>(m_buffer.data());
      m_strm.avail_out = m_buffer.size();
      const auto ret = lzma_code(&m_strm, action);
      if (ret != LZMA_OK && ret != LZMA_STREAM_END) {
        return fail(ErrorKind::internal, "xz: encoder error {}", static_cast<int>(ret));
      }
      if (auto put = m_out.write(m_buffer.data(), m_buffer.size() - m_strm.avail_out); !put) {
        return put;
      }
      if (action == LZMA_FINISH ? ret == LZMA_STREAM_END : m_strm.avail_in == 0) {
        return {};
      }
    }
  }

  stream::ByteSink& m_out;
  lzma_stream m_strm = LZMA_STREAM_INIT;
  std::vector<char> m_buffer;
  bool m_ready = false;
};

class GzipSink : public stream::ByteSink {
public:
  GzipSink(stream::ByteSink& output, int level, uint32_t mtime) : m_out(output), m_buffer(k_chunk)
  {
    std::memset(&m_strm, 0, sizeof m_strm);
    std::memset(&m_header, 0, sizeof m_header);
    m_ready = deflateInit2(&m_strm, level == 0 ? 6 : level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    m_header.time = mtime;
    m_header.os = 255; // "unknown", as Python's gzip module writes
    m_ready = m_ready && deflateSetHeader(&m_strm, &m_header) == Z_OK;
  }
  ~GzipSink() override { deflateEnd(&m_strm); }
  GzipSink(const GzipSink&) = delete;
  GzipSink& operator=(const GzipSink&) = delete;

  Result<> write(const char* data, size_t size) override
  {
    // zlib counts in uInt: feed huge buffers in slices.
    while (size > 0) {
      const auto slice = std::min<size_t>(size, 1u << 30);
      if (auto done = run(data, slice, Z_NO_FLUSH); !done) {
        return done;
      }
      data += slice;
      size -= slice;
    }
    return {};
  }
  using ByteSink::write;
  Result<> finish() override { return run(nullptr, 0, Z_FINISH); }

private:
  Result<> run(const char* data, size_t size, int flush)
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "gzip: cannot initialise encoder");
    }
    m_strm.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    m_strm.avail_in = static_cast<uInt>(size);
    while (true) {
      m_strm.next_out = reinterpret_cast<Bytef*>(m_buffer.data());
      m_strm.avail_out = static_cast<uInt>(m_buffer.size());
      const auto ret = deflate(&m_strm, flush);
      if (ret == Z_STREAM_ERROR) {
        return fail(ErrorKind::internal, "gzip: encoder error");
      }
      if (auto put = m_out.write(m_buffer.data(), m_buffer.size() - m_strm.avail_out); !put) {
        return put;
      }
      if (flush == Z_FINISH ? ret == Z_STREAM_END : m_strm.avail_in == 0) {
        return {};
      }
    }
  }

  stream::ByteSink& m_out;
  z_stream m_strm;
  gz_header m_header;
  std::vector<char> m_buffer;
  bool m_ready = false;
};

class Bzip2Sink : public stream::ByteSink {
public:
  Bzip2Sink(stream::ByteSink& output, int level) : m_out(output), m_buffer(k_chunk)
  {
    std::memset(&m_strm, 0, sizeof m_strm);
    m_ready = BZ2_bzCompressInit(&m_strm, level == 0 ? 9 : level, 0, 0) == BZ_OK;
  }
  ~Bzip2Sink() override { BZ2_bzCompressEnd(&m_strm); }
  Bzip2Sink(const Bzip2Sink&) = delete;
  Bzip2Sink& operator=(const Bzip2Sink&) = delete;

  Result<> write(const char* data, size_t size) override
  {
    while (size > 0) {
      const auto slice = std::min<size_t>(size, 1u << 30);
      if (auto done = run(data, slice, BZ_RUN); !done) {
        return done;
      }
      data += slice;
      size -= slice;
    }
    return {};
  }
  using ByteSink::write;
  Result<> finish() override { return run(nullptr, 0, BZ_FINISH); }

private:
  Result<> run(const char* data, size_t size, int action)
  {
    if (!m_ready) {
      return fail(ErrorKind::internal, "bzip2: cannot initialise encoder");
    }
    m_strm.next_in = const_cast<char*>(data);
    m_strm.avail_in = static_cast<unsigned>(size);
    while (true) {
      m_strm.next_out = m_buffer.data();
      m_strm.avail_out = static_cast<unsigned>(m_buffer.size());
      const auto ret = BZ2_bzCompress(&m_strm, action);
      if (ret < 0) {
        return fail(ErrorKind::internal, "bzip2: encoder error {}", ret);
      }
      if (auto put = m_out.write(m_buffer.data(), m_buffer.size() - m_strm.avail_out); !put) {
        return put;
      }
      if (action == BZ_FINISH ? ret == BZ_STREAM_END : m_strm.avail_in == 0) {
        return {};
      }
    }
  }

  stream::ByteSink& m_out;
  bz_stream m_strm;
  std::vector<char> m_buffer;
  bool m_ready = false;
};

class PassThroughSink : public stream::ByteSink {
public:
  explicit PassThroughSink(stream::ByteSink& output) : m_out(output) {}
  Result<> write(const char* data, size_t size) override { return m_out.write(data, size); }
  using ByteSink::write;

private:
  stream::ByteSink& m_out;
};

std::unexpected<Error> unsupported(Compression compression)
{
  return fail(ErrorKind::invalid, "unsupported compression {} (swarm reads and writes zstd, xz, gzip, bzip2)",
              compression_name(compression));
}

} // namespace

std::string_view compression_name(Compression compression)
{
  return info(compression).name;
}

std::optional<Compression> compression_from_name(std::string_view name)
{
  if (name.empty()) {
    return Compression::none;
  }
  for (const auto& codec : k_codecs) {
    if (codec.name == name) {
      return codec.compression;
    }
  }
  return std::nullopt;
}

std::string_view compression_suffix(Compression compression)
{
  return info(compression).suffix;
}

bool compression_supported(Compression compression)
{
  switch (compression) {
  case Compression::none:
  case Compression::gzip:
  case Compression::bzip2:
  case Compression::xz:
  case Compression::zstd:
    return true;
  case Compression::lz4:
  case Compression::lzip:
  case Compression::lzop:
    return false;
  }
  return false;
}

Result<Compression> compression_from_tar_name(std::string_view name)
{
  const auto slash = name.rfind('/');
  if (slash != std::string_view::npos) {
    name.remove_prefix(slash + 1);
  }
  const auto tar = name.rfind(".tar");
  if (tar == std::string_view::npos) {
    return fail(ErrorKind::invalid, "'{}' is not named like a tar archive (*.tar[.suffix])", name);
  }
  const auto suffix = name.substr(tar + 4);
  for (const auto& codec : k_codecs) {
    if (codec.suffix == suffix) {
      return codec.compression;
    }
  }
  return fail(ErrorKind::invalid, "'{}' has an unknown compression suffix '{}'", name, suffix);
}

std::optional<Compression> sniff_compression(std::string_view head)
{
  auto starts = [head](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (head.size() >= 4 && head[0] >= '\x22' && head[0] <= '\x28' && head.substr(1, 3) == "\xb5\x2f\xfd") {
    return Compression::zstd;
  }
  if (starts(std::string_view("\xfd"
                              "7zXZ\0",
                              6))) {
    return Compression::xz;
  }
  if (starts("\x1f\x8b")) {
    return Compression::gzip;
  }
  if (starts("BZh")) {
    return Compression::bzip2;
  }
  if (starts("\x04\x22\x4d\x18")) {
    return Compression::lz4;
  }
  if (starts("LZIP")) {
    return Compression::lzip;
  }
  if (starts("\x89LZO\x00\x0d\x0a\x1a\x0a")) {
    return Compression::lzop;
  }
  return std::nullopt;
}

Result<std::unique_ptr<stream::ByteSource>> make_decompressor(Compression compression, stream::ByteSource& input)
{
  switch (compression) {
  case Compression::none:
    return std::make_unique<PassThrough>(input);
  case Compression::zstd:
    return std::make_unique<ZstdSource>(input);
  case Compression::xz:
    return std::make_unique<XzSource>(input);
  case Compression::gzip:
    return std::make_unique<GzipSource>(input);
  case Compression::bzip2:
    return std::make_unique<Bzip2Source>(input);
  case Compression::lz4:
  case Compression::lzip:
  case Compression::lzop:
    break;
  }
  return unsupported(compression);
}

Result<std::unique_ptr<stream::ByteSink>> make_compressor(Compression compression, stream::ByteSink& output,
                                                          const CompressOptions& options)
{
  switch (compression) {
  case Compression::none:
    return std::make_unique<PassThroughSink>(output);
  case Compression::zstd:
    return std::make_unique<ZstdSink>(output, options.level);
  case Compression::xz:
    return std::make_unique<XzSink>(output, options.level);
  case Compression::gzip:
    return std::make_unique<GzipSink>(output, options.level, options.gzip_mtime);
  case Compression::bzip2:
    return std::make_unique<Bzip2Sink>(output, options.level);
  case Compression::lz4:
  case Compression::lzip:
  case Compression::lzop:
    break;
  }
  return unsupported(compression);
}

Result<std::string> compress(Compression compression, std::string_view data, const CompressOptions& options)
{
  stream::StringSink sink;
  auto compressor = make_compressor(compression, sink, options);
  if (!compressor) {
    return fail(compressor.error());
  }
  if (auto put = (*compressor)->write(data); !put) {
    return fail(put.error());
  }
  if (auto done = (*compressor)->finish(); !done) {
    return fail(done.error());
  }
  return std::move(sink.data());
}

Result<std::string> decompress(Compression compression, std::string_view data, size_t limit)
{
  stream::StringSource source(data);
  auto decompressor = make_decompressor(compression, source);
  if (!decompressor) {
    return fail(decompressor.error());
  }
  return stream::read_all(**decompressor, limit);
}

Result<size_t> BoundedSource::read(char* buffer, size_t size)
{
  // One byte more than the limit is asked for, to tell "exactly the limit" from "more".
  const uint64_t room = m_limit - std::min(m_limit, m_consumed);
  const auto want = static_cast<size_t>(std::min<uint64_t>(size, room + 1));
  auto got = m_inner.read(buffer, want);
  if (!got) {
    return got;
  }
  m_consumed += *got;
  if (m_consumed > m_limit) {
    return fail(ErrorKind::too_large, "{} is larger than {} bytes once decompressed", m_what, m_limit);
  }
  return got;
}

} // namespace swarm::portage
