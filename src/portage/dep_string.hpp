#pragma once
// Dependency specification strings (DEPEND, RDEPEND, LICENSE, SRC_URI …): Portage's
// use_reduce / paren_reduce with their exact nested-list results and errors, and a typed tree
// (all-of / any-of / atom) of a reduced dependency string.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "portage/atom.hpp"

namespace swarm::portage {

// One element of Portage's nested-list form: a token ("cat/pkg", "||", "flag?") or a group.
struct DepElement {
  bool is_group = false;
  std::string token;
  std::vector<DepElement> items;
  std::shared_ptr<const Atom> atom; // the parsed token, when reduced with TokenClass::atom

  bool operator==(const DepElement& other) const;
};
using DepList = std::vector<DepElement>;

enum class TokenClass { string, atom };

// The parameters of Portage's use_reduce, with its defaults.
struct UseReduceOptions {
  FlagSet use;             // enabled flags
  FlagSet mask;            // always treated as disabled
  bool match_all = false;  // every conditional active (repoman)
  FlagSet exclude_all;     // negated conditionals on these are inactive
  bool is_src_uri = false; // SRC_URI syntax: "->" arrows, no "||"
  std::optional<std::string> eapi;
  bool opconvert = false;                              // "||" moved inside its group: [["||", a, b]]
  bool flat = false;                                   // one flat list of all tokens
  std::function<bool(std::string_view)> is_valid_flag; // conditionals must name valid flags
  TokenClass token_class = TokenClass::string;         // atom: tokens parsed (and evaluated)
  bool match_none = false;                             // every conditional inactive
  std::optional<FlagSet> subset;                       // keep only what these conditionals select
};

// Portage use_reduce: removes USE conditionals and redundant parentheses. Errors (invalid)
// carry Portage's InvalidDependString messages, at exactly the inputs Portage rejects.
Result<DepList> use_reduce(std::string_view depstr, const UseReduceOptions& options = {});

// Portage paren_reduce: parentheses to groups, redundant ones removed, conditionals kept.
Result<DepList> paren_reduce(std::string_view depstr);

// Portage paren_enclose: the list back to a string ("a ( b c )").
std::string paren_enclose(const DepList& list);

// The nested-list form as JSON: tokens are strings, groups arrays.
nlohmann::json dep_list_to_json(const DepList& list);

enum class DepNodeKind { all_of, any_of, atom };

// A reduced dependency: the root is an all-of group; an any-of group's children are its
// alternatives (an atom, an all-of group or a nested any-of group).
struct DepNode {
  DepNodeKind kind = DepNodeKind::all_of;
  std::shared_ptr<const Atom> atom; // kind == atom
  std::vector<DepNode> children;
};

// The typed tree of a use_reduce result (without opconvert/flat).
Result<DepNode> dep_tree(const DepList& reduced, const std::optional<std::string>& eapi = {});

// use_reduce with atoms for `use`, as a tree: what a package's DEPEND means for one build.
Result<DepNode> reduce_dependencies(std::string_view depstr, const FlagSet& use,
                                    const std::optional<std::string>& eapi = {});

// The tree as JSON: an atom is its string, an all-of group a list, an any-of group
// {"any_of": [...]}.
nlohmann::json dep_tree_to_json(const DepNode& node);

} // namespace swarm::portage
