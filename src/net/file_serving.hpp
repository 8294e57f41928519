#pragma once
// Static files the way Portage's binhost client expects them, streamed from disk (a package may
// be 2 GiB): GET and HEAD, Last-Modified, If-Modified-Since → 304, single byte ranges → 206
// (416 when unsatisfiable; a Range of invalid syntax is ignored: 200, RFC 9110 14.2), no
// directory listings. Paths are resolved under a root that may be a symlink (`production` →
// `releases/N`): it is resolved once per request and the file is opened once, so a concurrent
// release switch serves the old file or the new one, never a mix.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <httplib.h>

#include "core/error.hpp"
#include "core/unique_fd.hpp"

namespace swarm::net {

class HttpServer;

struct OpenedFile {
  UniqueFd fd;
  std::filesystem::path path; // resolved, below the resolved root
  uint64_t size = 0;
  std::chrono::system_clock::time_point mtime;
};

// Opens the regular file `relative` (a decoded URL path below a mount point) under `root`.
// invalid: absolute, "..", NUL; not_found: missing, a directory, or resolving (through
// symlinks) outside the root.
Result<OpenedFile> open_under_root(const std::filesystem::path& root, std::string_view relative);

// RFC 7231 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string http_date(std::chrono::system_clock::time_point time);
// Parses IMF-fixdate, and the obsolete RFC 850 and asctime forms clients may still send.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

// What a Range header asks of a representation of `size` bytes.
struct RangeRequest {
  enum class Kind {
    whole,         // no Range, or one we ignore (several ranges, not bytes, malformed)
    partial,       // 206 with [offset, offset + length)
    unsatisfiable, // 416
  };
  Kind kind = Kind::whole;
  uint64_t offset = 0;
  uint64_t length = 0;
};
RangeRequest parse_range(std::string_view header, uint64_t size);

// Answers a GET or HEAD for `relative` below `root` with the file's bytes, streamed.
void serve_file(const httplib::Request& request, httplib::Response& response, const std::filesystem::path& root,
                std::string_view relative);

// Decides whether a request may proceed; when not, it has written the answer (401 …).
using RequestGate = std::function<bool(const httplib::Request&, httplib::Response&)>;

// Serves `prefix/<path>` (GET and HEAD) from `root` through serve_file, after `gate` if given.
void mount_files(HttpServer& server, const std::string& prefix, std::filesystem::path root, RequestGate gate = {});

} // namespace swarm::net
