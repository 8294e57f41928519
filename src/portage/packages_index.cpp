#include "portage/packages_index.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "portage/compression.hpp"
#include "portage/gpkg.hpp"

namespace swarm::portage {

namespace {

// bintree._pkgindex_default_pkg_data: values a package entry omits when equal.
constexpr std::array<std::pair<std::string_view, std::string_view>, 19> k_defaults{{
  {"BDEPEND", ""},    {"BUILD_ID", ""}, {"BUILD_TIME", ""}, {"DEFINED_PHASES", ""}, {"DEPEND", ""},   {"EAPI", "0"},
  {"IDEPEND", ""},    {"IUSE", ""},     {"KEYWORDS", ""},   {"LICENSE", ""},        {"PATH", ""},     {"PDEPEND", ""},
  {"PROPERTIES", ""}, {"PROVIDES", ""}, {"RDEPEND", ""},    {"REQUIRES", ""},       {"RESTRICT", ""}, {"SLOT", "0"},
  {"USE", ""},
}};

// bintree._pkgindex_inherited_keys, by their file names (repository is written REPO).
constexpr std::array<std::string_view, 2> k_inherited{"CHOST", "REPO"};

// bintree._pkgindex_translated_keys: the file name → Portage's internal name, which is what the
// writer sorts by (so DESC sorts as DESCRIPTION, and MTIME, REPO come after every upper-case key).
std::string_view internal_name(std::string_view key)
{
  if (key == "DESC") {
    return "DESCRIPTION";
  }
  if (key == "MTIME") {
    return "_mtime_";
  }
  if (key == "REPO") {
    return "repository";
  }
  return key;
}

std::vector<std::string> sorted_keys(const IndexBlock& block)
{
  std::vector<std::string> keys;
  for (const auto& [key, value] : block) {
    keys.push_back(key);
  }
  std::sort(keys.begin(), keys.end(),
            [](const std::string& a, const std::string& b) { return internal_name(a) < internal_name(b); });
  return keys;
}

void write_block(std::string& out, const IndexBlock& block)
{
  for (const auto& key : sorted_keys(block)) {
    const auto& value = block.at(key);
    if (!value.empty()) {
      out += key;
      out += ": ";
      out += value;
      out += '\n';
    }
  }
  out += '\n';
}

// Reads lines up to a blank line (PackageIndex._readpkgindex).
class BlockReader {
public:
  explicit BlockReader(std::string_view text) : m_text(text) {}

  IndexBlock next()
  {
    IndexBlock block;
    while (m_pos < m_text.size()) {
      auto end = m_text.find('\n', m_pos);
      if (end == std::string_view::npos) {
        end = m_text.size();
      }
      auto line = m_text.substr(m_pos, end - m_pos);
      m_pos = end + 1;
      if (line.ends_with('\r')) {
        line.remove_suffix(1); // Python's universal newlines read "\r\n" as "\n"
      }
      if (line.empty()) {
        break;
      }
      const auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        continue;
      }
      auto value = line.substr(colon + 1);
      if (!value.empty()) {
        value.remove_prefix(1); // Portage assumes the separator is ": " and drops one character
      }
      block[std::string(line.substr(0, colon))] = std::string(value);
    }
    return block;
  }

private:
  std::string_view m_text;
  size_t m_pos = 0;
};

Result<> set_times(const std::filesystem::path& path, int64_t timestamp)
{
  struct timespec times[2];
  times[0].tv_sec = static_cast<time_t>(timestamp);
  times[0].tv_nsec = 0;
  times[1] = times[0];
  if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
    return fail(ErrorKind::io, "cannot set the times of {}: {}", path.string(), std::strerror(errno));
  }
  return {};
}

// Temp file + fsync + rename, with atime = mtime = timestamp already on the temp file.
Result<> write_with_times(const std::filesystem::path& path, std::string_view content, int64_t timestamp)
{
  auto writer = fs::AtomicFileWriter::create(path);
  if (!writer) {
    return fail(writer.error());
  }
  if (auto written = writer->write(content); !written) {
    return written;
  }
  if (auto timed = set_times(writer->temp_path(), timestamp); !timed) {
    return timed;
  }
  return writer->commit();
}

} // namespace

Result<PackagesIndex> read_packages_index(std::string_view text)
{
  BlockReader reader(text);
  PackagesIndex index;
  index.header = reader.next();
  // bintree._pkgindex_version_supported: VERSION must be an integer <= 0.
  const auto version = index.header.find("VERSION");
  if (version == index.header.end() || version->second.empty()) {
    return fail(ErrorKind::invalid, "Packages index has no VERSION");
  }
  const auto number = strings::parse_int(strings::trim(version->second));
  if (!number || *number > 0) {
    return fail(ErrorKind::invalid, "Packages index version '{}' is not supported", version->second);
  }
  while (true) {
    auto block = reader.next();
    // readBody stops at the first empty block: the end of the file or a second blank line.
    if (block.empty()) {
      break;
    }
    auto cpv = block.find("CPV");
    if (cpv == block.end() || cpv->second.empty()) {
      continue;
    }
    for (const auto& [key, value] : k_defaults) {
      if (!value.empty()) {
        block.try_emplace(std::string(key), value);
      }
    }
    for (const auto key : k_inherited) {
      const auto inherited = index.header.find(std::string(key));
      if (inherited != index.header.end()) {
        block.try_emplace(std::string(key), inherited->second);
      }
    }
    index.packages.push_back(std::move(block));
  }
  return index;
}

std::string write_packages_index(const PackagesIndex& index, const WriteOptions& options)
{
  auto header = index.header;
  header["TIMESTAMP"] = std::to_string(options.timestamp);
  header["PACKAGES"] = std::to_string(index.packages.size());
  // Portage's bintree always has VERSION in the header; a reader rejects an index without it.
  header.try_emplace("VERSION", "0");
  std::string out;
  write_block(out, header);

  std::vector<const IndexBlock*> packages;
  for (const auto& package : index.packages) {
    packages.push_back(&package);
  }
  // Sorted by CPV as plain strings (so foo-10 < foo-9); stable like Python's sorted().
  static const std::string k_empty;
  auto cpv_of = [](const IndexBlock* block) -> const std::string& {
    auto it = block->find("CPV");
    return it == block->end() ? k_empty : it->second;
  };
  std::stable_sort(packages.begin(), packages.end(),
                   [&cpv_of](const IndexBlock* a, const IndexBlock* b) { return cpv_of(a) < cpv_of(b); });
  for (const auto* package : packages) {
    auto block = *package;
    for (const auto key : k_inherited) {
      const auto in_header = header.find(std::string(key));
      const auto in_block = block.find(std::string(key));
      if (in_header != header.end() && in_block != block.end() && in_block->second == in_header->second) {
        block.erase(in_block);
      }
    }
    for (const auto& [key, value] : k_defaults) {
      const auto it = block.find(std::string(key));
      if (it != block.end() && it->second == value) {
        block.erase(it);
      }
    }
    write_block(out, block);
  }
  return out;
}

Result<> write_packages_files(const std::filesystem::path& dir, const PackagesIndex& index, int64_t timestamp)
{
  const auto text = write_packages_index(index, {timestamp});
  // Packages.gz: the same bytes, gzip header mtime = TIMESTAMP (bintree._pkgindex_write).
  CompressOptions gzip_options;
  gzip_options.level = 9;
  gzip_options.gzip_mtime = static_cast<uint32_t>(timestamp);
  auto gz = compress(Compression::gzip, text, gzip_options);
  if (!gz) {
    return fail(gz.error());
  }
  if (auto written = write_with_times(dir / "Packages.gz", *gz, timestamp); !written) {
    return written;
  }
  return write_with_times(dir / "Packages", text, timestamp);
}

Result<IndexBlock> index_entry_for_gpkg(const std::filesystem::path& path, std::string_view relative_path,
                                        const GpkgReport& report)
{
  if (!report.valid) {
    return fail(ErrorKind::invalid, "{} is not a valid GPKG: {}", path.string(), report.reason);
  }
  const auto& metadata = report.metadata;
  IndexBlock block;
  block["CPV"] = metadata.at("CATEGORY") + "/" + metadata.at("PF");
  // bintree._pkgindex_keys (the aux-cache keys) as the metadata has them, USE-reduced already.
  static constexpr std::array<std::string_view, 20> k_copied{
    "BDEPEND",  "BUILD_ID", "BUILD_TIME", "CHOST",      "DEFINED_PHASES", "DEPEND",   "EAPI",    "IDEPEND",
    "IUSE",     "KEYWORDS", "LICENSE",    "PDEPEND",    "PROPERTIES",     "PROVIDES", "RDEPEND", "REQUIRES",
    "RESTRICT", "SLOT",     "USE",        "DESCRIPTION"};
  for (const auto key : k_copied) {
    const auto it = metadata.find(std::string(key));
    if (it != metadata.end() && !it->second.empty()) {
      block[std::string(key == "DESCRIPTION" ? "DESC" : key)] = it->second;
    }
  }
  if (auto repo = metadata.find("repository"); repo != metadata.end() && !repo->second.empty()) {
    block["REPO"] = repo->second;
  }
  // SIZE and MTIME are the file's, never the metadata's (SIZE there is the installed size).
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(ErrorKind::io, "cannot stat {}: {}", path.string(), std::strerror(errno));
  }
  block["SIZE"] = std::to_string(st.st_size);
  block["MTIME"] = std::to_string(st.st_mtime);
  block["PATH"] = std::string(relative_path);
  const auto md5 = report.file_digests.find(hash::Algo::md5);
  const auto sha1 = report.file_digests.find(hash::Algo::sha1);
  if (md5 != report.file_digests.end() && sha1 != report.file_digests.end() &&
      report.size == static_cast<uint64_t>(st.st_size)) {
    block["MD5"] = md5->second;
    block["SHA1"] = sha1->second;
  } else {
    auto digests = hash::hash_file(path, {hash::Algo::md5, hash::Algo::sha1});
    if (!digests) {
      return fail(digests.error());
    }
    block["MD5"] = digests->at(hash::Algo::md5);
    block["SHA1"] = digests->at(hash::Algo::sha1);
  }
  block.try_emplace("EAPI", std::string("0"));
  return block;
}

} // namespace swarm::portage
