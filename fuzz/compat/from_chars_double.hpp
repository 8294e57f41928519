#pragma once
// libc++ 16 (the fuzz build's library) has no floating-point std::from_chars, which
// core/strings.cpp (parse_double) uses. Force-included into that file by the fuzz build only,
// when the library lacks it (fuzz/CMakeLists.txt): the same contract (no leading whitespace or
// '+', the longest decimal prefix, result_out_of_range) over strtod in the C locale.

#include <cerrno>
#include <charconv>
#include <clocale>
#include <cstdlib>
#include <string>
#include <system_error>

#include <locale.h>

namespace std {

inline from_chars_result from_chars(const char* first, const char* last, double& value,
                                    chars_format = chars_format::general)
{
  if (first == last || *first == '+' || isspace(static_cast<unsigned char>(*first))) {
    return {first, errc::invalid_argument};
  }
  const string text(first, last);
  // strtod would also read hexadecimal floats, which from_chars does not in general format.
  const size_t hex = text.find_first_of("xX");
  const string decimal = text.substr(0, hex == string::npos ? string::npos : hex);
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t(0));
  char* end = nullptr;
  errno = 0;
  const double parsed = strtod_l(decimal.c_str(), &end, c_locale);
  if (end == decimal.c_str()) {
    return {first, errc::invalid_argument};
  }
  const char* stop = first + (end - decimal.c_str());
  if (errno == ERANGE) {
    return {stop, errc::result_out_of_range};
  }
  value = parsed;
  return {stop, errc{}};
}

} // namespace std
