#include <doctest/doctest.h>

#include "support.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "portage/atom.hpp"

using namespace swarm::portage;
using nlohmann::json;

namespace {

json optional_json(const std::optional<std::string>& value)
{
  return value ? json(*value) : json(nullptr);
}

json flags_json(const FlagSet& flags)
{
  auto out = json::array();
  for (const auto& flag : flags) {
    out.push_back(flag);
  }
  return out;
}

// The attributes the vector recorder serialised for a Portage Atom.
json atom_record(const Atom& atom)
{
  json out{{"atom", atom.text},
           {"blocker", atom.blocker != BlockerKind::none},
           {"blocker_strong", atom.blocker == BlockerKind::strong},
           {"cp", atom.cp},
           {"cpv", atom.cpv},
           {"operator", atom.op.empty() ? json(nullptr) : json(atom.op)},
           {"repo", optional_json(atom.repo)},
           {"slot", optional_json(atom.slot)},
           {"sub_slot", optional_json(atom.sub_slot)},
           {"slot_operator", atom.slot_operator.empty() ? json(nullptr) : json(atom.slot_operator)},
           {"unevaluated_atom", atom.unevaluated},
           {"use", atom.has_use ? json(atom.use_string()) : json(nullptr)},
           {"version", atom.version.empty() ? json(nullptr) : json(atom.version)}};
  if (atom.has_use) {
    out["use_enabled"] = flags_json(atom.use_enabled());
    out["use_disabled"] = flags_json(atom.use_disabled());
    out["use_required"] = flags_json(atom.use_required);
  }
  return out;
}

AtomOptions options_from(const json& kwargs)
{
  AtomOptions options;
  if (kwargs.contains("allow_wildcard")) {
    options.allow_wildcard = kwargs["allow_wildcard"].get<bool>();
  }
  if (kwargs.contains("allow_repo") && !kwargs["allow_repo"].is_null()) {
    options.allow_repo = kwargs["allow_repo"].get<bool>();
  }
  if (kwargs.contains("allow_build_id") && !kwargs["allow_build_id"].is_null()) {
    options.allow_build_id = kwargs["allow_build_id"].get<bool>();
  }
  if (kwargs.contains("eapi") && !kwargs["eapi"].is_null()) {
    options.eapi = kwargs["eapi"].get<std::string>();
  }
  return options;
}

// match_from_list parses its atom this way.
Atom match_atom(std::string_view text)
{
  while (text.starts_with('!')) {
    text.remove_prefix(1);
  }
  AtomOptions options;
  options.allow_wildcard = true;
  options.allow_repo = true;
  auto atom = parse_atom(text, options);
  REQUIRE_MESSAGE(atom.has_value(), text);
  return *atom;
}

// A match_from_list candidate: a string, or the minimal Package the test builds.
struct Candidate {
  MatchCandidate match;
  FlagSet use;
  FlagSet iuse;
};

std::optional<Candidate> candidate_from(const json& value)
{
  Candidate out;
  if (value.is_string()) {
    auto match = candidate_from_string(value.get<std::string>());
    if (!match) {
      return std::nullopt;
    }
    out.match = std::move(*match);
    return out;
  }
  auto cpv = parse_cpv(value["cpv"].get<std::string>());
  REQUIRE(cpv.has_value());
  out.match.cpv = *cpv;
  out.match.slot = value["slot"].get<std::string>();
  out.match.sub_slot = value["sub_slot"].get<std::string>();
  if (!value["repo"].is_null()) {
    out.match.repo = value["repo"].get<std::string>();
  }
  for (const auto& flag : value["use_enabled"]) {
    out.use.insert(flag.get<std::string>());
  }
  for (const auto& flag : value["iuse"]) {
    out.iuse.insert(flag.get<std::string>());
  }
  return out;
}

} // namespace

TEST_CASE("atom: every Atom vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_atom__Atom.json");
  size_t checked = 0;
  size_t skipped = 0;
  for (const auto& record : vectors["records"]) {
    if (!record["args"][0].is_string()) {
      // Atom(Atom(...)) raises TypeError: a Python efficiency assertion, not atom syntax.
      CHECK(record["raises"] == "TypeError");
      ++skipped;
      continue;
    }
    const auto text = record["args"][0].get<std::string>();
    INFO(text, " ", record["kwargs"].dump());
    const auto atom = parse_atom(text, options_from(record["kwargs"]));
    if (record.contains("raises")) {
      CHECK(record["raises"] == "InvalidAtom");
      CHECK_FALSE(atom.has_value());
    } else {
      REQUIRE(atom.has_value());
      CHECK(atom_record(*atom) == record["result"]);
    }
    ++checked;
  }
  CHECK(checked == 129);
  CHECK(skipped == 1);
}

TEST_CASE("atom: every isvalidatom vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_isvalidatom__isvalidatom.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto text = record["args"][0].get<std::string>();
    INFO(text, " ", record["kwargs"].dump());
    // isvalidatom's own defaults differ from Atom's: repo and build ids off unless asked.
    auto options = options_from(record["kwargs"]);
    CHECK(is_valid_atom(text, options) == record["result"].get<bool>());
    ++checked;
  }
  CHECK(checked == 118);
}

TEST_CASE("atom: every match_from_list vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_match_from_list__match_from_list.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto text = record["args"][0].get<std::string>();
    INFO(text, " ", record["args"][1].dump());
    const auto atom = match_atom(text);
    auto matched = json::array();
    for (const auto& value : record["args"][1]) {
      auto candidate = candidate_from(value);
      if (!candidate) {
        continue;
      }
      if (!value.is_string()) {
        candidate->match.use_enabled = &candidate->use;
        candidate->match.iuse = &candidate->iuse;
      }
      if (atom_matches(atom, candidate->match)) {
        matched.push_back(value);
      }
    }
    CHECK(matched == record["result"]);
    ++checked;
  }
  CHECK(checked == 71);
}

TEST_CASE("atom: every best_match_to_list vector of Portage agrees")
{
  const auto vectors = swarm::test::load_vectors("test_best_match_to_list__best_match_to_list.json");
  size_t checked = 0;
  for (const auto& record : vectors["records"]) {
    const auto package = record["args"][0].get<std::string>();
    std::vector<Atom> atoms;
    for (const auto& value : record["args"][1]) {
      atoms.push_back(match_atom(value["atom"].get<std::string>()));
    }
    INFO(package, " ", record["args"][1].dump());
    const auto best = best_match(package, atoms);
    if (record["result"].is_null()) {
      CHECK_FALSE(best.has_value());
    } else {
      REQUIRE(best.has_value());
      CHECK(atoms[*best].text == record["result"]["atom"].get<std::string>());
    }
    ++checked;
  }
  CHECK(checked == 32);
}

TEST_CASE("atom: dep_getcpv, get_operator, dep_getslot, dep_getrepo vectors agree")
{
  size_t checked = 0;
  const auto vectors1 = swarm::test::load_vectors("test_dep_getcpv__dep_getcpv.json");
  for (const auto& record : vectors1["records"]) {
    const auto atom = parse_atom(record["args"][0].get<std::string>());
    REQUIRE(atom.has_value());
    CHECK(atom->cpv == record["result"].get<std::string>());
    ++checked;
  }
  const auto vectors2 = swarm::test::load_vectors("test_get_operator__get_operator.json");
  for (const auto& record : vectors2["records"]) {
    const auto atom = parse_atom(record["args"][0].get<std::string>());
    REQUIRE(atom.has_value());
    CHECK((atom->op.empty() ? json(nullptr) : json(atom->op)) == record["result"]);
    ++checked;
  }
  const auto vectors3 = swarm::test::load_vectors("test_dep_getslot__dep_getslot.json");
  for (const auto& record : vectors3["records"]) {
    CHECK(optional_json(dep_getslot(record["args"][0].get<std::string>())) == record["result"]);
    ++checked;
  }
  const auto vectors4 = swarm::test::load_vectors("test_dep_getrepo__dep_getrepo.json");
  for (const auto& record : vectors4["records"]) {
    CHECK(optional_json(dep_getrepo(record["args"][0].get<std::string>())) == record["result"]);
    ++checked;
  }
  CHECK(checked == 33 + 17 + 10 + 30);
}

TEST_CASE("atom: dep_getusedeps and isjustname vectors agree")
{
  size_t checked = 0;
  const auto vectors5 = swarm::test::load_vectors("test_dep_getusedeps__dep_getusedeps.json");
  for (const auto& record : vectors5["records"]) {
    const auto use = dep_getusedeps(record["args"][0].get<std::string>());
    REQUIRE(use.has_value());
    CHECK(json(*use) == record["result"]);
    ++checked;
  }
  const auto vectors6 = swarm::test::load_vectors("test_isjustname__isjustname.json");
  for (const auto& record : vectors6["records"]) {
    INFO(record["args"][0]);
    CHECK(is_just_name(record["args"][0].get<std::string>()) == record["result"].get<bool>());
    ++checked;
  }
  CHECK(checked == 160 + 64);
  CHECK_FALSE(dep_getusedeps("cat/pkg[a][b]").has_value());
  CHECK_FALSE(dep_getusedeps("cat/pkg[a,,b]").has_value());
  CHECK_FALSE(dep_getusedeps("cat/pkg[]").has_value());
}

TEST_CASE("atom: fields of typical dependency atoms")
{
  const auto atom = parse_atom("!!>=dev-libs/openssl-3.0.1-r2:0/3=::gentoo[-bindist(-),ssl?]");
  REQUIRE(atom.has_value());
  CHECK(atom->blocker == BlockerKind::strong);
  CHECK(atom->op == ">=");
  CHECK(atom->cp == "dev-libs/openssl");
  CHECK(atom->category() == "dev-libs");
  CHECK(atom->package() == "openssl");
  CHECK(atom->version == "3.0.1-r2");
  CHECK(atom->slot == "0");
  CHECK(atom->sub_slot == "3");
  CHECK(atom->slot_operator == "=");
  CHECK(atom->repo == "gentoo");
  REQUIRE(atom->use.size() == 2);
  CHECK(atom->use[0].kind == UseDepKind::disabled);
  CHECK(atom->use[0].missing == UseDefault::disabled);
  CHECK(atom->use[1].kind == UseDepKind::if_enabled);

  const auto star = parse_atom("=dev-qt/qtbase-6.8*:6");
  REQUIRE(star.has_value());
  CHECK(star->op == "=*");
  CHECK(star->version == "6.8");

  // Build ids only without an EAPI (or when asked).
  const auto build = parse_atom("=dev-libs/glib-2.80.5-r1-4");
  REQUIRE(build.has_value());
  CHECK(build->build_id == 4u);
  CHECK(build->cpv == "dev-libs/glib-2.80.5-r1");
  CHECK_FALSE(parse_atom("=dev-libs/glib-2.80.5-r1-04").has_value());
  AtomOptions eapi8;
  eapi8.eapi = "8";
  CHECK_FALSE(parse_atom("=dev-libs/glib-2.80.5-r1-4", eapi8).has_value());
}

TEST_CASE("atom: EAPI-dependent validity")
{
  AtomOptions eapi0;
  eapi0.eapi = "0";
  CHECK_FALSE(parse_atom("dev-libs/A:1", eapi0).has_value());
  CHECK_FALSE(parse_atom("dev-libs/A[foo]", eapi0).has_value());
  CHECK_FALSE(parse_atom("!!dev-libs/A", eapi0).has_value());
  AtomOptions eapi4;
  eapi4.eapi = "4";
  CHECK_FALSE(parse_atom("dev-libs/A:=", eapi4).has_value());
  CHECK_FALSE(parse_atom("dev-libs/A:0/1", eapi4).has_value());
  CHECK(parse_atom("dev-libs/A:0", eapi4).has_value());
  CHECK(parse_atom("dev-libs/A[foo(+)]", eapi4).has_value());
  AtomOptions eapi3;
  eapi3.eapi = "3";
  CHECK_FALSE(parse_atom("dev-libs/A[foo(+)]", eapi3).has_value());
  CHECK(parse_atom("dev-libs/A[foo]", eapi3).has_value());
  AtomOptions eapi5;
  eapi5.eapi = "5";
  CHECK(parse_atom("!dev-libs/A:=", eapi5).has_value());
  CHECK_FALSE(parse_atom("dev-libs/A::gentoo", eapi5).has_value());
  eapi5.is_valid_flag = [](std::string_view flag) { return flag == "ok"; };
  CHECK(parse_atom("dev-libs/A[ok?]", eapi5).has_value());
  CHECK_FALSE(parse_atom("dev-libs/A[bad?]", eapi5).has_value());
  CHECK(parse_atom("dev-libs/A[bad]", eapi5).has_value());
}

TEST_CASE("atom: USE conditionals are evaluated like Portage")
{
  const auto atom = parse_atom("~dev-qt/qtbase-6.8.2:6[accessibility=,gui,opengl=,vulkan?,widgets?,!x(-)?,!y=]");
  REQUIRE(atom.has_value());
  const FlagSet use{"opengl", "widgets", "y"};
  const auto evaluated = atom->evaluate_conditionals(use);
  CHECK(evaluated.text == "~dev-qt/qtbase-6.8.2:6[-accessibility,gui,opengl,widgets,-x(-),-y]");
  CHECK(evaluated.unevaluated == atom->text);
  CHECK(evaluated.use_required == atom->use_required);

  const auto gone = parse_atom("dev-libs/A[foo?]")->evaluate_conditionals({});
  CHECK(gone.text == "dev-libs/A");
  CHECK_FALSE(gone.has_use);
  const auto plain = parse_atom("dev-libs/A:2[foo]")->evaluate_conditionals({});
  CHECK(plain.text == "dev-libs/A:2[foo]");
}

TEST_CASE("atom: matching versions, slots and sub-slots")
{
  auto candidate = [](std::string_view text) {
    auto out = candidate_from_string(text);
    REQUIRE(out.has_value());
    return *out;
  };
  auto matches = [&](std::string_view atom_text, std::string_view package) {
    const auto atom = parse_atom(atom_text);
    REQUIRE_MESSAGE(atom.has_value(), atom_text);
    return atom_matches(*atom, candidate(package));
  };
  CHECK(matches(">=dev-libs/A-1.2", "dev-libs/A-1.10"));
  CHECK_FALSE(matches(">dev-libs/A-1.2", "dev-libs/A-1.2-r0"));
  CHECK(matches("<dev-libs/A-2_alpha", "dev-libs/A-1.99"));
  CHECK(matches("~dev-libs/A-1.2", "dev-libs/A-1.2-r5"));
  CHECK_FALSE(matches("~dev-libs/A-1.2", "dev-libs/A-1.20"));
  CHECK(matches("=dev-libs/A-1.2-r0", "dev-libs/A-1.2"));
  CHECK(matches("dev-libs/A:0/3=", "dev-libs/A-1:0/3"));
  CHECK_FALSE(matches("dev-libs/A:0/3=", "dev-libs/A-1:0/4"));
  CHECK(matches("dev-libs/A:0=", "dev-libs/A-1:0/4"));
  CHECK(matches("dev-libs/A:=", "dev-libs/A-1:7/4"));
  CHECK_FALSE(matches("dev-libs/A:1", "dev-libs/A-1:0"));
  CHECK(matches("!dev-libs/A", "dev-libs/A-1"));
  CHECK_FALSE(matches("dev-libs/B", "dev-libs/A-1"));
  CHECK(matches("=dev-libs/A-1.2*", "dev-libs/A-1.2.3"));
  CHECK_FALSE(matches("=dev-libs/A-1.2*", "dev-libs/A-1.20"));
}
