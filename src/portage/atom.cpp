#include "portage/atom.hpp"

#include <algorithm>
#include <charconv>

#include "core/strings.hpp"
#include "portage/eapi.hpp"

namespace swarm::portage {

namespace {

bool is_alnum(char c)
{
  return strings::is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Python's `\w` under re.ASCII.
bool is_word(char c)
{
  return is_alnum(c) || c == '_';
}

// text[begin:end], `end` may be npos.
std::string_view slice(std::string_view text, size_t begin, size_t end)
{
  return text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin);
}

bool all_chars(std::string_view text, bool (*accept)(char))
{
  return std::all_of(text.begin(), text.end(), accept);
}

// `[\w][\w+.-]*`: category and slot names.
bool is_slot_name(std::string_view text)
{
  return !text.empty() && is_word(text.front()) &&
         all_chars(text.substr(1), [](char c) { return is_word(c) || c == '+' || c == '.' || c == '-'; });
}

// `[\w][\w-]*`: repository names.
bool is_repo_name(std::string_view text)
{
  return !text.empty() && is_word(text.front()) &&
         all_chars(text.substr(1), [](char c) { return is_word(c) || c == '-'; });
}

// `[\w+./*=-]+`: the loose slot part of the atom regex, checked precisely later.
bool is_loose_slot(std::string_view text)
{
  return !text.empty() && all_chars(text, [](char c) {
    return is_word(c) || c == '+' || c == '.' || c == '/' || c == '*' || c == '=' || c == '-';
  });
}

// `[A-Za-z0-9][A-Za-z0-9+_@-]*`: a USE flag.
bool is_use_flag(std::string_view text)
{
  return !text.empty() && is_alnum(text.front()) &&
         all_chars(text.substr(1), [](char c) { return is_word(c) || c == '+' || c == '@' || c == '-'; });
}

// Full match of `_v(-r\d+)?`; the shared version grammar lives in version.cpp, and a valid
// version string is exactly what is_valid_version accepts.
bool is_version_with_revision(std::string_view text)
{
  return is_valid_version(text);
}

// "VR-VR" where the split '-' is the only one followed by a digit (a revision's '-' is followed
// by 'r'), so there is at most one split: returns its position.
std::optional<size_t> split_version_version(std::string_view text)
{
  for (size_t j = text.find('-'); j != std::string_view::npos; j = text.find('-', j + 1)) {
    if (is_version_with_revision(text.substr(0, j)) && is_version_with_revision(text.substr(j + 1))) {
      return j;
    }
  }
  return std::nullopt;
}

// Character classes of the package-name part of the two atom regexes.
struct NameClasses {
  bool (*category_first)(char);
  bool (*category_rest)(char);
  bool (*package_first)(char);
  bool (*package_rest)(char);
};

constexpr NameClasses k_plain_names{
  [](char c) { return is_word(c); },
  [](char c) { return is_word(c) || c == '+' || c == '.' || c == '-'; },
  [](char c) { return is_word(c); },
  [](char c) { return is_word(c) || c == '+' || c == '-'; },
};

// Wildcard atoms: `[\w+*][\w+.*-]*` / `[\w+*][\w+*-]*?`.
constexpr NameClasses k_wildcard_names{
  [](char c) { return is_word(c) || c == '+' || c == '*'; },
  [](char c) { return is_word(c) || c == '+' || c == '.' || c == '*' || c == '-'; },
  [](char c) { return is_word(c) || c == '+' || c == '*'; },
  [](char c) { return is_word(c) || c == '+' || c == '*' || c == '-'; },
};

bool is_category(std::string_view text, const NameClasses& classes)
{
  return !text.empty() && classes.category_first(text.front()) &&
         std::all_of(text.begin() + 1, text.end(), classes.category_rest);
}

// How `CAT/PKG(-VR)?` (followed by `-VR` when `then_version`) matched the whole of a string,
// following the regex engine's order: shortest package name first, optional group tried first.
struct CpMatch {
  size_t cp_end = 0;           // end of the `CAT/PKG(-VR)?` part
  bool cp_has_version = false; // the optional `-VR` inside cp matched
  size_t cp_version_begin = 0; // where that `-VR` starts (the '-')
};

std::optional<CpMatch> match_cp(std::string_view text, bool then_version, const NameClasses& classes)
{
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || !is_category(text.substr(0, slash), classes)) {
    return std::nullopt;
  }
  const auto name = text.substr(slash + 1);
  const size_t base = slash + 1;
  if (name.empty() || !classes.package_first(name.front())) {
    return std::nullopt;
  }
  for (size_t length = 1; length <= name.size(); ++length) {
    if (length == name.size()) {
      if (then_version) {
        return std::nullopt;
      }
      return CpMatch{text.size(), false, 0};
    }
    const char c = name[length];
    if (c == '-') {
      const auto tail = name.substr(length + 1);
      if (then_version) {
        if (const auto split = split_version_version(tail)) {
          return CpMatch{base + length + 1 + *split, true, base + length};
        }
        if (is_version_with_revision(tail)) {
          return CpMatch{base + length, false, 0};
        }
      } else if (is_version_with_revision(tail)) {
        return CpMatch{text.size(), true, base + length};
      }
    }
    if (!classes.package_rest(c)) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

// The part of an atom after the package: `:SLOT` and `::repo`, both optional.
struct SlotRepo {
  std::optional<std::string_view> slot;
  std::optional<std::string_view> repo;
};

std::optional<SlotRepo> split_slot_repo(std::string_view rest)
{
  SlotRepo out;
  if (rest.empty()) {
    return out;
  }
  if (!rest.starts_with("::")) {
    if (rest.front() != ':') {
      return std::nullopt;
    }
    const auto end = rest.find(':', 1);
    const auto slot = slice(rest, 1, end);
    if (!is_loose_slot(slot)) {
      return std::nullopt;
    }
    out.slot = slot;
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    if (rest.empty()) {
      return out;
    }
    if (!rest.starts_with("::")) {
      return std::nullopt;
    }
  }
  const auto repo = rest.substr(2);
  if (!is_repo_name(repo)) {
    return std::nullopt;
  }
  out.repo = repo;
  return out;
}

Error invalid_atom(std::string_view text, std::string_view why = {})
{
  if (why.empty()) {
    return Error{ErrorKind::invalid, fmt::format("invalid atom '{}'", text)};
  }
  return Error{ErrorKind::invalid, fmt::format("invalid atom '{}': {}", text, why)};
}

// The slot part (Portage _get_slot_dep_re): `SLOT[/SUB][=|*]` with slot operators, else `SLOT`.
Result<> parse_slot(Atom& atom, std::string_view slot, const EapiAttributes& eapi, std::string_view text)
{
  if (!eapi.slot_operator) {
    if (!is_slot_name(slot)) {
      return fail(invalid_atom(text, "invalid slot"));
    }
    atom.slot = std::string(slot);
    return {};
  }
  auto rest = slot;
  auto take_name = [&rest]() -> std::optional<std::string_view> {
    if (rest.empty() || !is_word(rest.front())) {
      return std::nullopt;
    }
    size_t i = 1;
    while (i < rest.size() && (is_word(rest[i]) || rest[i] == '+' || rest[i] == '.' || rest[i] == '-')) {
      ++i;
    }
    const auto name = rest.substr(0, i);
    rest.remove_prefix(i);
    return name;
  };
  if (const auto main = take_name()) {
    atom.slot = std::string(*main);
    if (rest.starts_with('/')) {
      rest.remove_prefix(1);
      const auto sub = take_name();
      if (!sub) {
        return fail(invalid_atom(text, "invalid sub-slot"));
      }
      atom.sub_slot = std::string(*sub);
    }
  }
  if (rest == "=" || rest == "*") {
    atom.slot_operator = std::string(rest);
  } else if (!rest.empty()) {
    return fail(invalid_atom(text, "invalid slot"));
  }
  if (atom.slot && atom.slot_operator == "*") {
    return fail(invalid_atom(text, "':SLOT*' is not a slot operator"));
  }
  if (!atom.slot && atom.slot_operator.empty()) {
    return fail(invalid_atom(text, "empty slot"));
  }
  return {};
}

// The `[...]` part (Portage _use_dep): each token `[!-]?flag(default)?[?=]?` with a valid
// operator, and a flag's default must not contradict another token for the same flag.
Result<> parse_use(Atom& atom, std::string_view use_text, std::string_view text)
{
  FlagSet missing_enabled;
  FlagSet missing_disabled;
  FlagSet no_default;
  auto body = use_text.substr(1, use_text.size() - 2);
  size_t start = 0;
  while (true) {
    const auto comma = body.find(',', start);
    const auto token = slice(body, start, comma);
    UseDep dep;
    dep.text = std::string(token);
    auto rest = token;
    std::string_view prefix;
    if (rest.starts_with('!') || rest.starts_with('-')) {
      prefix = rest.substr(0, 1);
      rest.remove_prefix(1);
    }
    std::string_view suffix;
    if (rest.ends_with('?') || rest.ends_with('=')) {
      suffix = rest.substr(rest.size() - 1);
      rest.remove_suffix(1);
    }
    if (rest.ends_with("(+)")) {
      dep.missing = UseDefault::enabled;
      rest.remove_suffix(3);
    } else if (rest.ends_with("(-)")) {
      dep.missing = UseDefault::disabled;
      rest.remove_suffix(3);
    }
    if (!is_use_flag(rest)) {
      return fail(invalid_atom(text, fmt::format("invalid use dep '{}'", token)));
    }
    dep.flag = std::string(rest);
    const std::string op = std::string(prefix) + std::string(suffix);
    if (op.empty()) {
      dep.kind = UseDepKind::enabled;
    } else if (op == "-") {
      dep.kind = UseDepKind::disabled;
    } else if (op == "?") {
      dep.kind = UseDepKind::if_enabled;
    } else if (op == "=") {
      dep.kind = UseDepKind::equal;
    } else if (op == "!=") {
      dep.kind = UseDepKind::not_equal;
    } else if (op == "!?") {
      dep.kind = UseDepKind::if_disabled;
    } else {
      return fail(invalid_atom(text, fmt::format("invalid use dep '{}'", token)));
    }
    const bool conflict = [&] {
      switch (dep.missing) {
      case UseDefault::enabled:
        return missing_disabled.contains(dep.flag) || no_default.contains(dep.flag);
      case UseDefault::disabled:
        return missing_enabled.contains(dep.flag) || no_default.contains(dep.flag);
      case UseDefault::none:
        return missing_enabled.contains(dep.flag) || missing_disabled.contains(dep.flag);
      }
      return false;
    }();
    if (conflict) {
      return fail(invalid_atom(text, fmt::format("invalid use dep '{}'", token)));
    }
    switch (dep.missing) {
    case UseDefault::enabled:
      missing_enabled.insert(dep.flag);
      break;
    case UseDefault::disabled:
      missing_disabled.insert(dep.flag);
      break;
    case UseDefault::none:
      no_default.insert(dep.flag);
      break;
    }
    atom.use.push_back(std::move(dep));
    if (comma == std::string_view::npos) {
      break;
    }
    start = comma + 1;
  }
  atom.has_use = true;
  atom.unevaluated_has_use = true;
  atom.use_required = std::move(no_default);
  return {};
}

std::optional<uint64_t> parse_build_id(std::string_view text)
{
  if (text.empty() || (text.size() > 1 && text.front() == '0') || !all_chars(text, strings::is_digit)) {
    return std::nullopt;
  }
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// The wildcard grammar (Portage _get_atom_wildcard_re), tried when the normal one fails.
Result<> parse_wildcard(Atom& atom, std::string_view body, std::string_view text, const EapiAttributes& eapi)
{
  if (body.find('[') != std::string_view::npos) {
    return fail(invalid_atom(text));
  }
  const auto colon = body.find(':');
  const auto cpv_part = body.substr(0, colon);
  const auto slot_repo = split_slot_repo(colon == std::string_view::npos ? std::string_view{} : body.substr(colon));
  if (!slot_repo) {
    return fail(invalid_atom(text));
  }
  std::string_view extended_version;
  if (const auto simple = match_cp(cpv_part, false, k_wildcard_names)) {
    // Portage rejects the simple form only when its version group (\.\d+) matched, i.e. a
    // version with a dot; `*/foo-2` stays a (strange) wildcard name.
    if (simple->cp_has_version) {
      const auto version = cpv_part.substr(simple->cp_version_begin + 1);
      const auto digits_end =
        std::find_if(version.begin(), version.end(), [](char c) { return !strings::is_digit(c); });
      if (digits_end != version.end() && *digits_end == '.') {
        return fail(invalid_atom(text));
      }
    }
    atom.cpv = std::string(cpv_part);
    atom.cp = atom.cpv;
  } else if (cpv_part.starts_with('=')) {
    const auto inner = cpv_part.substr(1);
    const auto dash = inner.rfind('-');
    if (dash == std::string_view::npos) {
      return fail(invalid_atom(text));
    }
    const auto version = inner.substr(dash + 1);
    if (version.size() < 3 || version.front() != '*' || version.back() != '*' ||
        !all_chars(version.substr(1, version.size() - 2), is_word)) {
      return fail(invalid_atom(text));
    }
    const auto cp = inner.substr(0, dash);
    const auto slash = cp.find('/');
    if (slash == std::string_view::npos || !is_category(cp.substr(0, slash), k_wildcard_names)) {
      return fail(invalid_atom(text));
    }
    const auto name = cp.substr(slash + 1);
    if (name.empty() || !k_wildcard_names.package_first(name.front()) ||
        !std::all_of(name.begin() + 1, name.end(), k_wildcard_names.package_rest)) {
      return fail(invalid_atom(text));
    }
    atom.op = "=*";
    atom.cpv = std::string(inner);
    atom.cp = std::string(cp);
    extended_version = version;
  } else {
    return fail(invalid_atom(text));
  }
  if (atom.cpv.find("**") != std::string::npos) {
    return fail(invalid_atom(text));
  }
  if (const auto cpv = parse_cpv(atom.cpv)) {
    atom.version = cpv->full_version();
    atom.version_base = cpv->version;
  } else {
    atom.version = std::string(extended_version);
  }
  atom.extended_syntax = true;
  if (slot_repo->slot) {
    if (auto parsed = parse_slot(atom, *slot_repo->slot, eapi, text); !parsed) {
      return fail(parsed.error());
    }
  }
  if (slot_repo->repo) {
    atom.repo = std::string(*slot_repo->repo);
  }
  return {};
}

// The normal grammar (Portage _get_atom_re): `op CPV`, `=CPV*` or `CP`, then slot, repo, use.
// Returns false (not an error) when it does not match, so the wildcard grammar can be tried.
Result<bool> parse_normal(Atom& atom, std::string_view body, std::string_view text, const EapiAttributes& eapi,
                          bool allow_build_id)
{
  std::string_view without_use = body;
  std::string_view use_text;
  if (const auto bracket = body.find('['); bracket != std::string_view::npos) {
    use_text = body.substr(bracket);
    without_use = body.substr(0, bracket);
    // `\[.*\]\Z`: '.' does not match a newline.
    if (!use_text.ends_with(']') || use_text.size() < 2 || use_text.find('\n') != std::string_view::npos) {
      return false;
    }
  }
  const auto colon = without_use.find(':');
  const auto cpv_part = without_use.substr(0, colon);
  const auto slot_repo =
    split_slot_repo(colon == std::string_view::npos ? std::string_view{} : without_use.substr(colon));
  if (!slot_repo) {
    return false;
  }

  // `[=~]|[><]=?` followed by a cpv.
  size_t op_length = 0;
  if (cpv_part.starts_with("<=") || cpv_part.starts_with(">=")) {
    op_length = 2;
  } else if (cpv_part.starts_with('<') || cpv_part.starts_with('>') || cpv_part.starts_with('=') ||
             cpv_part.starts_with('~')) {
    op_length = 1;
  }
  std::string_view cpv_text;
  bool matched = false;
  if (op_length > 0) {
    const auto rest = cpv_part.substr(op_length);
    if (const auto m = match_cp(rest, true, k_plain_names)) {
      matched = true;
      atom.op = std::string(cpv_part.substr(0, op_length));
      cpv_text = rest;
      if (m->cp_has_version) {
        // `=cat/pkg-1.2-3`: the trailing version is a build id.
        if (!allow_build_id) {
          return fail(invalid_atom(text, "build id not allowed"));
        }
        const auto build_id = parse_build_id(rest.substr(m->cp_end + 1));
        if (!build_id) {
          return fail(invalid_atom(text, "invalid build id"));
        }
        atom.build_id = *build_id;
        cpv_text = rest.substr(0, m->cp_end);
      }
    }
  }
  if (!matched && cpv_part.size() >= 2 && cpv_part.front() == '=' && cpv_part.back() == '*') {
    const auto inner = cpv_part.substr(1, cpv_part.size() - 2);
    if (const auto m = match_cp(inner, true, k_plain_names)) {
      if (m->cp_has_version) {
        return fail(invalid_atom(text));
      }
      matched = true;
      atom.op = "=*";
      cpv_text = inner;
    }
  }
  if (!matched) {
    const auto m = match_cp(cpv_part, false, k_plain_names);
    if (!m) {
      return false;
    }
    if (m->cp_has_version) {
      return fail(invalid_atom(text, "a version needs an operator"));
    }
    atom.cp = std::string(cpv_part);
    atom.cpv = atom.cp;
  } else {
    const auto cpv = parse_cpv(cpv_text);
    if (!cpv) {
      return fail(invalid_atom(text));
    }
    atom.cp = cpv->cp();
    atom.cpv = std::string(cpv_text);
    atom.version = cpv->full_version();
    atom.version_base = cpv->version;
  }
  if (slot_repo->slot) {
    if (auto parsed = parse_slot(atom, *slot_repo->slot, eapi, text); !parsed) {
      return fail(parsed.error());
    }
  }
  if (slot_repo->repo) {
    atom.repo = std::string(*slot_repo->repo);
  }
  if (!use_text.empty()) {
    if (auto parsed = parse_use(atom, use_text, text); !parsed) {
      return fail(parsed.error());
    }
  }
  return true;
}

// Glob of extended atoms: '*' matches any run of characters except '/'.
bool glob_match(std::string_view pattern, std::string_view text)
{
  if (pattern.empty()) {
    return text.empty();
  }
  if (pattern.front() == '*') {
    for (size_t i = 0;; ++i) {
      if (glob_match(pattern.substr(1), text.substr(i))) {
        return true;
      }
      if (i >= text.size() || text[i] == '/') {
        return false;
      }
    }
  }
  return !text.empty() && text.front() == pattern.front() && glob_match(pattern.substr(1), text.substr(1));
}

// Portage's leading-zero normalisation for `=ver*` prefix matching: "045" → "45", "0" kept,
// and a version left without a leading digit gets "0" back.
std::string strip_leading_zeros(std::string_view version)
{
  size_t i = 0;
  while (i < version.size() && version[i] == '0') {
    ++i;
  }
  std::string out(version.substr(i));
  if (out.empty() || !strings::is_digit(out.front())) {
    out.insert(out.begin(), '0');
  }
  return out;
}

// "cat/pkg" == cpv.category + "/" + cpv.package, without building the string.
bool cp_equals(const Cpv& cpv, std::string_view cp)
{
  return cp.size() == cpv.category.size() + 1 + cpv.package.size() && cp.starts_with(cpv.category) &&
         cp[cpv.category.size()] == '/' && cp.ends_with(cpv.package);
}

// Portage's _pkg_str.version of a candidate, without allocating when no revision was written.
std::string_view full_version(const Cpv& cpv, std::string& storage)
{
  if (cpv.revision == "r0" && !cpv.revision_written) {
    return cpv.version;
  }
  storage = cpv.full_version();
  return storage;
}

bool matches_version(const Atom& atom, const MatchCandidate& candidate)
{
  const auto& op = atom.op;
  if (atom.extended_syntax) {
    const auto cp = candidate.cpv.cp();
    if (cp != atom.cpv && !glob_match(atom.cp, cp)) {
      return false;
    }
    if (op == "=*") {
      // Only `*\w+*` is supported: a substring of "version-rN".
      if (atom.version.size() < 2) {
        return false;
      }
      const auto needle = std::string_view(atom.version).substr(1, atom.version.size() - 2);
      const auto haystack = candidate.cpv.version + "-" + candidate.cpv.revision;
      return haystack.find(needle) != std::string::npos;
    }
    return true;
  }
  if (!cp_equals(candidate.cpv, atom.cp)) {
    return false;
  }
  if (op.empty()) {
    return true;
  }
  std::string storage;
  const auto candidate_version = full_version(candidate.cpv, storage);
  if (op == "=") {
    if (vercmp(candidate_version, atom.version) != 0) {
      return false;
    }
    return !(atom.build_id && candidate.build_id && *atom.build_id != *candidate.build_id);
  }
  if (op == "~") {
    // cpvequal on the version without revision, and then the same spelling.
    return candidate.cpv.version == atom.version_base;
  }
  if (op == "=*") {
    // A literal prefix match on the cpv string (after leading-zero normalisation), only on a
    // boundary between version parts: 1* does not match 10 (Portage bug 560466).
    const auto atom_version = strip_leading_zeros(atom.version_base);
    std::string pattern = atom.cpv;
    if (atom_version != atom.version_base) {
      pattern = atom.cp + "-" + atom_version + atom.cpv.substr(atom.cp.size() + 1 + atom.version_base.size());
    }
    const auto candidate_text = candidate.cpv.str();
    const auto stripped = strip_leading_zeros(candidate.cpv.version);
    std::string text = candidate_text;
    if (stripped != candidate.cpv.version) {
      const auto cp = candidate.cpv.cp();
      text = cp + "-" + stripped + candidate_text.substr(cp.size() + 1 + candidate.cpv.version.size());
    }
    if (!text.starts_with(pattern)) {
      return false;
    }
    if (text.size() == pattern.size()) {
      return true;
    }
    const char next = text[pattern.size()];
    return next == '.' || next == '_' || next == '-' || strings::is_digit(pattern.back()) != strings::is_digit(next);
  }
  const auto result = vercmp(candidate_version, atom.version);
  if (!result) {
    return false;
  }
  if (op == ">") {
    return *result > 0;
  }
  if (op == ">=") {
    return *result >= 0;
  }
  if (op == "<") {
    return *result < 0;
  }
  if (op == "<=") {
    return *result <= 0;
  }
  return false;
}

bool matches_use(const Atom& atom, const MatchCandidate& candidate)
{
  if (!atom.unevaluated_has_use || candidate.use_enabled == nullptr || candidate.iuse == nullptr) {
    return true;
  }
  const auto& iuse = *candidate.iuse;
  const auto& enabled_in_candidate = *candidate.use_enabled;
  for (const auto& flag : atom.use_required) {
    if (!iuse.contains(flag)) {
      return false;
    }
  }
  if (!atom.has_use) {
    return true;
  }
  // Defaults apply only to flags the candidate lacks in IUSE.
  FlagSet missing_enabled;
  FlagSet missing_disabled;
  for (const auto& flag : atom.use_missing_enabled()) {
    if (!iuse.contains(flag)) {
      missing_enabled.insert(flag);
    }
  }
  for (const auto& flag : atom.use_missing_disabled()) {
    if (!iuse.contains(flag)) {
      missing_disabled.insert(flag);
    }
  }
  for (const auto& flag : atom.use_enabled()) {
    if (missing_disabled.contains(flag)) {
      return false;
    }
    if (!enabled_in_candidate.contains(flag) && !missing_enabled.contains(flag)) {
      return false;
    }
  }
  for (const auto& flag : atom.use_disabled()) {
    if (missing_enabled.contains(flag)) {
      return false;
    }
    if (enabled_in_candidate.contains(flag) && !missing_disabled.contains(flag)) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string Atom::category() const
{
  return cp.substr(0, cp.find('/'));
}

std::string Atom::package() const
{
  const auto slash = cp.find('/');
  return slash == std::string::npos ? std::string{} : cp.substr(slash + 1);
}

std::string Atom::use_string() const
{
  if (!has_use || use.empty()) {
    return {};
  }
  std::string out = "[";
  for (size_t i = 0; i < use.size(); ++i) {
    if (i > 0) {
      out += ',';
    }
    out += use[i].text;
  }
  out += ']';
  return out;
}

FlagSet Atom::use_enabled() const
{
  FlagSet out;
  for (const auto& dep : use) {
    if (dep.kind == UseDepKind::enabled) {
      out.insert(dep.flag);
    }
  }
  return out;
}

FlagSet Atom::use_disabled() const
{
  FlagSet out;
  for (const auto& dep : use) {
    if (dep.kind == UseDepKind::disabled) {
      out.insert(dep.flag);
    }
  }
  return out;
}

FlagSet Atom::use_missing_enabled() const
{
  FlagSet out;
  for (const auto& dep : use) {
    if (dep.missing == UseDefault::enabled) {
      out.insert(dep.flag);
    }
  }
  return out;
}

FlagSet Atom::use_missing_disabled() const
{
  FlagSet out;
  for (const auto& dep : use) {
    if (dep.missing == UseDefault::disabled) {
      out.insert(dep.flag);
    }
  }
  return out;
}

bool Atom::has_use_conditionals() const
{
  return std::any_of(use.begin(), use.end(), [](const UseDep& dep) {
    return dep.kind != UseDepKind::enabled && dep.kind != UseDepKind::disabled;
  });
}

Atom Atom::evaluate_conditionals(const FlagSet& enabled) const
{
  if (!has_use || !has_use_conditionals()) {
    return *this;
  }
  Atom out = *this;
  out.use.clear();
  auto add = [&out](const UseDep& dep, UseDepKind kind) {
    UseDep evaluated = dep;
    evaluated.kind = kind;
    const std::string_view default_text = dep.missing == UseDefault::enabled    ? "(+)"
                                          : dep.missing == UseDefault::disabled ? "(-)"
                                                                                : "";
    evaluated.text = (kind == UseDepKind::disabled ? "-" : "") + dep.flag + std::string(default_text);
    out.use.push_back(std::move(evaluated));
  };
  for (const auto& dep : use) {
    const bool on = enabled.contains(dep.flag);
    switch (dep.kind) {
    case UseDepKind::if_enabled:
      if (on) {
        add(dep, UseDepKind::enabled);
      }
      break;
    case UseDepKind::if_disabled:
      if (!on) {
        add(dep, UseDepKind::disabled);
      }
      break;
    case UseDepKind::equal:
      add(dep, on ? UseDepKind::enabled : UseDepKind::disabled);
      break;
    case UseDepKind::not_equal:
      add(dep, on ? UseDepKind::disabled : UseDepKind::enabled);
      break;
    case UseDepKind::enabled:
    case UseDepKind::disabled:
      out.use.push_back(dep);
      break;
    }
  }
  out.has_use = !out.use.empty();
  // Portage rebuilds the string from remove_slot(str(atom)) (everything before the first ':'
  // or '['), the slot part and the new USE deps: a `::repo` is lost on the way.
  const auto cut = std::min(text.find(':'), text.find('['));
  std::string rebuilt = text.substr(0, cut);
  if (slot || !slot_operator.empty()) {
    rebuilt += ':';
    if (slot) {
      rebuilt += *slot;
    }
    if (sub_slot) {
      rebuilt += '/' + *sub_slot;
    }
    rebuilt += slot_operator;
  }
  out.repo.reset();
  out.text = rebuilt + out.use_string();
  out.unevaluated = unevaluated;
  return out;
}

Result<Atom> parse_atom(std::string_view text, const AtomOptions& options)
{
  const auto eapi = eapi_attributes(options.eapi ? std::optional<std::string_view>(*options.eapi) : std::nullopt);
  const bool allow_repo = options.allow_repo.value_or(options.eapi ? eapi.repo_deps : true);
  const bool allow_build_id = options.allow_build_id.value_or(!options.eapi.has_value());

  Atom atom;
  atom.text = std::string(text);
  atom.unevaluated = atom.text;
  std::string_view body = text;
  if (body.starts_with("!!")) {
    atom.blocker = BlockerKind::strong;
    body.remove_prefix(2);
  } else if (body.starts_with('!')) {
    atom.blocker = BlockerKind::weak;
    body.remove_prefix(1);
  }

  auto normal = parse_normal(atom, body, text, eapi, allow_build_id);
  if (!normal) {
    return fail(normal.error());
  }
  if (!*normal) {
    if (!options.allow_wildcard) {
      return fail(invalid_atom(text));
    }
    Atom fresh;
    fresh.text = std::move(atom.text);
    fresh.unevaluated = std::move(atom.unevaluated);
    fresh.blocker = atom.blocker;
    atom = std::move(fresh);
    if (auto wildcard = parse_wildcard(atom, body, text, eapi); !wildcard) {
      return fail(wildcard.error());
    }
  }
  if (atom.repo && !allow_repo) {
    return fail(invalid_atom(text, "repository dependencies are not allowed here"));
  }
  if (options.eapi) {
    const auto& name = *options.eapi;
    if (atom.slot && !atom.slot->empty() && !eapi.slot_deps) {
      return fail(invalid_atom(text, fmt::format("slot deps are not allowed in EAPI {}", name)));
    }
    if (atom.has_use) {
      if (!eapi.use_deps) {
        return fail(invalid_atom(text, fmt::format("use deps are not allowed in EAPI {}", name)));
      }
      if (!eapi.use_dep_defaults && (!atom.use_missing_enabled().empty() || !atom.use_missing_disabled().empty())) {
        return fail(invalid_atom(text, fmt::format("use dep defaults are not allowed in EAPI {}", name)));
      }
      if (options.is_valid_flag) {
        for (const auto& dep : atom.use) {
          const bool conditional = dep.kind != UseDepKind::enabled && dep.kind != UseDepKind::disabled;
          if (conditional && !options.is_valid_flag(dep.flag)) {
            return fail(invalid_atom(
              text, fmt::format("USE flag '{}' referenced in conditional '{}' is not in IUSE", dep.flag, dep.text)));
          }
        }
      }
    }
    if (atom.blocker == BlockerKind::strong && !eapi.strong_blocks) {
      return fail(invalid_atom(text, fmt::format("strong blocks are not allowed in EAPI {}", name)));
    }
  }
  return atom;
}

bool is_valid_atom(std::string_view text, const AtomOptions& options, Blockers blockers)
{
  const auto atom = parse_atom(text, options);
  if (!atom) {
    return false;
  }
  return blockers == Blockers::allow || atom->blocker == BlockerKind::none;
}

std::optional<MatchCandidate> candidate_from_string(std::string_view text)
{
  // remove_slot: everything before the first ':' (or '[' when there is no ':').
  auto cut = text.find(':');
  if (cut == std::string_view::npos) {
    cut = text.find('[');
  }
  auto cpv = parse_cpv(text.substr(0, cut));
  if (!cpv) {
    return std::nullopt;
  }
  MatchCandidate candidate;
  candidate.cpv = std::move(*cpv);
  if (const auto slot = dep_getslot(text)) {
    // _pkg_str: "SLOT/SUB", the sub-slot defaulting to the slot; an invalid slot reads as 0/0.
    const auto slash = slot->find('/');
    const auto main = std::string_view(*slot).substr(0, slash);
    const auto sub = slash == std::string::npos ? main : std::string_view(*slot).substr(slash + 1);
    if (is_slot_name(main) && is_slot_name(sub) && std::count(slot->begin(), slot->end(), '/') <= 1) {
      candidate.slot = std::string(main);
      candidate.sub_slot = std::string(sub);
    } else {
      candidate.slot = "0";
      candidate.sub_slot = "0";
    }
  }
  candidate.repo = dep_getrepo(text);
  return candidate;
}

bool atom_matches(const Atom& atom, const MatchCandidate& candidate)
{
  if (!matches_version(atom, candidate)) {
    return false;
  }
  if (atom.slot && candidate.slot) {
    if (*candidate.slot != *atom.slot) {
      return false;
    }
    const auto& candidate_sub = candidate.sub_slot ? *candidate.sub_slot : *candidate.slot;
    if (atom.sub_slot && !atom.sub_slot->empty() && *atom.sub_slot != candidate_sub) {
      return false;
    }
  }
  if (!matches_use(atom, candidate)) {
    return false;
  }
  if (atom.repo && !atom.repo->empty() && candidate.repo && *candidate.repo != "__unknown__" &&
      *candidate.repo != *atom.repo) {
    return false;
  }
  return true;
}

std::optional<size_t> best_match(std::string_view package, const std::vector<Atom>& atoms)
{
  const auto candidate = candidate_from_string(package);
  if (!candidate) {
    return std::nullopt;
  }
  auto operator_value = [](const std::string& op) {
    if (op == "=") {
      return 6;
    }
    if (op == "~") {
      return 5;
    }
    if (op == "=*") {
      return 4;
    }
    if (op.empty()) {
      return 1;
    }
    return 2; // > < >= <=
  };
  int best_value = -99;
  std::optional<size_t> best;
  std::set<std::string, std::less<>> seen;
  for (size_t i = 0; i < atoms.size(); ++i) {
    const auto& atom = atoms[i];
    if (!seen.insert(atom.text).second || !atom_matches(atom, *candidate)) {
      continue;
    }
    if (atom.extended_syntax) {
      const int value = atom.op == "=*" ? 0 : atom.slot ? -1 : -2;
      if (best_value < value) {
        best_value = value;
        best = i;
      }
      continue;
    }
    if (atom.slot && best_value < 3) {
      best_value = 3;
      best = i;
    }
    const int value = operator_value(atom.op);
    if (value > best_value) {
      best_value = value;
      best = i;
    } else if (value == best_value && value == 2) {
      // For > < >= <=, the atom whose version is closest to the package wins.
      const auto package_cpv = candidate->cpv.str();
      const auto& best_cpv = atoms[*best].cpv;
      if (best_cpv == package_cpv || best_cpv == atom.cpv) {
        continue;
      }
      if (atom.cpv == package_cpv) {
        best = i;
        continue;
      }
      struct Entry {
        std::string version;
        int id;
      };
      std::vector<Entry> order{{atoms[*best].version, 0}, {candidate->cpv.full_version(), 1}, {atom.version, 2}};
      std::stable_sort(order.begin(), order.end(),
                       [](const Entry& a, const Entry& b) { return vercmp(a.version, b.version).value_or(0) < 0; });
      if ((order.front().id == 1 || order.back().id == 1) && order[1].id == 2) {
        best = i;
      }
    }
  }
  return best;
}

bool is_just_name(std::string_view text)
{
  if (const auto atom = parse_atom(text)) {
    return atom->text == atom->cp;
  }
  // Portage's fallback: no version in the last two '-'-separated parts.
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const auto dash = text.find('-', start);
    parts.push_back(slice(text, start, dash));
    if (dash == std::string_view::npos) {
      break;
    }
    start = dash + 1;
  }
  const size_t first = parts.size() >= 2 ? parts.size() - 2 : 0;
  for (size_t i = first; i < parts.size(); ++i) {
    if (is_valid_version(parts[i])) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> dep_getslot(std::string_view atom)
{
  atom = atom.substr(0, atom.find("::"));
  const auto colon = atom.find(':');
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const auto bracket = atom.find('[', colon);
  return std::string(slice(atom, colon + 1, bracket));
}

std::optional<std::string> dep_getrepo(std::string_view atom)
{
  const auto colon = atom.find("::");
  if (colon == std::string_view::npos) {
    return std::nullopt;
  }
  const auto bracket = atom.find('[', colon);
  return std::string(slice(atom, colon + 2, bracket));
}

Result<std::vector<std::string>> dep_getusedeps(std::string_view atom)
{
  std::vector<std::string> out;
  auto open = atom.find('[');
  int brackets = 0;
  bool comma_separated = false;
  while (open != std::string_view::npos) {
    ++brackets;
    if (brackets > 1) {
      return fail(ErrorKind::invalid, "USE dependency with more than one set of brackets: {}", atom);
    }
    const auto close = atom.find(']', open);
    if (close == std::string_view::npos) {
      return fail(ErrorKind::invalid, "USE dependency with no closing bracket: {}", atom);
    }
    const auto use = atom.substr(open + 1, close - open - 1);
    if (use.empty()) {
      return fail(ErrorKind::invalid, "USE dependency with no use flag ([]): {}", atom);
    }
    comma_separated = comma_separated || use.find(',') != std::string_view::npos;
    if (comma_separated) {
      size_t start = 0;
      while (true) {
        const auto comma = use.find(',', start);
        const auto flag = slice(use, start, comma);
        if (flag.empty()) {
          return fail(ErrorKind::invalid, "USE dependency with no use flag next to comma: {}", atom);
        }
        out.emplace_back(flag);
        if (comma == std::string_view::npos) {
          break;
        }
        start = comma + 1;
      }
    } else {
      out.emplace_back(use);
    }
    open = atom.find('[', open + 1);
  }
  return out;
}

} // namespace swarm::portage
