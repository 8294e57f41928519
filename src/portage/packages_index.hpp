#pragma once
// The binhost `Packages` index (portage getbinpkg.PackageIndex + bintree): read and write it
// exactly as Portage does, and build an entry for a validated GPKG.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::portage {

struct GpkgReport; // gpkg.hpp

// One block of `KEY: value` lines, keyed by the file's key names (CPV, PATH, SIZE, DESC, MTIME,
// REPO, …).
using IndexBlock = std::map<std::string, std::string>;

struct PackagesIndex {
  IndexBlock header;
  std::vector<IndexBlock> packages;
};

// Parses a Packages file as Portage does: one char dropped after ':', a blank line ends a block,
// blocks without CPV ignored, last duplicate wins, header VERSION must be an int <= 0. Inherited
// (CHOST, REPO from the header) and default values (EAPI 0, SLOT 0) are filled back in.
Result<PackagesIndex> read_packages_index(std::string_view text);

struct WriteOptions {
  int64_t timestamp = 0; // header TIMESTAMP
};

// Serialises as Portage's PackageIndex.write: TIMESTAMP/PACKAGES set, header keys sorted, packages
// sorted by CPV string, inherited/default/empty values omitted, keys in Portage's internal order.
std::string write_packages_index(const PackagesIndex& index, const WriteOptions& options);

// Writes DIR/Packages and DIR/Packages.gz (same bytes, gzip mtime = timestamp) atomically
// (temp file, fsync, rename), both with atime = mtime = timestamp.
Result<> write_packages_files(const std::filesystem::path& dir, const PackagesIndex& index, int64_t timestamp);

// The index block for a validated GPKG: metadata keys (CPV = CATEGORY/PF, DESC, REPO, …) plus
// MD5, SHA1, SIZE and MTIME of the file and `relative_path` as PATH.
Result<IndexBlock> index_entry_for_gpkg(const std::filesystem::path& path, std::string_view relative_path,
                                        const GpkgReport& report);

} // namespace swarm::portage
