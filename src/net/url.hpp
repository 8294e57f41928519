#pragma once
// URL plumbing for the client and for the URLs we hand to Portage: split a URL, join a base and
// a path, put credentials in the userinfo (the staging binrepos sync-uri), redact them again
// before anything is printed, parse "host:port".

#include <string>
#include <string_view>

#include "core/error.hpp"

namespace swarm::net::url {

// scheme://[userinfo@]host[:port][path]; `port` is the explicit one or the scheme's default
// (http 80, https 443); `path` keeps the query and starts with '/' (or is empty).
struct Url {
  std::string scheme;
  std::string userinfo; // still percent-encoded
  std::string host;     // IPv6 literals without brackets
  int port = 0;
  std::string path;

  // scheme://host:port, without userinfo or path.
  std::string origin() const;
};

// Accepts http and https URLs only.
Result<Url> parse(std::string_view text);

// True when `text` starts with a scheme ("http://…"), i.e. is not a path.
bool is_absolute(std::string_view text);

// base + path with exactly one '/' between them: join("http://h:1/api/", "/v1") →
// "http://h:1/api/v1". An empty path gives the base unchanged.
std::string join(std::string_view base, std::string_view path);

// The URL with `user:password@` as its userinfo (percent-encoded), replacing any there was.
Result<std::string> with_userinfo(std::string_view text, std::string_view user, std::string_view password);

// The URL with its userinfo replaced by "***", for messages and logs.
std::string redact(std::string_view text);

// Percent-encodes everything except RFC 3986 unreserved characters.
std::string percent_encode(std::string_view text);
// Decodes %XX escapes; invalid escapes are an error.
Result<std::string> percent_decode(std::string_view text);

struct HostPort {
  std::string host; // IPv6 literals without brackets
  int port = 0;
};

// "127.0.0.1:8080", "example.org:80", "[::1]:8080". A missing or out-of-range port is invalid
// unless `default_port` is given (> 0).
Result<HostPort> parse_host_port(std::string_view text, int default_port = 0);

// A listen address: like parse_host_port, but port 0 is allowed and means "any free port".
Result<HostPort> parse_listen_address(std::string_view text);

// "host:port", with brackets around an IPv6 literal.
std::string format_host_port(std::string_view host, int port);

} // namespace swarm::net::url
