#include <doctest/doctest.h>

#include "support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "portage/dep_string.hpp"
#include "portage/md5_cache.hpp"

using namespace swarm::portage;
using nlohmann::json;

namespace {

FlagSet flags(const json& list)
{
  FlagSet out;
  for (const auto& flag : list) {
    out.insert(flag.get<std::string>());
  }
  return out;
}

// Atom results were recorded as attribute dicts: compare them by their string.
json atoms_as_strings(const json& value)
{
  if (value.is_object()) {
    return value["atom"];
  }
  if (value.is_array()) {
    auto out = json::array();
    for (const auto& item : value) {
      out.push_back(atoms_as_strings(item));
    }
    return out;
  }
  return value;
}

std::string md5_cache_value(const std::string& key)
{
  const auto path = std::filesystem::path(SWARM_TEST_DATA_DIR) / "portage" / "md5-cache" / "dev-qt";
  std::ifstream in(path / "qtwebengine-6.8.2");
  std::ostringstream text;
  text << in.rdbuf();
  auto entry = parse_md5_cache(text.str());
  REQUIRE(entry.has_value());
  return entry->get(key);
}

} // namespace

TEST_CASE("dep_string: every use_reduce vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_use_reduce__use_reduce.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    // Positional exactly as the upstream test calls it.
    const auto& args = record["args"];
    const auto depstr = args[0].get<std::string>();
    UseReduceOptions options;
    options.use = flags(args[1]);
    options.mask = flags(args[2]);
    options.match_all = args[3].get<int>() != 0;
    options.exclude_all = flags(args[4]);
    options.is_src_uri = args[5].get<bool>();
    if (!args[6].is_null()) {
      options.eapi = args[6].get<std::string>();
    }
    options.opconvert = args[7].get<bool>();
    options.flat = args[8].get<bool>();
    if (args[9] == "always_true") {
      options.is_valid_flag = [](std::string_view) { return true; };
    } else if (args[9] == "always_false") {
      options.is_valid_flag = [](std::string_view) { return false; };
    } else {
      REQUIRE(args[9].is_null());
    }
    if (args[10] == "Atom") {
      options.token_class = TokenClass::atom;
    } else {
      REQUIRE(args[10].is_null());
    }
    if (record["kwargs"].contains("subset") && !record["kwargs"]["subset"].is_null()) {
      options.subset = flags(record["kwargs"]["subset"]);
    }
    INFO(depstr, " ", json(args).dump(), " ", record["kwargs"].dump());
    const auto reduced = use_reduce(depstr, options);
    if (record.contains("raises")) {
      // InvalidDependString, or ValueError for opconvert together with flat.
      CHECK_FALSE(reduced.has_value());
    } else {
      REQUIRE_MESSAGE(reduced.has_value(), reduced.error().message);
      CHECK(dep_list_to_json(*reduced) == atoms_as_strings(record["result"]));
    }
    ++checked;
  }
  CHECK(checked == 155);
}

TEST_CASE("dep_string: every paren_reduce vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_paren_reduce__paren_reduce.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto depstr = record["args"][0].get<std::string>();
    INFO(depstr);
    const auto reduced = paren_reduce(depstr);
    if (record.contains("raises")) {
      CHECK_FALSE(reduced.has_value());
    } else {
      REQUIRE(reduced.has_value());
      CHECK(dep_list_to_json(*reduced) == record["result"]);
    }
    ++checked;
  }
  CHECK(checked == 32);
}

TEST_CASE("dep_string: errors name the offending token like Portage")
{
  auto message = [](std::string_view depstr, const UseReduceOptions& options = {}) {
    const auto reduced = use_reduce(depstr, options);
    REQUIRE_FALSE(reduced.has_value());
    return reduced.error().message;
  };
  CHECK(message("|| ( A B") == "Missing ')' at end of string");
  CHECK(message("A )") == "no matching '(' for ')', token 2");
  CHECK(message("|| A") == "expected: '(', got: 'A', token 2");
  CHECK(message("foo?") == "Missing '(' at end of string");
  CHECK(message("( )") == "expected: dependency string, got: ')', token 1");
  CHECK(message("1.0? ( A )") == "invalid use flag '1.0' in conditional '1.0?'");
  UseReduceOptions atoms;
  atoms.token_class = TokenClass::atom;
  CHECK(message("dev-libs/A)", atoms) == "missing whitespace around ')' at 'dev-libs/A)', token 1");
  CHECK(message("dev-libs/A-1", atoms).starts_with("Invalid atom (invalid atom 'dev-libs/A-1'"));
}

TEST_CASE("dep_string: empty any-of groups depend on the EAPI")
{
  UseReduceOptions eapi6;
  eapi6.eapi = "6";
  auto reduced = use_reduce("a || ( foo? ( b ) )", eapi6);
  REQUIRE(reduced.has_value());
  CHECK(dep_list_to_json(*reduced) == json{"a"});
  UseReduceOptions eapi8;
  eapi8.eapi = "8";
  reduced = use_reduce("a || ( foo? ( b ) )", eapi8);
  REQUIRE(reduced.has_value());
  CHECK(dep_list_to_json(*reduced) == json{"a", "__const__/empty-any-of"});
}

TEST_CASE("dep_string: paren_enclose round-trips a reduced list")
{
  UseReduceOptions options;
  options.use = {"x"};
  const auto reduced = use_reduce("a || ( ( b c ) d ) x? ( e )", options);
  REQUIRE(reduced.has_value());
  CHECK(paren_enclose(*reduced) == "a || ( ( b c ) d ) e");
}

TEST_CASE("dep_string: typed tree of a real md5-cache DEPEND")
{
  const auto depend = md5_cache_value("DEPEND");
  const FlagSet use{"alsa", "widgets", "qml", "opengl", "system-icu"};
  const auto tree = reduce_dependencies(depend, use, "8");
  REQUIRE_MESSAGE(tree.has_value(), tree.error().message);
  CHECK(tree->kind == DepNodeKind::all_of);
  std::vector<std::string> atoms;
  for (const auto& child : tree->children) {
    REQUIRE(child.kind == DepNodeKind::atom);
    atoms.push_back(child.atom->text);
  }
  // Conditionals resolved into the atoms, `flag?` groups kept or dropped.
  CHECK(std::find(atoms.begin(), atoms.end(), "~dev-qt/qtbase-6.8.2:6[-accessibility,gui,opengl,widgets]") !=
        atoms.end());
  CHECK(std::find(atoms.begin(), atoms.end(), "~dev-qt/qtdeclarative-6.8.2:6[widgets]") != atoms.end());
  CHECK(std::find(atoms.begin(), atoms.end(), "media-libs/alsa-lib") != atoms.end());
  CHECK(std::find(atoms.begin(), atoms.end(), "dev-libs/icu:=") != atoms.end());
  CHECK(std::find(atoms.begin(), atoms.end(), "media-sound/pulseaudio") == atoms.end());

  const auto bdepend = reduce_dependencies(md5_cache_value("BDEPEND"), use, "8");
  REQUIRE(bdepend.has_value());
  const auto& any_of = bdepend->children.front();
  REQUIRE(any_of.kind == DepNodeKind::any_of);
  REQUIRE(any_of.children.size() == 4);
  CHECK(any_of.children[0].kind == DepNodeKind::all_of);
  REQUIRE(any_of.children[0].children.size() == 2);
  CHECK(any_of.children[0].children[0].atom->text == "dev-lang/python:3.13[xml(+)]");
  CHECK(dep_tree_to_json(*bdepend)[0]["any_of"][1][1] == "dev-python/html5lib[python_targets_python3_12(-)]");
}

TEST_CASE("dep_string: tree JSON form")
{
  const auto tree = reduce_dependencies("a/b || ( c/d ( e/f g/h ) ) x? ( i/j )", {"x"});
  REQUIRE(tree.has_value());
  CHECK(dep_tree_to_json(*tree) == json::parse(R"(["a/b", {"any_of": ["c/d", ["e/f", "g/h"]]}, "i/j"])"));
  CHECK_FALSE(reduce_dependencies("a/b || ( c/d", {}).has_value());
  CHECK_FALSE(reduce_dependencies("not-an-atom", {}).has_value());
}
