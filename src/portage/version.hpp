#pragma once
// Package versions and category/package-version strings, exactly as Portage's versions.py
// parses and compares them (PMS "Version specifications", Portage vercmp/catpkgsplit).

#include <compare>
#include <optional>
#include <string>
#include <string_view>

namespace swarm::portage {

// True if `version` is a PMS version with optional `-rN` (Portage ververify): `1.2.3b_pre4-r1`.
bool is_valid_version(std::string_view version);

// Compares two versions like Portage's vercmp: -1, 0 or 1; nullopt when either is invalid.
// Quirks kept: `1.010 == 1.01`, `1.0 == 1.0-r0`, `1_p == 1_p0`, `1.0 < 1.0_p0`,
// `1.0.0 > 1.0b`; numbers of any length. Identical strings compare equal even if invalid.
std::optional<int> vercmp(std::string_view a, std::string_view b);

// A split `category/package-version[-rN]` (Portage catpkgsplit / _pkg_str).
struct Cpv {
  std::string category; // "null" when the input had no category (catpkgsplit)
  std::string package;
  std::string version;           // without revision: "19.1.7"
  std::string revision = "r0";   // "r1"; "r0" when absent
  bool revision_written = false; // the input spelled "-rN" (even "-r0")

  // "sys-devel/llvm".
  std::string cp() const;
  // The version as Portage's _pkg_str.version: "19.1.7-r1", or "19.1.7" when no revision was
  // written (an explicit "-r0" is kept).
  std::string full_version() const;
  // The string this was parsed from (canonical: "cat/pkg-ver[-rN]").
  std::string str() const;
};

// Splits like catpkgsplit: the shortest package name such that the rest is a valid version, and
// rejects a package name that itself ends in `-VERSION`. Input without '/' gets category "null".
std::optional<Cpv> parse_cpv(std::string_view text);

// Portage cpvequal: same category/package and vercmp == 0; nullopt when either is not a cpv
// (Portage raises).
std::optional<bool> cpv_equal(std::string_view a, std::string_view b);

// Ordering of Portage's cpv_sort_key: version order for two valid cpvs of the same
// category/package, plain string order otherwise. Returns <0, 0 or >0.
int cpv_sort_compare(std::string_view a, std::string_view b);

// Compares digit strings as unbounded integers (leading zeros ignored).
std::strong_ordering compare_digits(std::string_view a, std::string_view b);

// Validity of the name parts, per Portage's regexes (ASCII).
bool is_valid_category(std::string_view category);
bool is_valid_package_name_chars(std::string_view package); // chars only; no version check

} // namespace swarm::portage
