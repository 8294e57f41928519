#pragma once
// md5-dict metadata cache entries: `metadata/md5-cache/CAT/PF` in an ebuild repository
// (PMS "md5-dict"), one KEY=value per line, any order.

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace swarm::portage {

struct Md5CacheEntry {
  std::map<std::string, std::string, std::less<>> values;    // every key, unknown ones included
  std::vector<std::pair<std::string, std::string>> eclasses; // _eclasses_: (name, md5) in order

  // The value of `key`, "" when absent (PMS: empty values may be omitted).
  const std::string& get(std::string_view key) const;
  // EAPI, "0" when absent (as Portage reads it).
  std::string eapi() const;
};

// Parses the text of an entry. Lines without '=' are an error; a malformed `_eclasses_`
// (odd number of tab-separated fields) too.
Result<Md5CacheEntry> parse_md5_cache(std::string_view text);

// Reads `repo_dir/metadata/md5-cache/CATEGORY/PF` (`cpv` = "CATEGORY/PF"); not_found with the
// path when there is no such entry.
Result<Md5CacheEntry> read_md5_cache(const std::filesystem::path& repo_dir, std::string_view cpv);

} // namespace swarm::portage
