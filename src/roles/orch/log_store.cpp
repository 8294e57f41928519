// Build logs on disk: plain while streamed, zstd once ended, a retention sweep (log_store.hpp).
#include "roles/orch/log_store.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>

#include <fcntl.h>
#include <unistd.h>

#include "core/byte_stream.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/unique_fd.hpp"
#include "portage/compression.hpp"

namespace swarm::roles::orch {

namespace {

constexpr std::string_view k_plain_suffix = ".log";
constexpr std::string_view k_zstd_suffix = ".log.zst";

// The build id of a log file name (BUILD.log or BUILD.log.zst), or nothing.
std::optional<std::pair<int64_t, bool>> log_file_build(const std::string& name)
{
  bool compressed = false;
  std::string_view stem;
  if (name.ends_with(k_zstd_suffix)) {
    compressed = true;
    stem = std::string_view(name).substr(0, name.size() - k_zstd_suffix.size());
  } else if (name.ends_with(k_plain_suffix)) {
    stem = std::string_view(name).substr(0, name.size() - k_plain_suffix.size());
  } else {
    return std::nullopt;
  }
  const auto id = strings::parse_int(stem);
  if (!id || *id <= 0) {
    return std::nullopt;
  }
  return std::pair{*id, compressed};
}

} // namespace

std::vector<int64_t> logs_to_remove(std::vector<LogFile> files, const std::set<int64_t>& keep, double now,
                                    const LogRetention& retention)
{
  std::sort(files.begin(), files.end(), [](const LogFile& a, const LogFile& b) {
    return a.mtime != b.mtime ? a.mtime < b.mtime : a.build < b.build;
  });
  uint64_t total = 0;
  for (const auto& file : files) {
    total += file.size;
  }
  std::vector<int64_t> removed;
  const double oldest = retention.keep_days > 0 ? now - retention.keep_days * 86400 : -1;
  for (const auto& file : files) {
    if (keep.contains(file.build)) {
      continue;
    }
    const bool too_old = retention.keep_days > 0 && file.mtime < oldest;
    const bool too_big = retention.max_bytes > 0 && total > retention.max_bytes;
    if (!too_old && !too_big) {
      continue;
    }
    removed.push_back(file.build);
    total -= file.size;
  }
  std::sort(removed.begin(), removed.end());
  removed.erase(std::unique(removed.begin(), removed.end()), removed.end());
  return removed;
}

std::filesystem::path LogStore::live_path(int64_t build) const
{
  return m_dir / fmt::format("{}{}", build, k_plain_suffix);
}

std::filesystem::path LogStore::compressed_path(int64_t build) const
{
  return m_dir / fmt::format("{}{}", build, k_zstd_suffix);
}

Result<> LogStore::compress(int64_t build) const
{
  const auto plain = live_path(build);
  auto input = stream::File::open_read(plain);
  if (!input) {
    std::error_code ec;
    if (!std::filesystem::exists(plain, ec)) {
      return {};
    }
    return fail(input.error());
  }
  auto size = input->size();
  if (!size) {
    return fail(size.error());
  }
  const auto target = compressed_path(build);
  auto temporary = target;
  temporary += ".tmp";
  UniqueFd out(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) {
    return fail(ErrorKind::io, "cannot create {}: {}", temporary.string(), fs::errno_text(errno));
  }
  const auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove(temporary, ec);
  };
  stream::FdSink sink(out.get());
  auto compressor = portage::make_compressor(portage::Compression::zstd, sink);
  if (!compressor) {
    cleanup();
    return fail(compressor.error());
  }
  stream::FileRangeSource source(*input, 0, *size);
  if (auto copied = stream::copy(source, **compressor); !copied) {
    cleanup();
    return fail(copied.error());
  }
  if (auto finished = (*compressor)->finish(); !finished) {
    cleanup();
    return fail(finished.error());
  }
  std::error_code ec;
  std::filesystem::rename(temporary, target, ec);
  if (ec) {
    cleanup();
    return fail(ErrorKind::io, "cannot rename {}: {}", temporary.string(), ec.message());
  }
  // A chunk appended between the copy and now would be lost: keep the plain log then.
  const auto now_size = std::filesystem::file_size(plain, ec);
  if (!ec && now_size != *size) {
    std::filesystem::remove(target, ec);
    return fail(ErrorKind::conflict, "the log of build {} grew while it was compressed", build);
  }
  std::filesystem::remove(plain, ec);
  return {};
}

Result<LogStore::Slice> LogStore::read(int64_t build, uint64_t offset, uint64_t limit) const
{
  Slice slice;
  // The plain log first: while compressing, the compressed one appears before the plain one goes.
  if (auto plain = stream::File::open_read(live_path(build)); plain) {
    auto size = plain->size();
    if (!size) {
      return fail(size.error());
    }
    slice.exists = true;
    slice.size = *size;
    if (offset < *size) {
      const auto length = std::min<uint64_t>(limit, *size - offset);
      slice.text.resize(length);
      if (auto read = plain->read_at(offset, slice.text.data(), length); !read) {
        return fail(read.error());
      }
    }
    return slice;
  }
  auto packed = stream::File::open_read(compressed_path(build));
  if (!packed) {
    return slice; // no log (yet, or removed by the retention)
  }
  auto size = packed->size();
  if (!size) {
    return fail(size.error());
  }
  stream::FileRangeSource source(*packed, 0, *size);
  auto decompressor = portage::make_decompressor(portage::Compression::zstd, source);
  if (!decompressor) {
    return fail(decompressor.error());
  }
  slice.exists = true;
  slice.compressed = true;
  char buffer[65536];
  uint64_t position = 0;
  while (true) {
    auto n = (*decompressor)->read(buffer, sizeof buffer);
    if (!n) {
      return fail(n.error());
    }
    if (*n == 0) {
      break;
    }
    const uint64_t begin = position;
    position += *n;
    if (position > offset && slice.text.size() < limit) {
      const uint64_t from = std::max(begin, offset) - begin;
      const uint64_t take = std::min<uint64_t>(*n - from, limit - slice.text.size());
      slice.text.append(buffer + from, take);
    }
  }
  slice.size = position;
  return slice;
}

std::vector<LogFile> LogStore::list() const
{
  std::vector<LogFile> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(m_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto parsed = log_file_build(it->path().filename().string());
    if (!parsed) {
      continue;
    }
    std::error_code stat_ec;
    const auto size = it->file_size(stat_ec);
    if (stat_ec) {
      continue;
    }
    const auto mtime = fs::file_mtime(it->path());
    LogFile file;
    file.build = parsed->first;
    file.compressed = parsed->second;
    file.size = size;
    file.mtime = mtime ? std::chrono::duration<double>(mtime->time_since_epoch()).count() : 0;
    files.push_back(file);
  }
  return files;
}

LogStore::Sweep LogStore::sweep(const std::set<int64_t>& running, const std::set<int64_t>& keep, double now,
                                const LogRetention& retention) const
{
  Sweep done;
  for (const auto& file : list()) {
    if (!file.compressed && !running.contains(file.build)) {
      if (auto packed = compress(file.build); packed) {
        ++done.compressed;
      } else {
        LOG_WARN("cannot compress the log of build {}: {}", file.build, packed.error().message);
      }
    }
  }
  auto kept = keep;
  kept.insert(running.begin(), running.end());
  for (const auto build : logs_to_remove(list(), kept, now, retention)) {
    std::error_code ec;
    const bool a = std::filesystem::remove(live_path(build), ec);
    const bool b = std::filesystem::remove(compressed_path(build), ec);
    if (a || b) {
      ++done.removed;
    }
  }
  if (done.removed > 0) {
    LOG_INFO("log retention removed {} build log(s)", done.removed);
  }
  return done;
}

} // namespace swarm::roles::orch
