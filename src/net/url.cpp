#include "net/url.hpp"

#include "core/strings.hpp"

namespace swarm::net::url {

namespace {

int default_port_for(std::string_view scheme)
{
  return scheme == "https" ? 443 : 80;
}

bool is_unreserved(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hex_value(char c)
{
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

std::string lower(std::string_view text)
{
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

// Position just after "scheme://", or npos.
size_t authority_start(std::string_view text)
{
  const size_t separator = text.find("://");
  if (separator == std::string_view::npos || separator == 0) {
    return std::string_view::npos;
  }
  for (char c : text.substr(0, separator)) {
    const bool ok =
      (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    if (!ok) {
      return std::string_view::npos;
    }
  }
  return separator + 3;
}

} // namespace

std::string Url::origin() const
{
  return fmt::format("{}://{}", scheme, format_host_port(host, port));
}

bool is_absolute(std::string_view text)
{
  return authority_start(text) != std::string_view::npos;
}

Result<Url> parse(std::string_view text)
{
  const size_t start = authority_start(text);
  if (start == std::string_view::npos) {
    return fail(ErrorKind::invalid, "not a URL: {}", redact(text));
  }
  Url out;
  out.scheme = lower(text.substr(0, start - 3));
  if (out.scheme != "http" && out.scheme != "https") {
    return fail(ErrorKind::invalid, "unsupported URL scheme {:?} in {}", out.scheme, redact(text));
  }
  size_t end = text.find_first_of("/?#", start);
  if (end == std::string_view::npos) {
    end = text.size();
  }
  std::string_view authority = text.substr(start, end - start);
  std::string_view rest = text.substr(end);
  rest = rest.substr(0, rest.find('#'));
  out.path = rest.starts_with('?') ? fmt::format("/{}", rest) : std::string(rest);
  if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
    out.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  auto host_port = parse_host_port(authority, default_port_for(out.scheme));
  if (!host_port) {
    return fail(ErrorKind::invalid, "bad host in URL {}: {}", redact(text), host_port.error().message);
  }
  out.host = std::move(host_port->host);
  out.port = host_port->port;
  return out;
}

std::string join(std::string_view base, std::string_view path)
{
  if (path.empty()) {
    return std::string(base);
  }
  while (!base.empty() && base.back() == '/') {
    base.remove_suffix(1);
  }
  while (!path.empty() && path.front() == '/') {
    path.remove_prefix(1);
  }
  return fmt::format("{}/{}", base, path);
}

Result<std::string> with_userinfo(std::string_view text, std::string_view user, std::string_view password)
{
  const size_t start = authority_start(text);
  if (start == std::string_view::npos) {
    return fail(ErrorKind::invalid, "not a URL: {}", redact(text));
  }
  size_t end = text.find_first_of("/?#", start);
  if (end == std::string_view::npos) {
    end = text.size();
  }
  std::string_view host_part = text.substr(start, end - start);
  if (const size_t at = host_part.rfind('@'); at != std::string_view::npos) {
    host_part.remove_prefix(at + 1);
  }
  return fmt::format("{}{}:{}@{}{}", text.substr(0, start), percent_encode(user), percent_encode(password), host_part,
                     text.substr(end));
}

std::string redact(std::string_view text)
{
  const size_t start = authority_start(text);
  if (start == std::string_view::npos) {
    return std::string(text);
  }
  size_t end = text.find_first_of("/?#", start);
  if (end == std::string_view::npos) {
    end = text.size();
  }
  const size_t at = text.substr(start, end - start).rfind('@');
  if (at == std::string_view::npos) {
    return std::string(text);
  }
  return fmt::format("{}***@{}", text.substr(0, start), text.substr(start + at + 1));
}

std::string percent_encode(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (is_unreserved(c)) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

Result<std::string> percent_decode(std::string_view text)
{
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) {
      return fail(ErrorKind::invalid, "truncated percent escape");
    }
    const int high = hex_value(text[i + 1]);
    const int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) {
      return fail(ErrorKind::invalid, "bad percent escape");
    }
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return out;
}

Result<HostPort> parse_host_port(std::string_view text, int default_port)
{
  HostPort out;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      return fail(ErrorKind::invalid, "unterminated IPv6 literal in {:?}", text);
    }
    out.host = std::string(text.substr(1, close - 1));
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return fail(ErrorKind::invalid, "unexpected {:?} after IPv6 literal", rest);
      }
      port_text = rest.substr(1);
      if (port_text.empty()) {
        return fail(ErrorKind::invalid, "empty port in {:?}", text);
      }
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos && text.find(':') != colon) {
      return fail(ErrorKind::invalid, "IPv6 address needs brackets: {:?}", text);
    }
    out.host = std::string(text.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = text.substr(colon + 1);
      if (port_text.empty()) {
        return fail(ErrorKind::invalid, "empty port in {:?}", text);
      }
    }
  }
  if (out.host.empty()) {
    return fail(ErrorKind::invalid, "missing host in {:?}", text);
  }
  if (port_text.empty()) {
    if (default_port <= 0) {
      return fail(ErrorKind::invalid, "missing port in {:?}", text);
    }
    out.port = default_port;
    return out;
  }
  const auto port = strings::parse_uint(port_text);
  if (!port || *port == 0 || *port > 65535) {
    return fail(ErrorKind::invalid, "bad port {:?} in {:?}", port_text, text);
  }
  out.port = static_cast<int>(*port);
  return out;
}

Result<HostPort> parse_listen_address(std::string_view text)
{
  if (text.ends_with(":0")) {
    auto parsed = parse_host_port(text.substr(0, text.size() - 2), 1);
    if (parsed) {
      parsed->port = 0;
    }
    return parsed;
  }
  return parse_host_port(text);
}

std::string format_host_port(std::string_view host, int port)
{
  if (host.find(':') != std::string_view::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

} // namespace swarm::net::url
