#include "roles/demo/fake_common.hpp"

#include "core/config.hpp"
#include "portage/atom.hpp"

namespace swarm::roles::demo::fake {

std::optional<portage::Cpv> split_cpv(std::string_view text)
{
  auto cpv = portage::parse_cpv(text);
  if (!cpv || text.find('/') == std::string_view::npos || !portage::is_valid_category(cpv->category)) {
    return std::nullopt;
  }
  return cpv;
}

std::filesystem::path env_path(std::string_view name, std::string_view fallback)
{
  auto value = config::env_get(name);
  if (!value || value->empty()) {
    return std::filesystem::path(std::string(fallback));
  }
  return std::filesystem::path(*value);
}

bool is_installed(const std::filesystem::path& root, std::string_view cpv)
{
  std::error_code error;
  return std::filesystem::is_directory(fake_vdb_dir(root, cpv), error);
}

} // namespace swarm::roles::demo::fake
