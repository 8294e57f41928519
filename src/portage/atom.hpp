#pragma once
// Package dependency atoms (`>=cat/pkg-1.2:SLOT/SUB=::repo[use,deps]`), parsed, validated and
// matched exactly as Portage's portage.dep.Atom and match_from_list do.

#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "portage/version.hpp"

namespace swarm::portage {

// A set of USE flags with string_view lookup.
using FlagSet = std::set<std::string, std::less<>>;

enum class BlockerKind { none, weak, strong }; // "", "!", "!!"

enum class UseDepKind {
  enabled,     // flag
  disabled,    // -flag
  if_enabled,  // flag?
  if_disabled, // !flag?
  equal,       // flag=
  not_equal,   // !flag=
};

enum class UseDefault { none, enabled, disabled }; // "", "(+)", "(-)"

// One comma-separated token of an atom's `[...]`.
struct UseDep {
  std::string text; // as written: "!foo(+)="
  std::string flag;
  UseDepKind kind = UseDepKind::enabled;
  UseDefault missing = UseDefault::none;
};

struct Atom {
  std::string text;        // the atom as Portage prints it (str(Atom))
  std::string unevaluated; // before evaluate_conditionals(); equal to text otherwise
  BlockerKind blocker = BlockerKind::none;
  std::string op;           // "", "<", "<=", "=", "~", ">=", ">", or "=*" for `=cat/pkg-1.2*`
  std::string cp;           // "cat/pkg" (wildcards kept for extended atoms)
  std::string cpv;          // Portage Atom.cpv: "cat/pkg-1.2-r1", or the cp when unversioned
  std::string version;      // "1.2-r1" as Portage's _pkg_str.version; "" when none
  std::string version_base; // the version without revision ("1.2"), for `~` and `=*`
  std::optional<std::string> slot;
  std::optional<std::string> sub_slot;
  std::string slot_operator; // "", "=" or "*"
  std::optional<std::string> repo;
  std::optional<uint64_t> build_id; // `=cat/pkg-1.2-3` with build ids allowed
  bool extended_syntax = false;     // wildcard atom
  bool has_use = false;             // a `[...]` is present
  std::vector<UseDep> use;
  FlagSet use_required; // flags without a default, from the unevaluated atom
  bool unevaluated_has_use = false;

  std::string category() const;
  std::string package() const;
  // "[a,-b]" or "" (Portage str(atom.use)).
  std::string use_string() const;
  // Plain `flag` / `-flag` tokens, and flags with a (+) / (-) default.
  FlagSet use_enabled() const;
  FlagSet use_disabled() const;
  FlagSet use_missing_enabled() const;
  FlagSet use_missing_disabled() const;
  bool has_use_conditionals() const;

  // Portage Atom.evaluate_conditionals: `flag?`, `!flag?`, `flag=`, `!flag=` resolved against
  // the parent's enabled flags. (Like Portage, the result drops a `::repo`.)
  Atom evaluate_conditionals(const FlagSet& enabled) const;
};

struct AtomOptions {
  bool allow_wildcard = false;
  std::optional<bool> allow_repo;     // unset: allowed without an EAPI, per EAPI otherwise
  std::optional<bool> allow_build_id; // unset: allowed without an EAPI
  std::optional<std::string> eapi;    // unset: no EAPI restrictions
  // When set (and an EAPI is given), conditional USE deps must name valid flags.
  std::function<bool(std::string_view)> is_valid_flag;
};

// Parses an atom; an error (ErrorKind::invalid) wherever Portage raises InvalidAtom.
Result<Atom> parse_atom(std::string_view text, const AtomOptions& options = {});

enum class Blockers { reject, allow };

// Portage isvalidatom: parses with `options` and rejects blockers unless allowed.
bool is_valid_atom(std::string_view text, const AtomOptions& options, Blockers blockers = Blockers::reject);

// What an atom is matched against (Portage match_from_list candidates). Unknown parts
// (nullopt / null) are not checked, as for Portage's string candidates.
struct MatchCandidate {
  Cpv cpv;
  std::optional<std::string> slot;
  std::optional<std::string> sub_slot; // defaults to the slot
  std::optional<std::string> repo;
  std::optional<uint64_t> build_id;
  const FlagSet* use_enabled = nullptr; // with iuse: USE deps are checked
  const FlagSet* iuse = nullptr;
};

// A candidate from a string `cat/pkg-1.2[:SLOT[/SUB]][::repo]`; nullopt if not a cpv.
std::optional<MatchCandidate> candidate_from_string(std::string_view text);

// True if `candidate` satisfies `atom` (blockers are matched as the atom they block).
bool atom_matches(const Atom& atom, const MatchCandidate& candidate);

// Portage best_match_to_list: the index of the most specific atom matching `package`
// (a string candidate), or nullopt.
std::optional<size_t> best_match(std::string_view package, const std::vector<Atom>& atoms);

// Portage isjustname: true if `text` names a package without a version.
bool is_just_name(std::string_view text);

// String helpers of portage.dep that work on unparsed atoms.
std::optional<std::string> dep_getslot(std::string_view atom);
std::optional<std::string> dep_getrepo(std::string_view atom);
Result<std::vector<std::string>> dep_getusedeps(std::string_view atom);

} // namespace swarm::portage
