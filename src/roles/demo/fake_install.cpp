// The fake builder's binary installs (`--usepkgonly --getbinpkgonly =CPV…`), as emerge does
// them from a binhost: Packages index, download, integrity checks, vdb entry.
#include <algorithm>
#include <map>

#include <unistd.h>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "net/http_client.hpp"
#include "net/url.hpp"
#include "portage/gpkg.hpp"
#include "portage/packages_index.hpp"
#include "portage/pkgdir.hpp"
#include "roles/demo/fake_common.hpp"

namespace swarm::roles::demo::fake {

namespace {

// Every `*.conf` of a binrepos.conf directory (sorted), or the file itself.
struct BinRepo {
  std::string name;
  std::string sync_uri;
  int priority = 0;
};

std::vector<BinRepo> read_binrepos(const std::filesystem::path& path)
{
  std::vector<std::filesystem::path> files;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    for (const auto& entry : std::filesystem::directory_iterator(path, error)) {
      if (entry.path().extension() == ".conf") {
        files.push_back(entry.path());
      }
    }
    std::sort(files.begin(), files.end());
  } else if (std::filesystem::exists(path, error)) {
    files.push_back(path);
  }
  std::vector<BinRepo> repos;
  for (const auto& file : files) {
    auto text = fs::read_file(file, 1u << 20);
    if (!text) {
      continue;
    }
    BinRepo* current = nullptr;
    for (const auto& raw : strings::split(*text, '\n')) {
      const auto line = strings::trim(raw);
      if (line.empty() || line.starts_with('#')) {
        continue;
      }
      if (line.starts_with('[') && line.ends_with(']')) {
        repos.push_back(BinRepo{std::string(line.substr(1, line.size() - 2)), "", 0});
        current = &repos.back();
        continue;
      }
      const auto equals = line.find('=');
      if (current == nullptr || equals == std::string_view::npos) {
        continue;
      }
      const auto key = strings::trim(line.substr(0, equals));
      const auto value = std::string(strings::trim(line.substr(equals + 1)));
      if (key == "sync-uri") {
        current->sync_uri = value;
        while (current->sync_uri.ends_with('/')) {
          current->sync_uri.pop_back();
        }
      } else if (key == "priority") {
        current->priority = static_cast<int>(strings::parse_int(value).value_or(0));
      }
    }
  }
  std::erase_if(repos, [](const BinRepo& repo) { return repo.sync_uri.empty() || repo.name == "DEFAULT"; });
  std::stable_sort(repos.begin(), repos.end(), [](const auto& a, const auto& b) { return a.priority > b.priority; });
  return repos;
}

// Writes the vdb entry like Portage's: one file per key with a trailing newline, into a
// temporary directory renamed into place (a concurrent install of the same package wins or
// loses as a whole).
Result<> install_into_vdb(const std::filesystem::path& root, std::string_view cpv,
                          const std::map<std::string, std::string>& metadata)
{
  const auto target = fake_vdb_dir(root, cpv);
  const auto category_dir = target.parent_path();
  if (auto made = fs::make_dirs(category_dir); !made) {
    return made;
  }
  const auto temp = category_dir / fmt::format(".{}.swarm-{}", target.filename().string(), ::getpid());
  std::error_code error;
  std::filesystem::remove_all(temp, error);
  if (auto made = fs::make_dirs(temp); !made) {
    return made;
  }
  for (const auto& [key, value] : metadata) {
    if (auto written = fs::write_file_atomic(temp / key, value + "\n"); !written) {
      return written;
    }
  }
  std::filesystem::remove_all(target, error); // a reinstall replaces the entry
  std::filesystem::rename(temp, target, error);
  if (error) {
    std::filesystem::remove_all(temp);
    if (std::filesystem::is_directory(target)) {
      return {}; // installed by a concurrent emerge meanwhile
    }
    return fail(ErrorKind::io, "cannot install {} into {}: {}", std::string(cpv), target.string(), error.message());
  }
  return {};
}

// --- step 1: binary packages from the binhost ---

// The binhost's URL carries the drone token as userinfo; libcurl sends it as HTTP Basic, as
// Portage's fetcher does.
net::ClientOptions client_for(const std::string& sync_uri)
{
  net::ClientOptions options;
  options.base_url = sync_uri;
  return options;
}

} // namespace

int install_binaries(const FakeEmergeArgs& args)
{
  const auto root = env_path("ROOT", "/");
  const auto configroot = env_path("PORTAGE_CONFIGROOT", "/");
  const auto repos = read_binrepos(configroot / "etc/portage/binrepos.conf");

  std::vector<std::string> wanted;
  for (const auto& cpv : args.cpvs) {
    if (args.noreplace && is_installed(root, cpv)) {
      continue;
    }
    wanted.push_back(cpv);
  }
  if (wanted.empty()) {
    say(">>> All binary packages are already installed.");
    return exit_code::k_ok;
  }

  // Like Portage, resolve everything before installing anything.
  struct Source {
    const BinRepo* repo;
    portage::IndexBlock block;
  };
  std::vector<portage::PackagesIndex> indexes;
  for (const auto& repo : repos) {
    net::HttpClient client(client_for(repo.sync_uri));
    net::CallOptions call;
    call.on_http_error = net::OnHttpError::return_response;
    auto response = client.request("GET", repo.sync_uri + "/Packages", {}, {}, call);
    if (!response) {
      complain("!!! Error fetching binhost package info from '{}': {}", net::url::redact(repo.sync_uri),
               response.error().message);
      indexes.emplace_back();
      continue;
    }
    if (!response->ok()) {
      complain("!!! Error fetching binhost package info from '{}': HTTP {}", net::url::redact(repo.sync_uri),
               response->status);
      indexes.emplace_back();
      continue;
    }
    auto index = portage::read_packages_index(response->body);
    if (!index) {
      complain("!!! Invalid binhost index from '{}': {}", net::url::redact(repo.sync_uri), index.error().message);
      indexes.emplace_back();
      continue;
    }
    indexes.push_back(std::move(*index));
  }
  std::vector<Source> sources;
  for (const auto& cpv : wanted) {
    std::optional<Source> found;
    for (size_t i = 0; i < repos.size() && !found; ++i) {
      // Several instances of one cpv: the highest BUILD_ID, as Portage prefers the newest.
      uint64_t best_id = 0;
      for (const auto& block : indexes[i].packages) {
        const auto it = block.find("CPV");
        if (it == block.end() || it->second != cpv) {
          continue;
        }
        const auto build_id = block.contains("BUILD_ID") ? strings::parse_uint(block.at("BUILD_ID")).value_or(0) : 0;
        if (!found || build_id >= best_id) {
          found = Source{&repos[i], block};
          best_id = build_id;
        }
      }
    }
    if (!found) {
      complain("emerge: there are no binary packages to satisfy \"={}\".", cpv);
      return exit_code::k_failure;
    }
    sources.push_back(std::move(*found));
  }

  fs::TempDir downloads("fake-emerge");
  for (size_t i = 0; i < wanted.size(); ++i) {
    const auto& cpv = wanted[i];
    const auto& source = sources[i];
    const auto split = split_cpv(cpv);
    const auto repo_name = source.block.contains("REPO") ? source.block.at("REPO") : std::string("gentoo");
    say(">>> Emerging binary ({} of {}) {}::{}", i + 1, wanted.size(), cpv, repo_name);
    std::string relative;
    if (source.block.contains("PATH")) {
      relative = source.block.at("PATH");
    } else {
      relative = fmt::format("{}/{}.gpkg.tar", split->category, portage::pf_of(*split));
    }
    while (relative.starts_with('/')) {
      relative.erase(0, 1);
    }
    net::HttpClient client(client_for(source.repo->sync_uri));
    const auto file = downloads / fmt::format("{}.gpkg.tar", i);
    auto fetched = client.get_to_file(source.repo->sync_uri + "/" + relative, file);
    if (!fetched) {
      complain("!!! Couldn't download '{}': {}", relative, fetched.error().message);
      return exit_code::k_failure;
    }
    portage::GpkgOptions options;
    options.expect_cpv = cpv;
    options.file_digests = {hash::Algo::md5};
    auto report = portage::validate_gpkg(file, options);
    if (!report) {
      complain("!!! Fetched binary package {} cannot be read: {}", cpv, report.error().message);
      return exit_code::k_failure;
    }
    if (!report->valid) {
      complain("!!! Fetched binary package {} is corrupt: {}", cpv, report->reason);
      return exit_code::k_failure;
    }
    if (source.block.contains("SIZE") && source.block.at("SIZE") != std::to_string(report->size)) {
      complain("!!! Fetched binary package {} is corrupt: SIZE {} in the index, {} downloaded", cpv,
               source.block.at("SIZE"), report->size);
      return exit_code::k_failure;
    }
    if (source.block.contains("MD5") && source.block.at("MD5") != report->file_digests[hash::Algo::md5]) {
      complain("!!! Fetched binary package {} is corrupt: MD5 differs from the index", cpv);
      return exit_code::k_failure;
    }
    say(">>> Installing ({} of {}) {}::{}", i + 1, wanted.size(), cpv, repo_name);
    std::map<std::string, std::string> vdb;
    for (const auto key : {"CATEGORY", "PF", "SLOT", "USE", "BUILD_ID", "EAPI", "repository", "DEPEND", "RDEPEND"}) {
      if (const auto it = report->metadata.find(key); it != report->metadata.end()) {
        vdb[key] = it->second;
      }
    }
    vdb.try_emplace("CATEGORY", split->category);
    vdb.try_emplace("PF", portage::pf_of(*split));
    if (auto installed = install_into_vdb(root, cpv, vdb); !installed) {
      complain("!!! {}", installed.error().message);
      return exit_code::k_failure;
    }
    say(">>> Completed ({} of {}) {}::{}", i + 1, wanted.size(), cpv, repo_name);
  }
  return exit_code::k_ok;
}

} // namespace swarm::roles::demo::fake
