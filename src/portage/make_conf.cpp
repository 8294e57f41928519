#include "portage/make_conf.hpp"

#include <algorithm>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

bool is_name_start(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_name_char(char c)
{
  return is_name_start(c) || strings::is_digit(c);
}

// The variable a statement assigns: `NAME=…` or `export NAME=…`, else "".
std::string assigned_name(std::string_view statement)
{
  auto text = strings::trim(statement);
  if (text.starts_with("export ") || text.starts_with("export\t")) {
    text = strings::trim(text.substr(7));
  }
  size_t end = 0;
  if (text.empty() || !is_name_start(text[0])) {
    return {};
  }
  while (end < text.size() && is_name_char(text[end])) {
    ++end;
  }
  if (end >= text.size() || text[end] != '=') {
    return {};
  }
  return std::string(text.substr(0, end));
}

// Portage's profile-only variables among profile_variables(): make.conf may not set them
// (config.py drops them), the make.profile does, and the client's make.profile is used as is.
bool is_profile_only(std::string_view name)
{
  return name == "ARCH" || name == "ELIBC" || name == "KERNEL";
}

// Variables stacked across make.globals, make.defaults and make.conf (portage.const
// INCREMENTALS, and ACCEPT_LICENSE, which regenerate() stacks the same way): a captured
// effective value must clear what the layers below would add.
bool is_incremental(std::string_view name)
{
  return name == "USE" || name == "USE_EXPAND" || name == "ACCEPT_KEYWORDS" || name == "ACCEPT_LICENSE";
}

std::string setting(const BuildProfile& profile, const std::string& name)
{
  const auto it = profile.settings.find(name);
  return it == profile.settings.end() ? std::string() : it->second;
}

} // namespace

Result<std::vector<MakeConfStatement>> parse_make_conf(std::string_view text)
{
  std::vector<MakeConfStatement> out;
  std::string current;
  enum class Quote { none, single, double_ };
  Quote quote = Quote::none;
  bool comment = false;
  bool at_word_start = true;
  size_t line = 1;
  size_t quote_line = 0;
  const auto flush = [&] {
    if (!current.empty()) {
      out.push_back({assigned_name(current), std::move(current)});
      current.clear();
    }
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    current += c;
    if (c == '\n') {
      ++line;
    }
    if (comment) {
      if (c == '\n') {
        comment = false;
        at_word_start = true;
        flush();
      }
      continue;
    }
    switch (quote) {
    case Quote::single:
      if (c == '\'') {
        quote = Quote::none;
      }
      continue;
    case Quote::double_:
      if (c == '\\' && i + 1 < text.size()) {
        current += text[++i];
        if (text[i] == '\n') {
          ++line;
        }
      } else if (c == '"') {
        quote = Quote::none;
      }
      continue;
    case Quote::none:
      break;
    }
    if (c == '\\' && i + 1 < text.size()) {
      // An escaped character; an escaped newline continues the statement.
      current += text[++i];
      if (text[i] == '\n') {
        ++line;
      }
      at_word_start = false;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c == '\'' ? Quote::single : Quote::double_;
      quote_line = line;
      at_word_start = false;
      continue;
    }
    if (c == '#' && at_word_start) {
      comment = true;
      continue;
    }
    if (c == '\n') {
      at_word_start = true;
      flush();
      continue;
    }
    at_word_start = c == ' ' || c == '\t';
  }
  if (quote != Quote::none) {
    return fail(ErrorKind::invalid, "make.conf: the quote opened on line {} is never closed", quote_line);
  }
  if (!current.empty() && current.back() != '\n') {
    current += '\n';
  }
  flush();
  return out;
}

Result<std::string> remove_assignments(std::string_view text, const std::set<std::string>& names)
{
  auto statements = parse_make_conf(text);
  if (!statements) {
    return fail(statements.error());
  }
  std::string out;
  for (const auto& statement : *statements) {
    if (statement.name.empty() || !names.contains(statement.name)) {
      out += statement.text;
    }
  }
  return out;
}

std::string quote_make_conf_value(std::string_view value)
{
  std::string out = "\"";
  for (const char c : value) {
    if (c == '\\' || c == '"' || c == '$' || c == '`') {
      out += '\\';
    }
    out += c;
  }
  out += '"';
  return out;
}

std::set<std::string> profile_owned_variables(const BuildProfile& profile)
{
  std::set<std::string> out{"PORTAGE_BINHOST"};
  for (const auto& name : profile_variables()) {
    if (!is_profile_only(name)) {
      out.insert(name);
    }
  }
  for (const auto& name : strings::split_any(setting(profile, "USE_EXPAND"))) {
    out.insert(name);
  }
  return out;
}

Result<std::string> profile_make_conf(std::string_view machine_make_conf, const BuildProfile& profile)
{
  const auto owned = profile_owned_variables(profile);
  // The machine's FEATURES stays (sandboxing, locks …): only the binary-changing ones are set below.
  auto removed = owned;
  removed.erase("FEATURES");
  auto kept = remove_assignments(machine_make_conf, removed);
  if (!kept) {
    return fail(kept.error());
  }
  std::string out = std::move(*kept);
  if (!out.empty() && out.back() != '\n') {
    out += '\n';
  }
  out += "\n# --- swarm: the build profile's settings (everything above is this machine's own) ---\n";
  // FEATURES: the machine's own assignment stays above (sandboxing, locks …); each feature that
  // changes the installed files is then set exactly as the profile has it.
  const auto wanted = strings::split_any(setting(profile, "FEATURES"));
  std::vector<std::string> features{"${FEATURES}"};
  for (const auto& feature : binary_features()) {
    const bool on = std::find(wanted.begin(), wanted.end(), feature) != wanted.end();
    features.push_back(on ? feature : "-" + feature);
  }
  for (const auto& name : owned) {
    if (name == "FEATURES") {
      continue;
    }
    auto value = setting(profile, name);
    if (is_incremental(name)) {
      value = value.empty() ? "-*" : "-* " + value;
    }
    out += fmt::format("{}={}\n", name, quote_make_conf_value(value));
  }
  // Written raw: ${FEATURES} must expand to the value above.
  out += fmt::format("FEATURES=\"{}\"\n", strings::join(features, " "));
  return out;
}

std::string use_pin_line(std::string_view cpv, const std::vector<std::string>& iuse,
                         const std::vector<std::string>& enabled)
{
  std::vector<std::string> flags;
  for (const auto& raw : iuse) {
    std::string_view flag = raw;
    if (flag.starts_with("+") || flag.starts_with("-")) {
      flag.remove_prefix(1);
    }
    if (flag.empty() || std::find(flags.begin(), flags.end(), flag) != flags.end() ||
        std::find(flags.begin(), flags.end(), "-" + std::string(flag)) != flags.end()) {
      continue;
    }
    const bool on = std::find(enabled.begin(), enabled.end(), flag) != enabled.end();
    flags.push_back(on ? std::string(flag) : "-" + std::string(flag));
  }
  if (flags.empty()) {
    return {};
  }
  return fmt::format("={} {}\n", cpv, strings::join(flags, " "));
}

} // namespace swarm::portage
