#include "core/byte_stream.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace swarm::stream {

Result<> ByteSource::skip(uint64_t size)
{
  char buffer[65536];
  while (size > 0) {
    const auto want = static_cast<size_t>(std::min<uint64_t>(size, sizeof buffer));
    auto got = read(buffer, want);
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      return fail(ErrorKind::invalid, "unexpected end of data");
    }
    size -= *got;
  }
  return {};
}

Result<> read_exact(ByteSource& source, char* buffer, size_t size)
{
  size_t done = 0;
  while (done < size) {
    auto got = source.read(buffer + done, size - done);
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      return fail(ErrorKind::invalid, "unexpected end of data");
    }
    done += *got;
  }
  return {};
}

Result<std::string> read_all(ByteSource& source, size_t limit)
{
  std::string out;
  char buffer[65536];
  while (true) {
    auto got = source.read(buffer, sizeof buffer);
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      return out;
    }
    if (out.size() + *got > limit) {
      return fail(ErrorKind::too_large, "data larger than {} bytes", limit);
    }
    out.append(buffer, *got);
  }
}

Result<uint64_t> copy(ByteSource& source, ByteSink& sink)
{
  std::vector<char> buffer(1 << 18);
  uint64_t total = 0;
  while (true) {
    auto got = source.read(buffer.data(), buffer.size());
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      return total;
    }
    if (auto written = sink.write(buffer.data(), *got); !written) {
      return fail(written.error());
    }
    total += *got;
  }
}

Result<size_t> StringSource::read(char* buffer, size_t size)
{
  const auto n = std::min(size, m_data.size() - m_pos);
  std::memcpy(buffer, m_data.data() + m_pos, n);
  m_pos += n;
  return n;
}

Result<> StringSource::skip(uint64_t size)
{
  if (size > m_data.size() - m_pos) {
    m_pos = m_data.size();
    return fail(ErrorKind::invalid, "unexpected end of data");
  }
  m_pos += static_cast<size_t>(size);
  return {};
}

Result<> StringSink::write(const char* data, size_t size)
{
  m_data.append(data, size);
  return {};
}

File::~File()
{
  if (m_fd >= 0) {
    ::close(m_fd);
  }
}

File& File::operator=(File&& other) noexcept
{
  if (this != &other) {
    if (m_fd >= 0) {
      ::close(m_fd);
    }
    m_fd = other.release();
  }
  return *this;
}

int File::release()
{
  const int fd = m_fd;
  m_fd = -1;
  return fd;
}

Result<File> File::open_read(const std::filesystem::path& path)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno == ENOENT ? ErrorKind::not_found : ErrorKind::io, "cannot open {}: {}", path.string(),
                std::strerror(errno));
  }
  return File(fd);
}

Result<uint64_t> File::size() const
{
  struct stat st {};
  if (::fstat(m_fd, &st) != 0) {
    return fail(ErrorKind::io, "cannot stat: {}", std::strerror(errno));
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<> File::read_at(uint64_t offset, char* buffer, size_t size) const
{
  size_t done = 0;
  while (done < size) {
    const auto got = ::pread(m_fd, buffer + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorKind::io, "cannot read: {}", std::strerror(errno));
    }
    if (got == 0) {
      return fail(ErrorKind::invalid, "unexpected end of file at byte {}", offset + done);
    }
    done += static_cast<size_t>(got);
  }
  return {};
}

Result<size_t> FileRangeSource::read(char* buffer, size_t size)
{
  const auto n = static_cast<size_t>(std::min<uint64_t>(size, m_end - m_pos));
  if (n == 0) {
    return size_t{0};
  }
  if (auto done = m_file.read_at(m_pos, buffer, n); !done) {
    return fail(done.error());
  }
  m_pos += n;
  return n;
}

Result<> FileRangeSource::skip(uint64_t size)
{
  if (size > m_end - m_pos) {
    m_pos = m_end;
    return fail(ErrorKind::invalid, "unexpected end of data");
  }
  m_pos += size;
  return {};
}

Result<> FdSink::write(const char* data, size_t size)
{
  size_t done = 0;
  while (done < size) {
    const auto put = ::write(m_fd, data + done, size - done);
    if (put < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail(ErrorKind::io, "cannot write: {}", std::strerror(errno));
    }
    done += static_cast<size_t>(put);
  }
  m_written += size;
  return {};
}

} // namespace swarm::stream
