#include "portage/emerge_output.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "core/strings.hpp"
#include "portage/version.hpp"

namespace swarm::portage {

namespace {

constexpr std::array k_type_names{
  std::pair{MergeType::ebuild, std::string_view{"ebuild"}},
  std::pair{MergeType::binary, std::string_view{"binary"}},
  std::pair{MergeType::installed, std::string_view{"installed"}},
  std::pair{MergeType::nomerge, std::string_view{"nomerge"}},
  std::pair{MergeType::uninstall, std::string_view{"uninstall"}},
  std::pair{MergeType::blocks, std::string_view{"blocks"}},
  std::pair{MergeType::merge, std::string_view{"merge"}},
};

std::optional<MergeType> type_from_name(std::string_view name)
{
  for (const auto& [type, type_name] : k_type_names) {
    if (type_name == name && type != MergeType::merge) {
      return type;
    }
  }
  return std::nullopt;
}

// text[begin:end], `end` may be npos.
std::string_view output_slice(std::string_view text, size_t begin, size_t end)
{
  return text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
}

std::string_view trim(std::string_view text)
{
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
    text.remove_prefix(1);
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
    text.remove_suffix(1);
  }
  return text;
}

// What the terminal would show: the text after the last carriage return (spinner updates),
// without ANSI CSI/OSC sequences (colours, xterm titles), backspaces applied.
std::string displayed_text(std::string_view raw)
{
  if (raw.ends_with('\r')) {
    raw.remove_suffix(1);
  }
  if (const auto cr = raw.rfind('\r'); cr != std::string_view::npos) {
    raw = raw.substr(cr + 1);
  }
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '\x1b') {
      if (i + 1 < raw.size() && raw[i + 1] == '[') {
        i += 2;
        while (i < raw.size() && !(raw[i] >= 0x40 && raw[i] <= 0x7e)) {
          ++i;
        }
      } else if (i + 1 < raw.size() && raw[i + 1] == ']') {
        i += 2;
        while (i < raw.size() && raw[i] != '\x07' && !(raw[i] == '\x1b' && i + 1 < raw.size() && raw[i + 1] == '\\')) {
          ++i;
        }
        if (i < raw.size() && raw[i] == '\x1b') {
          ++i;
        }
      } else {
        ++i;
      }
    } else if (c == '\b') {
      if (!out.empty()) {
        out.pop_back();
      }
    } else {
      out += c;
    }
  }
  return out;
}

// Splits the part after the package column into tokens: `[…]` blocks (which may hold ", ")
// and `NAME="…"` strings stay whole.
std::vector<std::string_view> split_fields(std::string_view text)
{
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && text[i] == ' ') {
      ++i;
    }
    if (i >= text.size()) {
      break;
    }
    const size_t start = i;
    if (text[i] == '[') {
      const auto close = text.find(']', i);
      i = close == std::string_view::npos ? text.size() : close + 1;
    } else {
      bool quoted = false;
      while (i < text.size() && (quoted || text[i] != ' ')) {
        if (text[i] == '"') {
          quoted = !quoted;
        }
        ++i;
      }
    }
    out.push_back(text.substr(start, i - start));
  }
  return out;
}

std::optional<uint64_t> parse_number(std::string_view text)
{
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// `VERSION-BUILDID` of a binary package: a trailing "-N" whose left part is valid on its own.
template <class Valid>
std::optional<std::pair<std::string_view, uint64_t>> split_build_id(std::string_view text, Valid valid)
{
  const auto dash = text.rfind('-');
  if (dash == std::string_view::npos) {
    return std::nullopt;
  }
  const auto id = text.substr(dash + 1);
  if (id.empty() || !std::all_of(id.begin(), id.end(), strings::is_digit) || !valid(text.substr(0, dash))) {
    return std::nullopt;
  }
  const auto number = parse_number(id);
  if (!number) {
    return std::nullopt;
  }
  return std::pair{text.substr(0, dash), *number};
}

// `:SLOT[/SUB][::repo]` or `::repo` after a package or version.
bool read_slot_repo(std::string_view suffix, MergeEntry& entry)
{
  if (suffix.empty()) {
    return true;
  }
  if (!suffix.starts_with("::")) {
    if (!suffix.starts_with(':')) {
      return false;
    }
    const auto repo_at = suffix.find("::");
    const auto slot = output_slice(suffix, 1, repo_at);
    if (slot.empty()) {
      return false;
    }
    const auto slash = slot.find('/');
    entry.slot = std::string(slot.substr(0, slash));
    if (slash != std::string_view::npos) {
      entry.subslot = std::string(slot.substr(slash + 1));
    }
    if (repo_at == std::string_view::npos) {
      return true;
    }
    suffix = suffix.substr(repo_at);
  }
  entry.repo = std::string(suffix.substr(2));
  return !entry.repo.empty();
}

// `cat/pkg-ver[-BUILDID][:SLOT[/SUB]][::repo]`.
bool read_package(std::string_view token, MergeEntry& entry)
{
  const auto colon = token.find(':');
  const auto name = token.substr(0, colon);
  if (parse_cpv(name)) {
    entry.cpv = std::string(name);
  } else if (const auto split = split_build_id(name, [](std::string_view cpv) { return parse_cpv(cpv).has_value(); })) {
    entry.cpv = std::string(split->first);
    entry.build_id = split->second;
  } else {
    return false;
  }
  return read_slot_repo(colon == std::string_view::npos ? std::string_view{} : token.substr(colon), entry);
}

// A category/package without version: the first column of `--columns` output.
bool is_cp(std::string_view token)
{
  const auto slash = token.find('/');
  if (slash == std::string_view::npos || token.find('/', slash + 1) != std::string_view::npos) {
    return false;
  }
  return is_valid_category(token.substr(0, slash)) && is_valid_package_name_chars(token.substr(slash + 1)) &&
         !parse_cpv(token).has_value();
}

// The version column of `--columns` output: `ver[-BUILDID][:SLOT[/SUB]][::repo]`.
bool read_version_column(std::string_view cp, std::string_view token, MergeEntry& entry)
{
  const auto colon = token.find(':');
  const auto version = token.substr(0, colon);
  if (is_valid_version(version)) {
    entry.cpv = std::string(cp) + "-" + std::string(version);
  } else if (const auto split = split_build_id(version, [](std::string_view v) { return is_valid_version(v); })) {
    entry.cpv = std::string(cp) + "-" + std::string(split->first);
    entry.build_id = split->second;
  } else {
    return false;
  }
  return read_slot_repo(colon == std::string_view::npos ? std::string_view{} : token.substr(colon), entry);
}

// One flag of a USE string: "(…)" forced/masked, "{…}" (old Portage), '-' disabled, trailing
// '*' changed and '%' new in IUSE.
void add_flag(std::string_view flag, UseFlags& flags)
{
  const bool parenthesised = flag.starts_with('(') && flag.ends_with(')');
  const bool braced = flag.starts_with('{') && flag.ends_with('}');
  if (flag.size() >= 2 && (parenthesised || braced)) {
    flag = flag.substr(1, flag.size() - 2);
  }
  while (!flag.empty() && (flag.back() == '*' || flag.back() == '%')) {
    flag.remove_suffix(1);
  }
  if (flag.starts_with('-')) {
    flag.remove_prefix(1);
    if (!flag.empty()) {
      flags.disabled.emplace_back(flag);
    }
  } else if (!flag.empty()) {
    flags.enabled.emplace_back(flag);
  }
}

// NAME="flags": USE or a USE_EXPAND variable (upper-case name).
bool read_use_variable(std::string_view token, MergeEntry& entry)
{
  const auto equals = token.find("=\"");
  if (equals == std::string_view::npos || equals == 0 || !token.ends_with('"') || token.size() < equals + 3) {
    return false;
  }
  const auto name = token.substr(0, equals);
  auto is_name_char = [](char c) { return (c >= 'A' && c <= 'Z') || strings::is_digit(c) || c == '_'; };
  if (!std::all_of(name.begin(), name.end(), is_name_char)) {
    return false;
  }
  auto& flags = name == "USE" ? entry.use : entry.use_expand[std::string(name)];
  auto value = token.substr(equals + 2, token.size() - equals - 3);
  size_t start = 0;
  while (start <= value.size()) {
    const auto space = value.find(' ', start);
    const auto flag = output_slice(value, start, space);
    if (!flag.empty()) {
      add_flag(flag, flags);
    }
    if (space == std::string_view::npos) {
      break;
    }
    start = space + 1;
  }
  return true;
}

bool is_size_number(std::string_view token)
{
  return !token.empty() && strings::is_digit(token.front()) &&
         std::all_of(token.begin(), token.end(), [](char c) { return strings::is_digit(c) || c == ',' || c == '.'; });
}

bool is_size_unit(std::string_view token)
{
  return token == "KiB" || token == "kB" || token == "MiB" || token == "GiB" || token == "B";
}

// Reads what follows the package: old versions, USE strings, size, "to ROOT".
void read_details(const std::vector<std::string_view>& fields, size_t index, MergeEntry& entry)
{
  if (index < fields.size() && fields[index].starts_with('[')) {
    auto inner = fields[index].substr(1);
    if (inner.ends_with(']')) {
      inner.remove_suffix(1);
    }
    size_t start = 0;
    while (start <= inner.size()) {
      const auto comma = inner.find(',', start);
      const auto version = trim(output_slice(inner, start, comma));
      if (!version.empty()) {
        entry.old_versions.emplace_back(version);
      }
      if (comma == std::string_view::npos) {
        break;
      }
      start = comma + 1;
    }
    ++index;
  }
  for (; index < fields.size(); ++index) {
    const auto field = fields[index];
    if (read_use_variable(field, entry)) {
      continue;
    }
    if (is_size_number(field) && index + 1 < fields.size() && is_size_unit(fields[index + 1])) {
      entry.size = std::string(field) + " " + std::string(fields[index + 1]);
      ++index;
    } else if (field == "to" && index + 1 < fields.size() && fields[index + 1].starts_with('/')) {
      entry.root = std::string(fields[index + 1]);
      ++index;
    }
    // Anything else (the `--quiet-repo-display` "[N]" index) carries nothing we keep.
  }
}

size_t leading_spaces(std::string_view text)
{
  size_t count = 0;
  while (count < text.size() && text[count] == ' ') {
    ++count;
  }
  return count;
}

void read_blocker(std::string_view rest, MergeEntry& entry)
{
  rest = trim(rest);
  const auto space = rest.find(' ');
  entry.blocker = std::string(rest.substr(0, space));
  if (space != std::string_view::npos) {
    auto text = trim(rest.substr(space + 1));
    if (text.size() >= 2 && text.front() == '(' && text.back() == ')') {
      text = text.substr(1, text.size() - 2);
    }
    entry.blocker_text = std::string(text);
  }
}

enum class LineKind { entry, not_an_entry };

// `[type attrs] indent package …`.
Result<LineKind> read_bracket_line(std::string_view line, size_t line_number, MergeEntry& entry)
{
  const auto close = line.find(']');
  if (close == std::string_view::npos) {
    return LineKind::not_an_entry;
  }
  const auto inner = line.substr(1, close - 1);
  const auto space = inner.find(' ');
  const auto type = type_from_name(inner.substr(0, space));
  if (!type) {
    return LineKind::not_an_entry;
  }
  entry.type = *type;
  if (space != std::string_view::npos) {
    for (const char c : inner.substr(space)) {
      if (c != ' ') {
        entry.attributes += c;
      }
    }
  }
  auto rest = line.substr(close + 1);
  const auto spaces = leading_spaces(rest);
  // "] " then one space per --tree level.
  entry.depth = spaces > 0 ? static_cast<int>(spaces) - 1 : 0;
  rest = rest.substr(spaces);
  if (entry.type == MergeType::blocks) {
    read_blocker(rest, entry);
    if (entry.blocker.empty()) {
      return fail(ErrorKind::invalid, "emerge output line {}: blocker without an atom", line_number);
    }
    return LineKind::entry;
  }
  const auto fields = split_fields(rest);
  if (fields.empty()) {
    return fail(ErrorKind::invalid, "emerge output line {}: no package after '{}'", line_number,
                line.substr(0, close + 1));
  }
  if (read_package(fields[0], entry)) {
    read_details(fields, 1, entry);
    return LineKind::entry;
  }
  // --columns: "cat/pkg   [version:slot::repo]   [old]".
  if (is_cp(fields[0]) && fields.size() > 1 && fields[1].starts_with('[') && fields[1].ends_with(']') &&
      read_version_column(fields[0], fields[1].substr(1, fields[1].size() - 2), entry)) {
    read_details(fields, 2, entry);
    return LineKind::entry;
  }
  return fail(ErrorKind::invalid, "emerge output line {}: cannot read package '{}'", line_number, fields[0]);
}

// `--quiet --columns`: "attrs indent cat/pkg version [old]", no brackets around the type.
LineKind read_quiet_columns_line(std::string_view line, MergeEntry& entry)
{
  constexpr std::string_view k_attribute_chars = " INrSRFfgUDBb";
  constexpr size_t k_columns = 6;
  if (line.size() <= k_columns + 1 || line[k_columns] != ' ' ||
      !std::all_of(line.begin(), line.begin() + k_columns,
                   [&](char c) { return k_attribute_chars.find(c) != std::string_view::npos; })) {
    return LineKind::not_an_entry;
  }
  std::string attributes;
  for (const char c : line.substr(0, k_columns)) {
    if (c != ' ') {
      attributes += c;
    }
  }
  auto rest = line.substr(k_columns + 1);
  const auto depth = static_cast<int>(leading_spaces(rest));
  rest = rest.substr(static_cast<size_t>(depth));
  if (attributes.find_first_of("Bb") != std::string::npos) {
    MergeEntry blocker;
    blocker.type = MergeType::blocks;
    read_blocker(rest, blocker);
    if (blocker.blocker.empty() || blocker.blocker.find('/') == std::string::npos) {
      return LineKind::not_an_entry;
    }
    blocker.attributes = std::move(attributes);
    blocker.depth = depth;
    entry = std::move(blocker);
    return LineKind::entry;
  }
  const auto fields = split_fields(rest);
  MergeEntry candidate;
  candidate.type = MergeType::merge;
  if (fields.size() < 2 || !is_cp(fields[0]) || !read_version_column(fields[0], fields[1], candidate)) {
    return LineKind::not_an_entry;
  }
  read_details(fields, 2, candidate);
  candidate.attributes = std::move(attributes);
  candidate.depth = depth;
  entry = std::move(candidate);
  return LineKind::entry;
}

nlohmann::json use_flags_json(const UseFlags& flags)
{
  return nlohmann::json{{"enabled", flags.enabled}, {"disabled", flags.disabled}};
}

} // namespace

std::string_view merge_type_name(MergeType type)
{
  for (const auto& [candidate, name] : k_type_names) {
    if (candidate == type) {
      return name;
    }
  }
  return "merge";
}

std::vector<std::string> MergeEntry::enabled_flags() const
{
  std::vector<std::string> out = use.enabled;
  for (const auto& [name, flags] : use_expand) {
    std::string prefix;
    for (const char c : name) {
      prefix += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    for (const auto& value : flags.enabled) {
      out.push_back(prefix + "_" + value);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<MergeList> parse_emerge_output(std::string_view text)
{
  MergeList list;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    const auto raw = output_slice(text, start, end);
    start = end == std::string_view::npos ? text.size() : end + 1;
    ++line_number;
    const auto line = displayed_text(raw);
    if (line.find("would be merged, in reverse order") != std::string::npos ||
        line.find("would be fetched, in reverse order") != std::string::npos ||
        line.find("would be built, in reverse order") != std::string::npos) {
      list.reverse_display = true;
      continue;
    }
    MergeEntry entry;
    LineKind kind = LineKind::not_an_entry;
    if (line.starts_with('[')) {
      auto read = read_bracket_line(line, line_number, entry);
      if (!read) {
        return fail(read.error());
      }
      kind = *read;
    } else {
      kind = read_quiet_columns_line(line, entry);
    }
    if (kind == LineKind::entry) {
      list.entries.push_back(std::move(entry));
    }
  }
  if (list.reverse_display) {
    // --tree shows dependents before their dependencies; the merge order is the reverse.
    std::reverse(list.entries.begin(), list.entries.end());
  }
  return list;
}

nlohmann::json merge_list_to_json(const MergeList& list)
{
  auto entries = nlohmann::json::array();
  for (const auto& entry : list.entries) {
    auto use_expand = nlohmann::json::object();
    for (const auto& [name, flags] : entry.use_expand) {
      use_expand[name] = use_flags_json(flags);
    }
    entries.push_back({{"type", merge_type_name(entry.type)},
                       {"attributes", entry.attributes},
                       {"cpv", entry.cpv},
                       {"build_id", entry.build_id ? nlohmann::json(*entry.build_id) : nlohmann::json(nullptr)},
                       {"slot", entry.slot},
                       {"subslot", entry.subslot},
                       {"repo", entry.repo},
                       {"old_versions", entry.old_versions},
                       {"use", use_flags_json(entry.use)},
                       {"use_expand", use_expand},
                       {"depth", entry.depth},
                       {"blocker", entry.blocker},
                       {"blocker_text", entry.blocker_text},
                       {"size", entry.size},
                       {"root", entry.root}});
  }
  return nlohmann::json{{"reverse_display", list.reverse_display}, {"entries", entries}};
}

} // namespace swarm::portage
