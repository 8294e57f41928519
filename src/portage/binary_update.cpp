#include "portage/binary_update.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/fs.hpp"
#include "core/strings.hpp"
#include "portage/atom.hpp"
#include "portage/emerge_output.hpp"

namespace swarm::portage {

namespace {

void add_unique(std::vector<std::string>& list, std::string value)
{
  if (!value.empty() && std::find(list.begin(), list.end(), value) == list.end()) {
    list.push_back(std::move(value));
  }
}

// The first "…" of a line: Portage quotes the atom it cannot satisfy (`"=cat/pkg-1"`, possibly
// followed by ` for /root/`).
std::string first_quoted(std::string_view line)
{
  const auto open = line.find('"');
  if (open == std::string_view::npos) {
    return {};
  }
  const auto close = line.find('"', open + 1);
  if (close == std::string_view::npos) {
    return {};
  }
  return std::string(line.substr(open + 1, close - open - 1));
}

/*
 * The messages of _emerge/depgraph.py that mean "this cannot be installed as asked":
 *  - _show_missing_args / display_problems: "!!! Ebuilds for the following packages are either
 *    all" / "!!! masked or don't exist:" / the atoms on one line, space-separated (the world
 *    atoms --getbinpkgonly @world drops, exit 0);
 *  - _show_unsatisfied_dep: `emerge: there are no binary packages to satisfy "ATOM".`, the same
 *    with "ebuilds" and "ebuilds built with USE flags", `All ebuilds that could satisfy "ATOM"
 *    have been masked.`, `The ebuild selected to satisfy "ATOM" has unmet requirements.`;
 *  - show_masked_packages: `- cat/pkg-1::repo (masked by: REASON, …)`.
 */
const std::vector<std::string_view> k_unsatisfied_markers = {
  "there are no binary packages to satisfy ",
  "there are no ebuilds to satisfy ",
  "there are no ebuilds built with USE flags to satisfy ",
  "All ebuilds that could satisfy ",
  "The ebuild selected to satisfy ",
};

} // namespace

Result<BinaryUpdateReport> assess_binary_update(std::string_view emerge_output)
{
  auto list = parse_emerge_output(emerge_output);
  if (!list) {
    return fail(list.error());
  }
  BinaryUpdateReport report;
  for (const auto& entry : list->entries) {
    if (entry.type == MergeType::ebuild) {
      add_unique(report.from_source, entry.cpv);
      report.problems.push_back(fmt::format("[ebuild] {}: would be compiled here", entry.cpv));
    } else if (entry.type == MergeType::binary) {
      add_unique(report.binaries, entry.cpv);
    }
  }

  const auto lines = strings::split(emerge_output, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto line = displayed_text(lines[i]);
    const auto trimmed = std::string(strings::trim(line));
    if (trimmed.starts_with("Total: 0 packages")) {
      report.nothing_to_do = true;
    }
    if (trimmed.find("Ebuilds for the following packages are either all") != std::string::npos) {
      // "!!! masked or don't exist:" follows, then the atoms on one line.
      size_t next = i + 1;
      if (next < lines.size() && displayed_text(lines[next]).find("masked or don't exist") != std::string::npos) {
        ++next;
      }
      if (next < lines.size()) {
        const auto atoms = strings::split_any(displayed_text(lines[next]));
        for (const auto& atom : atoms) {
          add_unique(report.unsatisfied, atom);
        }
        report.problems.push_back(fmt::format("Portage drops {} (\"Ebuilds for the following packages are either "
                                              "all masked or don't exist\")",
                                              strings::join(atoms, " ")));
        i = next;
      }
      continue;
    }
    for (const auto marker : k_unsatisfied_markers) {
      if (const auto at = trimmed.find(marker); at != std::string::npos) {
        add_unique(report.unsatisfied, first_quoted(std::string_view(trimmed).substr(at)));
        report.problems.push_back(trimmed.starts_with("!!! ") ? trimmed.substr(4) : trimmed);
        break;
      }
    }
    if (trimmed.starts_with("- ") && trimmed.find(" (masked by: ") != std::string::npos) {
      add_unique(report.masked, trimmed.substr(2));
      report.problems.push_back("masked: " + trimmed.substr(2));
    }
  }
  return report;
}

Result<std::vector<InstalledPackage>> read_vdb(const std::filesystem::path& vdb_dir)
{
  std::vector<InstalledPackage> out;
  std::error_code ec;
  if (!std::filesystem::exists(vdb_dir, ec)) {
    return out;
  }
  auto hidden = [](const std::string& name) { return name.empty() || name.front() == '.' || name.front() == '-'; };
  for (std::filesystem::directory_iterator category(vdb_dir, ec), end; !ec && category != end; category.increment(ec)) {
    const auto category_name = category->path().filename().string();
    if (hidden(category_name) || !category->is_directory(ec)) {
      continue;
    }
    for (std::filesystem::directory_iterator package(category->path(), ec); !ec && package != end;
         package.increment(ec)) {
      const auto pf = package->path().filename().string();
      if (hidden(pf) || !package->is_directory(ec)) {
        continue;
      }
      InstalledPackage installed;
      installed.cpv = category_name + "/" + pf;
      if (auto slot = fs::read_file(package->path() / "SLOT", 4096)) {
        installed.slot = std::string(strings::trim(*slot));
      }
      if (auto repo = fs::read_file(package->path() / "repository", 4096)) {
        installed.repo = std::string(strings::trim(*repo));
      }
      out.push_back(std::move(installed));
    }
  }
  if (ec) {
    return fail(ErrorKind::io, "cannot read the installed-package database {}: {}", vdb_dir.string(), ec.message());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.cpv < b.cpv; });
  return out;
}

std::vector<std::string> parse_world_file(std::string_view text)
{
  std::vector<std::string> out;
  for (const auto& raw : strings::split(text, '\n')) {
    const auto line = strings::trim(raw);
    if (!line.empty() && !line.starts_with('#')) {
      out.emplace_back(line);
    }
  }
  return out;
}

std::vector<std::string> unsatisfied_atoms(const std::vector<std::string>& world,
                                           const std::vector<InstalledPackage>& installed)
{
  std::vector<MatchCandidate> candidates;
  for (const auto& package : installed) {
    auto text = package.cpv;
    if (!package.slot.empty()) {
      text += ":" + package.slot;
    }
    if (!package.repo.empty()) {
      text += "::" + package.repo;
    }
    if (auto candidate = candidate_from_string(text)) {
      candidates.push_back(std::move(*candidate));
    }
  }
  std::vector<std::string> out;
  for (const auto& text : world) {
    const auto atom = parse_atom(text);
    const bool satisfied = atom && std::any_of(candidates.begin(), candidates.end(),
                                               [&](const auto& candidate) { return atom_matches(*atom, candidate); });
    if (!satisfied) {
      out.push_back(text);
    }
  }
  return out;
}

} // namespace swarm::portage
