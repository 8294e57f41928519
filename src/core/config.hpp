#pragma once
// Configuration: one table of keys; each value comes from, in order of precedence, a
// command-line flag, a SWARM_* environment variable, the config file, or the key's default.
// This is the only place that reads the process environment.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::config {

enum class KeyType { string, integer, boolean, seconds, bytes, list };

struct KeyDef {
  // "orch.listen": section.key in the file. A key with a '*' part ("webhook.*.url") stands for a
  // family of keys, one per NAME ("[webhook.ci]" then "url = …"), set in the file only.
  std::string_view name;
  KeyType type;
  std::string_view default_value; // as it would be written in the file
  std::string_view help;
  bool secret = false; // printed as "***" by `swarm config show`
};

// The one table of keys (core/config_keys.cpp).
std::span<const KeyDef> keys();
// The key `name` is, or the family key ("webhook.*.url") it belongs to.
const KeyDef* find_key(std::string_view name);
// Whether `name` is an instance of `pattern` ('*' matches one part of [A-Za-z0-9_-]).
bool matches_key(std::string_view pattern, std::string_view name);

// "orch.listen" → "SWARM_ORCH_LISTEN".
std::string env_name(std::string_view key);

// The only access to the process environment.
std::optional<std::string> env_get(std::string_view name);

enum class Origin { default_value, file, env, flag };

struct Value {
  std::string text;
  Origin origin = Origin::default_value;
  std::string where; // "SWARM_ORCH_LISTEN", "/etc/swarm/swarm.conf:12", "--listen"
};

struct Sources {
  std::map<std::string, std::string> flags; // key name → value given on the command line
  std::optional<std::string> file;          // config file path, if any
  bool file_required = false;               // true when the user named the file explicitly
  // Environment lookups (defaults to env_get; tests inject a map).
  std::map<std::string, std::string>* env_override = nullptr;
};

// Where the config file is looked for when neither --config nor SWARM_CONFIG names one.
inline constexpr std::string_view k_default_file = "/etc/swarm/swarm.conf";

class Config {
public:
  // Reads every source and checks every value against its key's type.
  static Result<Config> load(const Sources& sources);

  // Raw text of a key; the key must exist in the table (a typo is a bug: throws Fatal).
  const std::string& get(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  double get_seconds(std::string_view key) const;
  uint64_t get_bytes(std::string_view key) const;
  std::vector<std::string> get_list(std::string_view key) const;

  const Value& value(std::string_view key) const;
  // The instance names of a family of keys set in the file: "webhook" → {"ci", "chat"}.
  std::vector<std::string> instances(std::string_view section) const;
  // A family key's value ("webhook.ci.url"), or `fallback` when the file does not set it.
  std::string get_or(std::string_view key, std::string_view fallback) const;
  // Overrides a value (used by verbs that derive a value, and by tests).
  void set(std::string_view key, std::string text, Origin origin = Origin::flag);

  static std::string_view origin_name(Origin origin);

private:
  std::map<std::string, Value, std::less<>> m_values;
};

// Checks one value against a type; the error says what was expected.
Result<> check_value(KeyType type, std::string_view text);

// Parses the config file format: "[section]" lines, "key = value" lines, '#' comments.
// Keys become "section.key". Unknown keys are an error (they are typos).
Result<std::map<std::string, std::pair<std::string, int>>> parse_file_text(std::string_view text);

} // namespace swarm::config
