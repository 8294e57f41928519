// `swarm portage gpkg FILE` judges one binary package; `swarm portage index DIR` validates every
// GPKG of a PKGDIR-style tree and writes its Packages and Packages.gz.

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/version.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view k_gpkg_suffix = ".gpkg.tar";

nlohmann::json report_json(const portage::GpkgReport& report)
{
  nlohmann::json out;
  out["valid"] = report.valid;
  if (!report.valid) {
    out["reason"] = report.reason;
  }
  out["format"] = portage::binpkg_format_name(report.format);
  if (!report.dir_name.empty()) {
    out["dir"] = report.dir_name;
  }
  out["metadata"] = report.metadata;
  out["signed"] = report.is_signed;
  out["signature"] = portage::signature_status_name(report.signature);
  if (!report.signature_detail.empty()) {
    out["signature_detail"] = report.signature_detail;
  }
  if (report.format == portage::BinpkgFormat::gpkg && report.valid) {
    out["compression"] = portage::compression_name(report.metadata_compression);
  }
  auto members = nlohmann::json::array();
  for (const auto& member : report.members) {
    members.push_back({{"name", member.name}, {"size", member.size}});
  }
  out["members"] = members;
  out["size"] = report.size;
  out["sha256"] = report.sha256;
  return out;
}

struct GpkgOptions {
  std::string file;
  std::string expect;      // CATEGORY/PF the metadata must name ("": any)
  std::string verify_with; // public key file or GnuPG home ("": no signature check)
  bool json = false;       // the report is JSON either way
};

int run_gpkg(const VerbContext&, const GpkgOptions& verb)
{
  const stdfs::path path = verb.file;
  std::error_code error;
  if (!stdfs::is_regular_file(path, error)) {
    print_error(fmt::format("{}: no such file", path.string()));
    return exit_code::k_usage;
  }
  portage::GpkgOptions options;
  if (!verb.expect.empty()) {
    const auto& expect = verb.expect;
    auto cpv = portage::parse_cpv(expect);
    if (expect.find('/') == std::string::npos || !cpv) {
      print_error(fmt::format("--expect wants CATEGORY/PF (app-misc/hello-1.2.3-r1), not '{}'", expect));
      return exit_code::k_usage;
    }
    options.expect_cpv = expect;
  }
  if (!verb.verify_with.empty()) {
    options.verify_signature_with = verb.verify_with;
    if (!stdfs::exists(options.verify_signature_with, error)) {
      print_error(fmt::format("{}: no such key file or GnuPG home", options.verify_signature_with.string()));
      return exit_code::k_usage;
    }
  }
  auto report = portage::validate_gpkg(path, options);
  if (!report) {
    print_error(report.error().message);
    return exit_code::k_failure;
  }
  fmt::print("{}\n", report_json(*report).dump(2));
  return report->valid ? exit_code::k_ok : exit_code::k_failure;
}

// Where Portage expects a package: CAT/PN/PF-BUILD_ID.gpkg.tar (binpkg-multi-instance) or the
// legacy CAT/PF.gpkg.tar. bintree._populate_local skips files whose place disagrees with their
// metadata; so do we, with a reason.
std::optional<std::string> check_placement(const stdfs::path& relative, const portage::GpkgReport& report)
{
  std::vector<std::string> parts;
  for (const auto& part : relative) {
    parts.push_back(part.string());
  }
  const auto& category = report.metadata.at("CATEGORY");
  const auto& pf = report.metadata.at("PF");
  const auto file = parts.back();
  const auto stem = file.substr(0, file.size() - k_gpkg_suffix.size());
  if (parts.size() == 2) {
    if (parts[0] != category || stem != pf) {
      return fmt::format("metadata says {}/{}, the file is at {}", category, pf, relative.string());
    }
    return std::nullopt;
  }
  if (parts.size() != 3) {
    return fmt::format("not at CAT/PN/PF-BUILD_ID{} or CAT/PF{}", k_gpkg_suffix, k_gpkg_suffix);
  }
  const auto cpv = portage::parse_cpv(category + "/" + pf);
  const auto build_id = report.metadata.find("BUILD_ID");
  const auto expected_stem = build_id == report.metadata.end() ? pf : pf + "-" + build_id->second;
  if (!cpv || parts[0] != category || parts[1] != cpv->package || stem != expected_stem) {
    return fmt::format("metadata says {}/{} build {}, the file is at {}", category, pf,
                       build_id == report.metadata.end() ? "?" : build_id->second, relative.string());
  }
  return std::nullopt;
}

// The header of an existing Packages file, if it is one Portage would accept.
std::optional<portage::IndexBlock> fs_read_header(const stdfs::path& path)
{
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto index = portage::read_packages_index(text.str());
  if (!index) {
    return std::nullopt;
  }
  return index->header;
}

struct IndexOptions {
  std::string dir;
  int64_t timestamp = 0; // the index's TIMESTAMP; 0: now
  bool json = false;
};

int run_index(const VerbContext&, const IndexOptions& verb)
{
  const stdfs::path dir = verb.dir;
  std::error_code error;
  if (!stdfs::is_directory(dir, error)) {
    print_error(fmt::format("{}: no such directory", dir.string()));
    return exit_code::k_usage;
  }
  const int64_t timestamp =
    verb.timestamp > 0
      ? verb.timestamp
      : std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  std::vector<stdfs::path> files;
  for (auto it = stdfs::recursive_directory_iterator(dir, error); !error && it != stdfs::recursive_directory_iterator();
       it.increment(error)) {
    const auto name = it->path().filename().string();
    if (it->is_regular_file(error) && name.ends_with(k_gpkg_suffix) && !name.starts_with(".")) {
      files.push_back(stdfs::relative(it->path(), dir, error));
    }
  }
  if (error) {
    print_error(fmt::format("cannot scan {}: {}", dir.string(), error.message()));
    return exit_code::k_failure;
  }
  std::sort(files.begin(), files.end());

  // Keep the header of an existing index (ARCH, ACCEPT_*, PROFILE … come from the builder's
  // configuration, which this verb does not know).
  portage::PackagesIndex index;
  index.header["VERSION"] = "0";
  if (auto existing = fs_read_header(dir / "Packages")) {
    index.header = *existing;
  }
  auto skipped = nlohmann::json::array();
  auto skip = [&](const stdfs::path& file, const std::string& reason) {
    fmt::print(stderr, "swarm: warning: skipping {}: {}\n", file.string(), reason);
    skipped.push_back({{"path", file.string()}, {"reason", reason}});
  };
  for (const auto& file : files) {
    portage::GpkgOptions options;
    options.file_digests = {hash::Algo::md5, hash::Algo::sha1};
    auto report = portage::validate_gpkg(dir / file, options);
    if (!report) {
      skip(file, report.error().message);
      continue;
    }
    if (!report->valid) {
      skip(file, report->reason);
      continue;
    }
    if (auto misplaced = check_placement(file, *report)) {
      skip(file, *misplaced);
      continue;
    }
    auto entry = portage::index_entry_for_gpkg(dir / file, file.string(), *report);
    if (!entry) {
      skip(file, entry.error().message);
      continue;
    }
    index.packages.push_back(std::move(*entry));
  }
  if (auto written = portage::write_packages_files(dir, index, timestamp); !written) {
    print_error(written.error().message);
    return exit_code::k_failure;
  }
  if (verb.json) {
    nlohmann::json out{{"index", (dir / "Packages").string()},
                       {"packages", index.packages.size()},
                       {"skipped", skipped},
                       {"timestamp", timestamp}};
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("indexed {} package{} into {} ({} skipped)\n", index.packages.size(),
               index.packages.size() == 1 ? "" : "s", (dir / "Packages").string(), skipped.size());
  }
  return exit_code::k_ok;
}

} // namespace

void add_portage_binpkg_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back(make_verb<GpkgOptions>(
    "portage gpkg", "Validate a binary package as Portage would (GLEP 78) and print its metadata as JSON",
    [](CLI::App& app, ConfigFlags&, GpkgOptions& options) {
      app.add_option("file", options.file, "The .gpkg.tar (or old .xpak/.tbz2) file")->required();
      app.add_option("--expect", options.expect, "CATEGORY/PF the metadata must name (e.g. app-misc/hello-1.2.3-r1)");
      app.add_option("--verify-with", options.verify_with,
                     "Verify signatures with this public key file or GnuPG home directory");
      add_json_flag(app, options.json);
    },
    run_gpkg));
  verbs.push_back(make_verb<IndexOptions>(
    "portage index", "Validate every GPKG under a directory and write its Packages and Packages.gz",
    [](CLI::App& app, ConfigFlags&, IndexOptions& options) {
      app.add_option("dir", options.dir, "PKGDIR-style tree: CAT/PN/PF-BUILD_ID.gpkg.tar")->required();
      app
        .add_option("--timestamp", options.timestamp, "TIMESTAMP of the index (seconds since the epoch; default: now)")
        ->check(CLI::Validator(
          [](const std::string& text) {
            const auto seconds = strings::parse_int(text);
            return seconds && *seconds > 0 ? std::string()
                                           : fmt::format("wants seconds since the epoch, not '{}'", text);
          },
          "SECONDS"));
      add_json_flag(app, options.json);
    },
    run_index));
}

} // namespace swarm::roles
