#pragma once
// Pull sources and push sinks of bytes, so readers, decompressors and hashers can be chained
// over files of any size without loading them whole.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace swarm::stream {

// A source of bytes read in order. read() returns 0 only at the end.
class ByteSource {
public:
  virtual ~ByteSource() = default;
  virtual Result<size_t> read(char* buffer, size_t size) = 0;
  // Discards `size` bytes; fails if the source ends first. Seekable sources override it.
  virtual Result<> skip(uint64_t size);
};

// A destination of bytes. finish() flushes whatever the sink buffers (compressors) and must be
// called once after the last write.
class ByteSink {
public:
  virtual ~ByteSink() = default;
  virtual Result<> write(const char* data, size_t size) = 0;
  Result<> write(std::string_view data) { return write(data.data(), data.size()); }
  virtual Result<> finish() { return {}; }
};

// Reads exactly `size` bytes or fails with "unexpected end of data".
Result<> read_exact(ByteSource& source, char* buffer, size_t size);
// Reads to the end; fails if more than `limit` bytes come.
Result<std::string> read_all(ByteSource& source, size_t limit);
// Copies the whole source into the sink (without finish()).
Result<uint64_t> copy(ByteSource& source, ByteSink& sink);

// Reads from a string the caller keeps alive.
class StringSource : public ByteSource {
public:
  explicit StringSource(std::string_view data) : m_data(data) {}
  Result<size_t> read(char* buffer, size_t size) override;
  Result<> skip(uint64_t size) override;

private:
  std::string_view m_data;
  size_t m_pos = 0;
};

// Appends to a string.
class StringSink : public ByteSink {
public:
  Result<> write(const char* data, size_t size) override;
  using ByteSink::write;
  std::string& data() { return m_data; }

private:
  std::string m_data;
};

// An open file descriptor, closed on destruction.
class File {
public:
  File() = default;
  explicit File(int fd) : m_fd(fd) {}
  ~File();
  File(File&& other) noexcept : m_fd(other.release()) {}
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  static Result<File> open_read(const std::filesystem::path& path);
  int fd() const { return m_fd; }
  int release();
  Result<uint64_t> size() const;
  // Reads exactly `size` bytes at `offset` (pread), failing on a short file.
  Result<> read_at(uint64_t offset, char* buffer, size_t size) const;

private:
  int m_fd = -1;
};

// Reads the byte range [offset, offset + length) of a file the caller keeps open.
class FileRangeSource : public ByteSource {
public:
  FileRangeSource(const File& file, uint64_t offset, uint64_t length)
      : m_file(file), m_pos(offset), m_end(offset + length)
  {}
  Result<size_t> read(char* buffer, size_t size) override;
  Result<> skip(uint64_t size) override;

private:
  const File& m_file;
  uint64_t m_pos;
  uint64_t m_end;
};

// Writes to a file descriptor the caller keeps open.
class FdSink : public ByteSink {
public:
  explicit FdSink(int fd) : m_fd(fd) {}
  Result<> write(const char* data, size_t size) override;
  using ByteSink::write;
  uint64_t written() const { return m_written; }

private:
  int m_fd;
  uint64_t m_written = 0;
};

} // namespace swarm::stream
