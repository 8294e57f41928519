#include "core/strings.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace swarm::strings {

std::vector<std::string> split_any(std::string_view text, std::string_view separators)
{
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t start = text.find_first_not_of(separators, pos);
    if (start == std::string_view::npos) {
      break;
    }
    size_t end = text.find_first_of(separators, start);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    out.emplace_back(text.substr(start, end - start));
    pos = end;
  }
  return out;
}

std::vector<std::string> split(std::string_view text, char separator)
{
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(separator, start);
    if (end == std::string_view::npos) {
      out.emplace_back(text.substr(start));
      return out;
    }
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
}

std::string join(const std::vector<std::string>& pieces, std::string_view separator)
{
  std::string out;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0) {
      out += separator;
    }
    out += pieces[i];
  }
  return out;
}

std::string_view trim(std::string_view text)
{
  const auto start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) {
    return {};
  }
  const auto end = text.find_last_not_of(" \t\r\n");
  return text.substr(start, end - start + 1);
}

std::optional<int64_t> parse_int(std::string_view text)
{
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::optional<uint64_t> parse_uint(std::string_view text)
{
  uint64_t value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> parse_double(std::string_view text)
{
  double value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

namespace {

// Splits "12.5ms" into (12.5, "ms").
std::optional<std::pair<double, std::string_view>> number_and_unit(std::string_view text)
{
  text = trim(text);
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  auto number = parse_double(text.substr(0, i));
  if (!number || *number < 0) {
    return std::nullopt;
  }
  return std::pair{*number, trim(text.substr(i))};
}

} // namespace

std::optional<uint64_t> parse_size(std::string_view text)
{
  auto parsed = number_and_unit(text);
  if (!parsed) {
    return std::nullopt;
  }
  auto [number, unit] = *parsed;
  std::string lower(unit);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  double factor = 0;
  if (lower.empty() || lower == "b") {
    factor = 1;
  } else if (lower == "k" || lower == "kb" || lower == "kib") {
    factor = 1024.0;
  } else if (lower == "m" || lower == "mb" || lower == "mib") {
    factor = 1024.0 * 1024;
  } else if (lower == "g" || lower == "gb" || lower == "gib") {
    factor = 1024.0 * 1024 * 1024;
  } else if (lower == "t" || lower == "tb" || lower == "tib") {
    factor = 1024.0 * 1024 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  return static_cast<uint64_t>(number * factor);
}

std::optional<double> parse_duration(std::string_view text)
{
  auto parsed = number_and_unit(text);
  if (!parsed) {
    return std::nullopt;
  }
  auto [number, unit] = *parsed;
  if (unit.empty() || unit == "s") {
    return number;
  }
  if (unit == "ms") {
    return number / 1000.0;
  }
  if (unit == "m" || unit == "min") {
    return number * 60;
  }
  if (unit == "h") {
    return number * 3600;
  }
  if (unit == "d") {
    return number * 86400;
  }
  return std::nullopt;
}

size_t levenshtein(std::string_view a, std::string_view b)
{
  std::vector<size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates)
{
  std::optional<std::string> best;
  size_t best_distance = 0;
  for (const auto& candidate : candidates) {
    const size_t distance = levenshtein(word, candidate);
    if (!best || distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  // A typo, not a different word: at most a third of the word may differ (and at least 1).
  if (best && best_distance <= std::max<size_t>(1, word.size() / 3 + 1)) {
    return best;
  }
  // A prefix is a good guess too ("stat" → "status").
  for (const auto& candidate : candidates) {
    if (word.size() >= 3 && candidate.starts_with(word)) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::string to_hex(const unsigned char* data, size_t size)
{
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = k_digits[data[i] >> 4];
    out[2 * i + 1] = k_digits[data[i] & 0xf];
  }
  return out;
}

std::string human_duration(double seconds)
{
  if (seconds < 10) {
    return fmt::format("{:.1f}s", seconds);
  }
  auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t hours = total / 3600;
  const int64_t minutes = (total % 3600) / 60;
  const int64_t secs = total % 60;
  if (hours > 0) {
    return fmt::format("{}h {}m {}s", hours, minutes, secs);
  }
  if (minutes > 0) {
    return fmt::format("{}m {}s", minutes, secs);
  }
  return fmt::format("{}s", secs);
}

std::string human_bytes(uint64_t bytes)
{
  static constexpr const char* k_units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  auto value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(k_units)) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) {
    return fmt::format("{} B", bytes);
  }
  return fmt::format("{:.1f} {}", value, k_units[unit]);
}

} // namespace swarm::strings
