#include "portage/pkgdir.hpp"

#include <algorithm>
#include <string_view>
#include <system_error>

#include <fmt/format.h>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

constexpr std::string_view k_gpkg_suffix = ".gpkg.tar";

} // namespace

std::string pf_of(const Cpv& cpv)
{
  return fmt::format("{}-{}", cpv.package, cpv.full_version());
}

std::filesystem::path package_file_path(const std::filesystem::path& pkgdir, const Cpv& cpv, uint64_t build_id)
{
  return pkgdir / cpv.category / cpv.package / fmt::format("{}-{}{}", pf_of(cpv), build_id, k_gpkg_suffix);
}

std::vector<PackageFile> package_files(const std::filesystem::path& pkgdir, const Cpv& cpv)
{
  std::vector<PackageFile> out;
  const auto prefix = pf_of(cpv) + "-";
  std::error_code error;
  std::filesystem::directory_iterator it(pkgdir / cpv.category / cpv.package, error);
  if (error) {
    return out;
  }
  for (const auto& entry : it) {
    const auto name = entry.path().filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(k_gpkg_suffix)) {
      continue;
    }
    const auto middle =
      std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - k_gpkg_suffix.size());
    // "foo-1.0-3" belongs to foo-1.0; "foo-1.0-r1-3" does not (its middle "r1-3" is not
    // a number).
    const auto build_id = strings::parse_uint(middle);
    if (!build_id || !entry.is_regular_file(error)) {
      continue;
    }
    out.push_back(PackageFile{entry.path(), *build_id});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.build_id < b.build_id; });
  return out;
}

uint64_t next_build_id(const std::filesystem::path& pkgdir, const Cpv& cpv)
{
  const auto files = package_files(pkgdir, cpv);
  return files.empty() ? 1 : files.back().build_id + 1;
}

} // namespace swarm::portage
