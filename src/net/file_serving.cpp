#include "net/file_serving.hpp"

#include <array>
#include <cerrno>
#include <ctime>
#include <memory>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "net/http_server.hpp"

namespace swarm::net {

namespace {

constexpr std::array<std::string_view, 7> k_days{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> k_months{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr size_t k_chunk = 64u << 10;

std::string_view content_type_for(const std::filesystem::path& path)
{
  return path.filename() == "Packages" ? "text/plain" : "application/octet-stream";
}

std::optional<std::chrono::system_clock::time_point> from_tm(struct tm& parts)
{
  const time_t seconds = ::timegm(&parts);
  if (seconds == static_cast<time_t>(-1)) {
    return std::nullopt;
  }
  return std::chrono::system_clock::from_time_t(seconds);
}

// "Sun, 06 Nov 1994 08:49:37 GMT", exactly.
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view text)
{
  if (text.size() != 29 || text.substr(3, 2) != ", " || text[7] != ' ' || text[11] != ' ' || text[16] != ' ' ||
      text[19] != ':' || text[22] != ':' || text.substr(25) != " GMT") {
    return std::nullopt;
  }
  const auto number = [&](size_t position, size_t length) {
    return strings::parse_uint(text.substr(position, length));
  };
  const auto day = number(5, 2);
  const auto year = number(12, 4);
  const auto hour = number(17, 2);
  const auto minute = number(20, 2);
  const auto second = number(23, 2);
  const std::string_view month_name = text.substr(8, 3);
  int month = -1;
  for (size_t i = 0; i < k_months.size(); ++i) {
    if (k_months[i] == month_name) {
      month = static_cast<int>(i);
    }
  }
  if (!day || !year || !hour || !minute || !second || month < 0 || *day < 1 || *day > 31 || *hour > 23 ||
      *minute > 59 || *second > 60) {
    return std::nullopt;
  }
  struct tm parts {};
  parts.tm_year = static_cast<int>(*year) - 1900;
  parts.tm_mon = month;
  parts.tm_mday = static_cast<int>(*day);
  parts.tm_hour = static_cast<int>(*hour);
  parts.tm_min = static_cast<int>(*minute);
  parts.tm_sec = static_cast<int>(*second);
  return from_tm(parts);
}

bool has_dot_dot(std::string_view relative)
{
  for (const auto& part : strings::split(relative, '/')) {
    if (part == "..") {
      return true;
    }
  }
  return false;
}

bool is_below(const std::filesystem::path& path, const std::filesystem::path& root)
{
  const std::string& root_text = root.native();
  const std::string& text = path.native();
  if (root_text == "/") {
    return text.size() > 1;
  }
  return text.size() > root_text.size() + 1 && text.starts_with(root_text) && text[root_text.size()] == '/';
}

std::string escape_regex(std::string_view text)
{
  std::string out;
  for (char c : text) {
    if (std::string_view(".^$|()[]{}*+?\\").find(c) != std::string_view::npos) {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

} // namespace

Result<OpenedFile> open_under_root(const std::filesystem::path& root, std::string_view relative)
{
  if (relative.find('\0') != std::string_view::npos) {
    return fail(ErrorKind::invalid, "bad path");
  }
  if (relative.starts_with('/')) {
    return fail(ErrorKind::invalid, "absolute path refused");
  }
  if (has_dot_dot(relative)) {
    return fail(ErrorKind::invalid, "'..' refused in path");
  }
  // The root is resolved now, once: a symlink swapped later does not affect this request.
  std::error_code error;
  const std::filesystem::path real_root = std::filesystem::canonical(root, error);
  if (error) {
    return fail(ErrorKind::not_found, "nothing is published here");
  }
  const std::filesystem::path real = std::filesystem::canonical(real_root / relative, error);
  if (error || !is_below(real, real_root)) {
    return fail(ErrorKind::not_found, "not found: {}", relative);
  }
  // O_NOFOLLOW: `real` has no symlink left in it; one appearing now is a change under our feet.
  UniqueFd fd(::open(real.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    return fail(ErrorKind::not_found, "not found: {}", relative);
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    return fail(ErrorKind::not_found, "not found: {}", relative);
  }
  OpenedFile out;
  out.fd = std::move(fd);
  out.path = real;
  out.size = static_cast<uint64_t>(info.st_size);
  out.mtime = std::chrono::system_clock::from_time_t(info.st_mtim.tv_sec);
  return out;
}

std::string http_date(std::chrono::system_clock::time_point time)
{
  const time_t seconds = std::chrono::system_clock::to_time_t(time);
  struct tm parts {};
  ::gmtime_r(&seconds, &parts);
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT", k_days[static_cast<size_t>(parts.tm_wday)],
                     parts.tm_mday, k_months[static_cast<size_t>(parts.tm_mon)], parts.tm_year + 1900, parts.tm_hour,
                     parts.tm_min, parts.tm_sec);
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text)
{
  text = strings::trim(text);
  if (auto fixdate = parse_imf_fixdate(text)) {
    return fixdate;
  }
  // Obsolete forms (RFC 7231 7.1.1.1): strptime with the C locale's English names.
  const std::string copy(text);
  for (const char* format : {"%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
    struct tm parts {};
    const char* end = ::strptime(copy.c_str(), format, &parts);
    if (end != nullptr && *end == '\0') {
      return from_tm(parts);
    }
  }
  return std::nullopt;
}

RangeRequest parse_range(std::string_view header, uint64_t size)
{
  header = strings::trim(header);
  if (!header.starts_with("bytes=")) {
    return {};
  }
  const std::string_view spec = strings::trim(header.substr(6));
  // Several ranges would need multipart/byteranges; RFC 7233 lets a server ignore Range.
  if (spec.find(',') != std::string_view::npos) {
    return {};
  }
  const size_t dash = spec.find('-');
  if (dash == std::string_view::npos) {
    return {};
  }
  const std::string_view first_text = strings::trim(spec.substr(0, dash));
  const std::string_view last_text = strings::trim(spec.substr(dash + 1));
  RangeRequest out;
  if (first_text.empty()) {
    // "-n": the last n bytes.
    const auto suffix = strings::parse_uint(last_text);
    if (!suffix) {
      return {};
    }
    if (*suffix == 0 || size == 0) {
      out.kind = RangeRequest::Kind::unsatisfiable;
      return out;
    }
    out.kind = RangeRequest::Kind::partial;
    out.length = std::min(*suffix, size);
    out.offset = size - out.length;
    return out;
  }
  const auto first = strings::parse_uint(first_text);
  if (!first) {
    return {};
  }
  uint64_t last = size == 0 ? 0 : size - 1;
  if (!last_text.empty()) {
    const auto parsed = strings::parse_uint(last_text);
    if (!parsed || *parsed < *first) {
      return {}; // syntactically invalid: ignored
    }
    last = std::min(*parsed, last);
  }
  if (*first >= size) {
    out.kind = RangeRequest::Kind::unsatisfiable;
    return out;
  }
  out.kind = RangeRequest::Kind::partial;
  out.offset = *first;
  out.length = last - *first + 1;
  return out;
}

void serve_file(const httplib::Request& request, httplib::Response& response, const std::filesystem::path& root,
                std::string_view relative)
{
  // httplib parses Range itself and, once a handler returns, cuts the response by its own
  // (in 0.11.4 wrong for ranges past the end) arithmetic. We answer ranges ourselves, so
  // it must see none. Its Request is a mutable local passed as const.
  const_cast<httplib::Request&>(request).ranges.clear();

  auto file = open_under_root(root, relative);
  if (!file) {
    error_response(response, file.error());
    return;
  }
  const std::string last_modified = http_date(file->mtime);
  response.set_header("Last-Modified", last_modified);
  response.set_header("Accept-Ranges", "bytes");

  // RFC 9110 13.1.3: ignored when not a valid date, and in the presence of If-None-Match.
  if (request.has_header("If-Modified-Since") && !request.has_header("If-None-Match")) {
    const auto since = parse_http_date(request.get_header_value("If-Modified-Since"));
    // mtime is compared at the one-second resolution of the header.
    if (since && std::chrono::floor<std::chrono::seconds>(file->mtime) <= *since) {
      response.status = 304;
      return;
    }
  }

  // RFC 9110 14.2: Range is defined for GET only (HEAD answers as a whole GET would). A Range
  // that is not valid syntax never gets here: the server drops it (net/http_connections.hpp).
  RangeRequest range;
  if (request.method == "GET" && request.has_header("Range")) {
    range = parse_range(request.get_header_value("Range"), file->size);
    // If-Range with a date: the range holds only if the file is still that version.
    if (request.has_header("If-Range") && request.get_header_value("If-Range") != last_modified) {
      range = RangeRequest{};
    }
  }
  const std::string content_type(content_type_for(file->path));
  if (range.kind == RangeRequest::Kind::unsatisfiable) {
    error_response(
      response, Error{ErrorKind::invalid, fmt::format("range not satisfiable: {} has {} bytes", relative, file->size)});
    response.status = 416;
    response.set_header("Content-Range", fmt::format("bytes */{}", file->size));
    return;
  }
  uint64_t offset = 0;
  uint64_t length = file->size;
  response.status = 200;
  if (range.kind == RangeRequest::Kind::partial) {
    offset = range.offset;
    length = range.length;
    response.status = 206;
    response.set_header("Content-Range", fmt::format("bytes {}-{}/{}", offset, offset + length - 1, file->size));
  }
  if (length == 0) {
    response.set_content("", content_type);
    return;
  }
  // The fd stays open as long as the provider lives, and everything is read from it: the
  // response is one version of the file even if a release switch happens meanwhile.
  auto fd = std::make_shared<UniqueFd>(std::move(file->fd));
  response.set_content_provider(
    static_cast<size_t>(length), content_type, [fd, offset](size_t position, size_t left, httplib::DataSink& sink) {
      std::array<char, k_chunk> buffer;
      const size_t want = std::min(left, buffer.size());
      ssize_t got = 0;
      do {
        got = ::pread(fd->get(), buffer.data(), want, static_cast<off_t>(offset + position));
      } while (got < 0 && errno == EINTR);
      if (got <= 0) {
        return false; // read error, or the file shrank: abort the connection
      }
      return sink.write(buffer.data(), static_cast<size_t>(got));
    });
}

void mount_files(HttpServer& server, const std::string& prefix, std::filesystem::path root, RequestGate gate)
{
  std::string trimmed = prefix;
  while (!trimmed.empty() && trimmed.back() == '/') {
    trimmed.pop_back();
  }
  server.get(escape_regex(trimmed) + "/(.*)", [root = std::move(root), gate = std::move(gate)](
                                                const httplib::Request& request, httplib::Response& response) {
    if (gate && !gate(request, response)) {
      return;
    }
    serve_file(request, response, root, request.matches[1].str());
  });
}

} // namespace swarm::net
