#include <doctest/doctest.h>

#include "support.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "portage/version.hpp"

using namespace swarm::portage;

namespace {} // namespace

TEST_CASE("version: every vercmp vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_vercmp__vercmp.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto a = record["args"][0].get<std::string>();
    const auto b = record["args"][1].get<std::string>();
    const auto got = vercmp(a, b);
    INFO(a, " vs ", b);
    if (record["result"].is_null()) {
      CHECK_FALSE(got.has_value());
    } else {
      REQUIRE(got.has_value());
      CHECK(*got == record["result"].get<int>());
    }
    ++checked;
  }
  CHECK(checked == 40);
}

TEST_CASE("version: Portage's comparison quirks")
{
  CHECK(vercmp("1.010", "1.01") == 0);
  CHECK(vercmp("1.0", "1.0_p0") == -1);
  CHECK(vercmp("1.0", "1.0-r0") == 0);
  CHECK(vercmp("1_p", "1_p0") == 0);
  CHECK(vercmp("1.0.0", "1.0b") == 1);
  CHECK(vercmp("2.0", "2.0_alpha_p1") == 1);
  CHECK(vercmp("1_rc1", "1") == -1);
  CHECK(vercmp("1_p1", "1") == 1);
  CHECK(vercmp("1.0_alpha", "1.0_beta") == -1);
  CHECK(vercmp("1.0_pre", "1.0_rc") == -1);
  CHECK(vercmp("1.0_rc", "1.0_p") == -1);
  CHECK(vercmp("1.0_pre10", "1.0_pre9") == 1);
  CHECK(vercmp("1.02", "1.1") == -1);
  CHECK(vercmp("1.2-r10", "1.2-r9") == 1);
  CHECK(vercmp("1b", "1.5") == -1);
  // Numbers far beyond 64 bits compare as digit strings.
  CHECK(vercmp("1.123456789012345678901234567890", "1.123456789012345678901234567891") == -1);
  CHECK(vercmp("123456789012345678901234567890", "0123456789012345678901234567890") == 0);
  CHECK(vercmp("1.0-r00000000000000000000000000000001", "1.0-r1") == 0);
  // Invalid versions give no answer, but identical strings are equal before validation.
  CHECK_FALSE(vercmp("1.0", "foo").has_value());
  CHECK_FALSE(vercmp("1.0-r", "1.0").has_value());
  CHECK_FALSE(vercmp("1..0", "1.0").has_value());
  CHECK_FALSE(vercmp("1.0_beta_", "1.0").has_value());
  CHECK(vercmp("foo", "foo") == 0);
}

TEST_CASE("version: version syntax")
{
  CHECK(is_valid_version("1"));
  CHECK(is_valid_version("1.2.3b_alpha1_beta_pre3_rc_p9-r12"));
  CHECK(is_valid_version("0.10.3"));
  CHECK_FALSE(is_valid_version(""));
  CHECK_FALSE(is_valid_version("a1"));
  CHECK_FALSE(is_valid_version("1.a"));
  CHECK_FALSE(is_valid_version("1bc"));
  CHECK_FALSE(is_valid_version("1_foo"));
  CHECK_FALSE(is_valid_version("1-r"));
  CHECK_FALSE(is_valid_version("1-r1a"));
  CHECK_FALSE(is_valid_version("1.0 "));
}

TEST_CASE("version: catpkgsplit semantics")
{
  const auto llvm = parse_cpv("sys-devel/llvm-19.1.7-r1");
  REQUIRE(llvm.has_value());
  CHECK(llvm->category == "sys-devel");
  CHECK(llvm->package == "llvm");
  CHECK(llvm->version == "19.1.7");
  CHECK(llvm->revision == "r1");
  CHECK(llvm->full_version() == "19.1.7-r1");
  CHECK(llvm->cp() == "sys-devel/llvm");
  CHECK(llvm->str() == "sys-devel/llvm-19.1.7-r1");

  const auto no_revision = parse_cpv("dev-libs/glib-2.80.5");
  REQUIRE(no_revision.has_value());
  CHECK(no_revision->revision == "r0");
  CHECK(no_revision->full_version() == "2.80.5");
  const auto explicit_r0 = parse_cpv("dev-libs/glib-2.80.5-r0");
  REQUIRE(explicit_r0.has_value());
  CHECK(explicit_r0->full_version() == "2.80.5-r0");
  CHECK(explicit_r0->str() == "dev-libs/glib-2.80.5-r0");

  // The shortest package name such that the rest is a version.
  const auto dashes = parse_cpv("foo/bar-baz---1");
  REQUIRE(dashes.has_value());
  CHECK(dashes->package == "bar-baz--");
  const auto gtk = parse_cpv("x11-libs/gtk+-3.24.5");
  REQUIRE(gtk.has_value());
  CHECK(gtk->package == "gtk+");
  const auto digits = parse_cpv("media-libs/x264-20060810");
  REQUIRE(digits.has_value());
  CHECK(digits->package == "x264");

  const auto no_category = parse_cpv("portage-2.1");
  REQUIRE(no_category.has_value());
  CHECK(no_category->category == "null");

  // A package name may not end in -VERSION; nothing without a version is a cpv.
  CHECK_FALSE(parse_cpv("sys-apps/portage-2.1-6").has_value());
  CHECK_FALSE(parse_cpv("foo/bar-1-r1-1-r1").has_value());
  CHECK_FALSE(parse_cpv("sys-apps/portage").has_value());
  CHECK_FALSE(parse_cpv("sys-apps/-portage-1").has_value());
  CHECK_FALSE(parse_cpv(".cat/pkg-1").has_value());
  CHECK_FALSE(parse_cpv("cat/p/kg-1").has_value());
  CHECK_FALSE(parse_cpv("dev-libs/glib-2.80.5-r1-4").has_value());
}

TEST_CASE("version: every cpvequal vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_standalone__cpvequal.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto a = record["args"][0].get<std::string>();
    const auto b = record["args"][1].get<std::string>();
    INFO(a, " vs ", b);
    const auto got = cpv_equal(a, b);
    if (record.contains("raises")) {
      CHECK_FALSE(got.has_value());
    } else {
      REQUIRE(got.has_value());
      CHECK(*got == record["result"].get<bool>());
    }
    ++checked;
  }
  CHECK(checked == 10);
}

TEST_CASE("version: cpv_sort_key order")
{
  // The upstream example recorded in the vectors README (the JSON file only notes that
  // cpv_sort_key returns a key function).
  const auto vectors = swarm::test::load_vectors("test_cpv_sort_key__cpv_sort_key.json");
  CHECK(vectors["records"].size() == 1);
  std::vector<std::string> items{"a/b-2_alpha", "a", "b", "a/b-2", "a/a-1", "a/b-1"};
  std::stable_sort(items.begin(), items.end(),
                   [](const std::string& x, const std::string& y) { return cpv_sort_compare(x, y) < 0; });
  CHECK(items == std::vector<std::string>{"a", "a/a-1", "a/b-1", "a/b-2_alpha", "a/b-2", "b"});
  CHECK(cpv_sort_compare("cat/foo-10", "cat/foo-9") > 0);
  CHECK(cpv_sort_compare("cat/foo-1.0", "cat/foo-1.0-r0") == 0);
  CHECK(cpv_sort_compare("cat/bar-10", "cat/foo-9") < 0);
}

TEST_CASE("version: digit strings compare as unbounded integers")
{
  CHECK(compare_digits("007", "7") == std::strong_ordering::equal);
  CHECK(compare_digits("10", "9") == std::strong_ordering::greater);
  CHECK(compare_digits("99999999999999999999", "100000000000000000000") == std::strong_ordering::less);
}
