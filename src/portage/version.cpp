#include "portage/version.hpp"

#include <algorithm>
#include <array>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

bool is_lower(char c)
{
  return c >= 'a' && c <= 'z';
}

// Python's `\w` under re.ASCII.
bool is_word(char c)
{
  return strings::is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Suffix order of Portage's suffix_value: alpha < beta < pre < rc < p.
enum class SuffixKind { alpha = -4, beta = -3, pre = -2, rc = -1, p = 0 };

struct SuffixWord {
  std::string_view word;
  SuffixKind kind;
};

// "pre" before "p": the regex alternation (pre|p|beta|alpha|rc) is tried in that order, and a
// "_p" followed by "re" could never complete a match anyway.
constexpr std::array k_suffix_words{SuffixWord{"pre", SuffixKind::pre}, SuffixWord{"p", SuffixKind::p},
                                    SuffixWord{"beta", SuffixKind::beta}, SuffixWord{"alpha", SuffixKind::alpha},
                                    SuffixWord{"rc", SuffixKind::rc}};

// The pieces of `(\d+)((\.\d+)*)([a-z]?)((_(pre|p|beta|alpha|rc)\d*)*)(-r(\d+))?`, as views.
struct VersionParts {
  std::string_view first;    // leading number
  std::string_view rest;     // ".2.3" (may be empty)
  char letter = 0;           // 0 when absent
  std::string_view suffixes; // "_pre1_p2" (may be empty)
  std::string_view revision; // digits after "-r"; empty when absent
  size_t end = 0;            // one past the last character matched
};

// Matches `_v` at the start of `text` (greedy; the grammar never needs backtracking to reach a
// full match, because each part starts with a character no earlier part accepts).
std::optional<VersionParts> scan_v(std::string_view text)
{
  VersionParts parts;
  size_t i = 0;
  while (i < text.size() && strings::is_digit(text[i])) {
    ++i;
  }
  if (i == 0) {
    return std::nullopt;
  }
  parts.first = text.substr(0, i);
  const size_t rest_begin = i;
  while (i + 1 < text.size() && text[i] == '.' && strings::is_digit(text[i + 1])) {
    i += 2;
    while (i < text.size() && strings::is_digit(text[i])) {
      ++i;
    }
  }
  parts.rest = text.substr(rest_begin, i - rest_begin);
  if (i < text.size() && is_lower(text[i])) {
    // A letter is only part of the version if what follows can continue it; otherwise the
    // whole-string match fails anyway, which the caller detects through `end`.
    parts.letter = text[i];
    ++i;
  }
  const size_t suffix_begin = i;
  while (i < text.size() && text[i] == '_') {
    const auto after = text.substr(i + 1);
    bool matched = false;
    for (const auto& candidate : k_suffix_words) {
      if (after.starts_with(candidate.word)) {
        size_t j = i + 1 + candidate.word.size();
        while (j < text.size() && strings::is_digit(text[j])) {
          ++j;
        }
        i = j;
        matched = true;
        break;
      }
    }
    if (!matched) {
      break;
    }
  }
  parts.suffixes = text.substr(suffix_begin, i - suffix_begin);
  parts.end = i;
  return parts;
}

// Matches `_v(-r(\d+))?` against the whole of `text`.
std::optional<VersionParts> match_version(std::string_view text, bool allow_revision)
{
  auto parts = scan_v(text);
  if (!parts) {
    return std::nullopt;
  }
  size_t i = parts->end;
  if (allow_revision && text.substr(i).starts_with("-r")) {
    size_t j = i + 2;
    while (j < text.size() && strings::is_digit(text[j])) {
      ++j;
    }
    if (j > i + 2) {
      parts->revision = text.substr(i + 2, j - i - 2);
      i = j;
    }
  }
  if (i != text.size()) {
    return std::nullopt;
  }
  parts->end = i;
  return parts;
}

// `-VR-V(-rN)?`: a package name ending in a version followed by a version (Portage pn_inval).
bool matches_version_then_version(std::string_view text)
{
  for (size_t j = text.find('-'); j != std::string_view::npos; j = text.find('-', j + 1)) {
    if (match_version(text.substr(0, j), true) && match_version(text.substr(j + 1), true)) {
      return true;
    }
  }
  return false;
}

int sign(std::strong_ordering order)
{
  if (order < 0) {
    return -1;
  }
  return order > 0 ? 1 : 0;
}

// Portage pads both strings with trailing zeros to equal length and compares them as integers:
// a character-wise comparison with '0' as filler.
int compare_padded(std::string_view a, std::string_view b)
{
  const size_t length = std::max(a.size(), b.size());
  for (size_t i = 0; i < length; ++i) {
    const char x = i < a.size() ? a[i] : '0';
    const char y = i < b.size() ? b[i] : '0';
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  return 0;
}

// Next ".N" component of a `rest` view; empty when exhausted.
std::string_view next_component(std::string_view& rest)
{
  if (rest.empty()) {
    return {};
  }
  rest.remove_prefix(1); // '.'
  const auto dot = rest.find('.');
  const auto component = rest.substr(0, dot);
  rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot);
  return component;
}

struct Suffix {
  SuffixKind kind = SuffixKind::p;
  std::string_view number;
  bool missing = false; // Portage's implicit ("p", "-1")
};

Suffix next_suffix(std::string_view& suffixes)
{
  if (suffixes.empty()) {
    return Suffix{SuffixKind::p, {}, true};
  }
  suffixes.remove_prefix(1); // '_'
  const auto next = suffixes.find('_');
  const auto token = suffixes.substr(0, next);
  suffixes = next == std::string_view::npos ? std::string_view{} : suffixes.substr(next);
  for (const auto& candidate : k_suffix_words) {
    if (token.starts_with(candidate.word) &&
        std::all_of(token.begin() + static_cast<long>(candidate.word.size()), token.end(), strings::is_digit)) {
      return Suffix{candidate.kind, token.substr(candidate.word.size()), false};
    }
  }
  return Suffix{};
}

// Integer value of a suffix number for comparison: missing → -1, empty → 0.
int compare_suffix_numbers(const Suffix& a, const Suffix& b)
{
  if (a.missing != b.missing) {
    // -1 against a non-negative number.
    return a.missing ? -1 : 1;
  }
  if (a.missing) {
    return 0;
  }
  // An empty number ("_p") counts as 0.
  const auto x = a.number.empty() ? std::string_view{"0"} : a.number;
  const auto y = b.number.empty() ? std::string_view{"0"} : b.number;
  return sign(compare_digits(x, y));
}

int compare_parts(const VersionParts& a, const VersionParts& b)
{
  if (const int first = sign(compare_digits(a.first, b.first)); first != 0) {
    return first;
  }
  auto rest_a = a.rest;
  auto rest_b = b.rest;
  while (!rest_a.empty() || !rest_b.empty()) {
    const auto x = next_component(rest_a);
    const auto y = next_component(rest_b);
    // An absent component counts as -1, so 1.0.0 > 1.0 (and 1.0.0 > 1.0b).
    if (x.empty()) {
      return -1;
    }
    if (y.empty()) {
      return 1;
    }
    int result = 0;
    if (x.front() != '0' && y.front() != '0') {
      result = sign(compare_digits(x, y));
    } else {
      result = compare_padded(x, y);
    }
    if (result != 0) {
      return result;
    }
  }
  if (a.letter != b.letter) {
    if (a.letter == 0) {
      return -1;
    }
    if (b.letter == 0) {
      return 1;
    }
    return a.letter < b.letter ? -1 : 1;
  }
  auto suffixes_a = a.suffixes;
  auto suffixes_b = b.suffixes;
  while (!suffixes_a.empty() || !suffixes_b.empty()) {
    const auto x = next_suffix(suffixes_a);
    const auto y = next_suffix(suffixes_b);
    if (x.kind != y.kind) {
      return static_cast<int>(x.kind) < static_cast<int>(y.kind) ? -1 : 1;
    }
    if (const int result = compare_suffix_numbers(x, y); result != 0) {
      return result;
    }
  }
  const auto revision_a = a.revision.empty() ? std::string_view{"0"} : a.revision;
  const auto revision_b = b.revision.empty() ? std::string_view{"0"} : b.revision;
  return sign(compare_digits(revision_a, revision_b));
}

} // namespace

std::strong_ordering compare_digits(std::string_view a, std::string_view b)
{
  while (a.size() > 1 && a.front() == '0') {
    a.remove_prefix(1);
  }
  while (b.size() > 1 && b.front() == '0') {
    b.remove_prefix(1);
  }
  if (a.size() != b.size()) {
    return a.size() <=> b.size();
  }
  return a.compare(b) <=> 0;
}

bool is_valid_version(std::string_view version)
{
  return match_version(version, true).has_value();
}

std::optional<int> vercmp(std::string_view a, std::string_view b)
{
  if (a == b) {
    return 0;
  }
  const auto parts_a = match_version(a, true);
  const auto parts_b = match_version(b, true);
  if (!parts_a || !parts_b) {
    return std::nullopt;
  }
  return compare_parts(*parts_a, *parts_b);
}

bool is_valid_category(std::string_view category)
{
  if (category.empty() || !is_word(category.front())) {
    return false;
  }
  return std::all_of(category.begin() + 1, category.end(),
                     [](char c) { return is_word(c) || c == '+' || c == '.' || c == '-'; });
}

bool is_valid_package_name_chars(std::string_view package)
{
  if (package.empty() || !is_word(package.front())) {
    return false;
  }
  return std::all_of(package.begin() + 1, package.end(), [](char c) { return is_word(c) || c == '+' || c == '-'; });
}

std::string Cpv::cp() const
{
  return category + "/" + package;
}

std::string Cpv::full_version() const
{
  if (revision == "r0" && !revision_written) {
    return version;
  }
  return version + "-" + revision;
}

std::string Cpv::str() const
{
  return cp() + "-" + full_version();
}

std::optional<Cpv> parse_cpv(std::string_view text)
{
  Cpv cpv;
  std::string_view pv = text;
  if (const auto slash = text.find('/'); slash == std::string_view::npos) {
    cpv.category = "null";
  } else {
    const auto category = text.substr(0, slash);
    if (!is_valid_category(category)) {
      return std::nullopt;
    }
    cpv.category = std::string(category);
    pv = text.substr(slash + 1);
  }
  if (pv.empty() || !is_word(pv.front())) {
    return std::nullopt;
  }
  // The shortest package name after which the rest is a version; if at that length the rest is
  // "version-version", the name itself ends in a version and the whole is invalid.
  for (size_t length = 1; length < pv.size(); ++length) {
    const char c = pv[length];
    if (c == '-') {
      const auto tail = pv.substr(length + 1);
      if (matches_version_then_version(tail)) {
        return std::nullopt;
      }
      if (const auto parts = match_version(tail, true)) {
        cpv.package = std::string(pv.substr(0, length));
        const size_t version_end = parts->revision.empty() ? tail.size() : tail.size() - parts->revision.size() - 2;
        cpv.version = std::string(tail.substr(0, version_end));
        if (!parts->revision.empty()) {
          cpv.revision = "r" + std::string(parts->revision);
          cpv.revision_written = true;
        }
        return cpv;
      }
    } else if (!is_word(c) && c != '+') {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<bool> cpv_equal(std::string_view a, std::string_view b)
{
  const auto x = parse_cpv(a);
  const auto y = parse_cpv(b);
  if (!x || !y) {
    return std::nullopt;
  }
  if (x->category != y->category || x->package != y->package) {
    return false;
  }
  return vercmp(x->full_version(), y->full_version()) == 0;
}

int cpv_sort_compare(std::string_view a, std::string_view b)
{
  const auto x = parse_cpv(a);
  const auto y = parse_cpv(b);
  if (!x || !y || x->category != y->category || x->package != y->package) {
    return sign(a.compare(b) <=> 0);
  }
  return vercmp(x->full_version(), y->full_version()).value_or(0);
}

} // namespace swarm::portage
