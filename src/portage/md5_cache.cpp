#include "portage/md5_cache.hpp"

#include <fstream>
#include <sstream>

#include "portage/version.hpp"

namespace swarm::portage {

const std::string& Md5CacheEntry::get(std::string_view key) const
{
  static const std::string k_empty;
  const auto it = values.find(key);
  return it == values.end() ? k_empty : it->second;
}

std::string Md5CacheEntry::eapi() const
{
  const auto& value = get("EAPI");
  return value.empty() ? std::string("0") : value;
}

Result<Md5CacheEntry> parse_md5_cache(std::string_view text)
{
  Md5CacheEntry entry;
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    auto line = text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    ++line_number;
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line.empty()) {
      continue;
    }
    const auto equals = line.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      return fail(ErrorKind::invalid, "md5-cache line {}: expected KEY=value, got '{}'", line_number, line);
    }
    entry.values.insert_or_assign(std::string(line.substr(0, equals)), std::string(line.substr(equals + 1)));
  }
  if (const auto& eclasses = entry.get("_eclasses_"); !eclasses.empty()) {
    std::vector<std::string> fields;
    size_t from = 0;
    while (true) {
      const auto tab = eclasses.find('\t', from);
      fields.push_back(eclasses.substr(from, tab == std::string::npos ? std::string::npos : tab - from));
      if (tab == std::string::npos) {
        break;
      }
      from = tab + 1;
    }
    if (fields.size() % 2 != 0) {
      return fail(ErrorKind::invalid, "md5-cache _eclasses_: {} tab-separated fields, expected name/md5 pairs",
                  fields.size());
    }
    for (size_t i = 0; i < fields.size(); i += 2) {
      entry.eclasses.emplace_back(std::move(fields[i]), std::move(fields[i + 1]));
    }
  }
  return entry;
}

Result<Md5CacheEntry> read_md5_cache(const std::filesystem::path& repo_dir, std::string_view cpv)
{
  // A checked cpv cannot climb out of the cache directory ("..", extra '/').
  if (!parse_cpv(cpv) || cpv.find('/') == std::string_view::npos) {
    return fail(ErrorKind::invalid, "not a category/package-version: '{}'", cpv);
  }
  const auto path = repo_dir / "metadata" / "md5-cache" / std::filesystem::path(cpv);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      return fail(ErrorKind::not_found, "no md5-cache entry for {} ({})", cpv, path.string());
    }
    return fail(ErrorKind::io, "cannot read md5-cache entry {}", path.string());
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  auto entry = parse_md5_cache(buffer.str());
  if (!entry) {
    return fail(entry.error().kind, "{}: {}", path.string(), entry.error().message);
  }
  return entry;
}

} // namespace swarm::portage
