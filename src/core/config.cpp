#include "core/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/strings.hpp"

namespace swarm::config {

std::string env_name(std::string_view key)
{
  std::string out = "SWARM_";
  for (char c : key) {
    out += (c == '.' || c == '-') ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<std::string> env_get(std::string_view name)
{
  const char* value = std::getenv(std::string(name).c_str());
  if (!value) {
    return std::nullopt;
  }
  return std::string(value);
}

bool matches_key(std::string_view pattern, std::string_view name)
{
  const auto wanted = strings::split(pattern, '.');
  const auto given = strings::split(name, '.');
  if (wanted.size() != given.size()) {
    return false;
  }
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i] == "*") {
      const auto part = given[i];
      const bool ok = !part.empty() && part.size() <= 64 && std::ranges::all_of(part, [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      });
      if (!ok) {
        return false;
      }
    } else if (wanted[i] != given[i]) {
      return false;
    }
  }
  return true;
}

const KeyDef* find_key(std::string_view name)
{
  for (const auto& key : keys()) {
    if (key.name == name) {
      return &key;
    }
  }
  if (name.find('*') != std::string_view::npos) {
    return nullptr;
  }
  for (const auto& key : keys()) {
    if (key.name.find('*') != std::string_view::npos && matches_key(key.name, name)) {
      return &key;
    }
  }
  return nullptr;
}

Result<> check_value(KeyType type, std::string_view text)
{
  switch (type) {
  case KeyType::string:
  case KeyType::list:
    return {};
  case KeyType::integer:
    if (!strings::parse_int(strings::trim(text))) {
      return fail(ErrorKind::invalid, "'{}' is not an integer", text);
    }
    return {};
  case KeyType::boolean: {
    const auto t = strings::trim(text);
    if (t == "true" || t == "false" || t == "yes" || t == "no" || t == "1" || t == "0" || t == "on" || t == "off") {
      return {};
    }
    return fail(ErrorKind::invalid, "'{}' is not a boolean (true/false)", text);
  }
  case KeyType::seconds:
    if (!strings::parse_duration(text)) {
      return fail(ErrorKind::invalid, "'{}' is not a duration (e.g. 90, 90s, 5m, 250ms)", text);
    }
    return {};
  case KeyType::bytes:
    if (!strings::parse_size(text)) {
      return fail(ErrorKind::invalid, "'{}' is not a size (e.g. 512M, 8G)", text);
    }
    return {};
  }
  return {};
}

Result<std::map<std::string, std::pair<std::string, int>>> parse_file_text(std::string_view text)
{
  std::map<std::string, std::pair<std::string, int>> out;
  std::string section;
  int line_number = 0;
  for (const auto& raw_line : strings::split(text, '\n')) {
    ++line_number;
    const auto line = strings::trim(raw_line);
    if (line.empty() || line.front() == '#' || line.front() == ';') {
      continue;
    }
    if (line.front() == '[') {
      if (line.back() != ']') {
        return fail(ErrorKind::invalid, "line {}: section header must end with ']'", line_number);
      }
      section = std::string(strings::trim(line.substr(1, line.size() - 2)));
      continue;
    }
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      return fail(ErrorKind::invalid, "line {}: expected 'key = value'", line_number);
    }
    const auto name = std::string(strings::trim(line.substr(0, equals)));
    const auto full = section.empty() ? name : section + "." + name;
    if (!find_key(full)) {
      return fail(ErrorKind::invalid, "line {}: unknown key '{}'", line_number, full);
    }
    auto value = std::string(strings::trim(line.substr(equals + 1)));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    out[full] = {value, line_number};
  }
  return out;
}

Result<Config> Config::load(const Sources& sources)
{
  Config config;
  for (const auto& key : keys()) {
    config.m_values[std::string(key.name)] = Value{std::string(key.default_value), Origin::default_value, ""};
  }

  if (sources.file) {
    std::ifstream in(*sources.file);
    if (!in) {
      if (sources.file_required) {
        return fail(ErrorKind::invalid, "cannot read config file {}", *sources.file);
      }
    } else {
      std::stringstream buffer;
      buffer << in.rdbuf();
      auto parsed = parse_file_text(buffer.str());
      if (!parsed) {
        return fail(ErrorKind::invalid, "{}: {}", *sources.file, parsed.error().message);
      }
      for (auto& [name, entry] : *parsed) {
        config.m_values[name] = Value{entry.first, Origin::file, fmt::format("{}:{}", *sources.file, entry.second)};
      }
    }
  }

  for (const auto& key : keys()) {
    const auto env = env_name(key.name);
    std::optional<std::string> value;
    if (sources.env_override) {
      if (auto it = sources.env_override->find(env); it != sources.env_override->end()) {
        value = it->second;
      }
    } else {
      value = env_get(env);
    }
    if (value) {
      config.m_values[std::string(key.name)] = Value{*value, Origin::env, env};
    }
  }

  for (const auto& [name, text] : sources.flags) {
    if (!find_key(name)) {
      return fail(ErrorKind::internal, "flag bound to unknown config key '{}'", name);
    }
    config.m_values[name] = Value{text, Origin::flag, "command line"};
  }

  for (const auto& [name, value] : config.m_values) {
    const auto* key = find_key(name);
    if (auto ok = check_value(key->type, value.text); !ok) {
      const auto from = value.where.empty() ? std::string(origin_name(value.origin)) : value.where;
      return fail(ErrorKind::invalid, "{}: {} (from {})", name, ok.error().message, from);
    }
  }
  return config;
}

const Value& Config::value(std::string_view key) const
{
  auto it = m_values.find(key);
  if (it == m_values.end()) {
    throw Fatal{Error{ErrorKind::internal, fmt::format("unknown config key '{}'", key)}};
  }
  return it->second;
}

const std::string& Config::get(std::string_view key) const
{
  return value(key).text;
}

int64_t Config::get_int(std::string_view key) const
{
  return strings::parse_int(strings::trim(get(key))).value_or(0);
}

bool Config::get_bool(std::string_view key) const
{
  const auto t = strings::trim(get(key));
  return t == "true" || t == "yes" || t == "1" || t == "on";
}

double Config::get_seconds(std::string_view key) const
{
  return strings::parse_duration(get(key)).value_or(0);
}

uint64_t Config::get_bytes(std::string_view key) const
{
  return strings::parse_size(get(key)).value_or(0);
}

std::vector<std::string> Config::get_list(std::string_view key) const
{
  std::vector<std::string> out;
  for (const auto& item : strings::split(get(key), ',')) {
    const auto t = strings::trim(item);
    if (!t.empty()) {
      out.emplace_back(t);
    }
  }
  return out;
}

std::vector<std::string> Config::instances(std::string_view section) const
{
  std::vector<std::string> out;
  const auto prefix = std::string(section) + ".";
  for (const auto& [name, value] : m_values) {
    if (!name.starts_with(prefix)) {
      continue;
    }
    const auto rest = std::string_view(name).substr(prefix.size());
    const auto dot = rest.find('.');
    if (dot == std::string_view::npos || rest.substr(0, dot) == "*") {
      continue;
    }
    const auto instance = std::string(rest.substr(0, dot));
    if (std::ranges::find(out, instance) == out.end()) {
      out.push_back(instance);
    }
  }
  return out;
}

std::string Config::get_or(std::string_view key, std::string_view fallback) const
{
  auto it = m_values.find(key);
  return it == m_values.end() ? std::string(fallback) : it->second.text;
}

void Config::set(std::string_view key, std::string text, Origin origin)
{
  if (!find_key(key)) {
    throw Fatal{Error{ErrorKind::internal, fmt::format("unknown config key '{}'", key)}};
  }
  m_values[std::string(key)] = Value{std::move(text), origin, origin == Origin::flag ? "command line" : ""};
}

std::string_view Config::origin_name(Origin origin)
{
  switch (origin) {
  case Origin::default_value:
    return "default";
  case Origin::file:
    return "file";
  case Origin::env:
    return "env";
  case Origin::flag:
    return "flag";
  }
  return "?";
}

} // namespace swarm::config
