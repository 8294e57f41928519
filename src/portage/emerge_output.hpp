#pragma once
// The merge list of `emerge --pretend` output (Portage _emerge/resolver/output.py): every line
// form — `[ebuild …]`, `[binary …]` with a build id glued to the version, `[blocks …]`,
// `[uninstall …]`, `[nomerge …]`, `--tree`, `--quiet`, `--columns`, `--verbose` USE strings —
// with headers, footers and colour codes skipped.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.hpp"

namespace swarm::portage {

enum class MergeType {
  ebuild,    // built from source
  binary,    // installed from a binary package
  installed, // an installed package (type "installed")
  nomerge,   // shown but not merged (--tree repeats)
  uninstall, // removed
  blocks,    // a blocker
  merge,     // `--quiet --columns`: merged, type not shown
};

// "ebuild", "binary", … as printed (and "merge").
std::string_view merge_type_name(MergeType type);

// Flags of one USE variable, decorations removed: "-doc%" → disabled "doc",
// "(mime)" → enabled "mime", "introspection%*" → enabled "introspection".
struct UseFlags {
  std::vector<std::string> enabled;
  std::vector<std::string> disabled;
};

struct MergeEntry {
  MergeType type = MergeType::ebuild;
  std::string attributes; // the attribute column letters: "N", "U", "R~", "NS", "B"
  std::string cpv;        // "cat/pkg-ver[-rN]" (no build id); empty for blockers
  std::optional<uint64_t> build_id;
  std::string slot;                      // as shown (`--verbose`), else empty
  std::string subslot;                   // as shown, else empty
  std::string repo;                      // as shown, else empty
  std::vector<std::string> old_versions; // the `[…]` block: "2.78.6:2::gentoo", …
  UseFlags use;
  std::map<std::string, UseFlags> use_expand; // "PYTHON_TARGETS" → flags
  int depth = 0;                              // `--tree` indentation
  std::string blocker;                        // blocks: the blocking atom
  std::string blocker_text;                   // blocks: the explanation, without its parentheses
  std::string size;                           // download size as shown: "39,565 KiB"
  std::string root;                           // "to ROOT" for another root, else empty

  // Enabled USE flags, USE_EXPAND values as `name_value` (PYTHON_TARGETS="python3_12" →
  // python_targets_python3_12), sorted.
  std::vector<std::string> enabled_flags() const;
};

struct MergeList {
  std::vector<MergeEntry> entries; // in merge order
  bool reverse_display = false;    // the output said "in reverse order" (--tree) and was reversed
};

// Parses emerge --pretend output. Lines that are not merge-list entries are skipped; an entry
// line whose package cannot be read is an error naming the line.
Result<MergeList> parse_emerge_output(std::string_view text);

// What a terminal shows of one line of output: the text after the last carriage return (spinner
// updates), without ANSI CSI/OSC sequences (colours, xterm titles), backspaces applied.
std::string displayed_text(std::string_view line);

// The merge list as JSON: {"reverse_display": b, "entries": [{type, attributes, cpv, …}]}.
nlohmann::json merge_list_to_json(const MergeList& list);

} // namespace swarm::portage
