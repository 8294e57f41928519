#pragma once
// Small string helpers shared by every layer.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::strings {

// ASCII 0-9 (std::isdigit depends on the locale and takes an int).
inline bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

// Splits on any character of `separators`, dropping empty pieces.
std::vector<std::string> split_any(std::string_view text, std::string_view separators = " \t\n\r");

// Splits on each occurrence of `separator`, keeping empty pieces.
std::vector<std::string> split(std::string_view text, char separator);

std::string join(const std::vector<std::string>& pieces, std::string_view separator);

std::string_view trim(std::string_view text);

// Parses a whole string as a base-10 integer; nullopt on any trailing garbage or overflow.
std::optional<int64_t> parse_int(std::string_view text);
std::optional<uint64_t> parse_uint(std::string_view text);
std::optional<double> parse_double(std::string_view text);

// "10", "10K", "2M", "1G", "512KiB" → bytes.
std::optional<uint64_t> parse_size(std::string_view text);

// "90", "90s", "5m", "2h", "1.5s", "250ms" → seconds.
std::optional<double> parse_duration(std::string_view text);

// Edit distance, for "did you mean" suggestions.
size_t levenshtein(std::string_view a, std::string_view b);

// The candidate closest to `word`, if it is close enough to be a plausible typo.
std::optional<std::string> nearest(std::string_view word, const std::vector<std::string>& candidates);

std::string to_hex(const unsigned char* data, size_t size);

// Human formats for reports: 3725 → "1h 2m 5s", 2048 → "2.0 KiB".
std::string human_duration(double seconds);
std::string human_bytes(uint64_t bytes);

} // namespace swarm::strings
