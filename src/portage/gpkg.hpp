#pragma once
// GPKG binary packages (GLEP 78 as Portage implements it): validation in the order of Portage's
// gpkg._verify_binpkg, streaming (a package of any size is read once, in chunks), and a writer
// producing Portage's exact layout for our test builder and demo.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "portage/compression.hpp"
#include "portage/tar.hpp"

namespace swarm::portage {

enum class BinpkgFormat { gpkg, xpak, unknown };
std::string_view binpkg_format_name(BinpkgFormat format); // "gpkg", "xpak", "unknown"

enum class SignatureStatus {
  unsigned_package, // no .sig member and no clear-signed Manifest
  not_verified,     // signed, but no key was configured to check it
  verified,         // gpg accepted the Manifest and every detached signature
  bad,              // gpg rejected a signature (the package is then invalid)
};
std::string_view signature_status_name(SignatureStatus status); // "unsigned", "signed, not verified", …

struct GpkgOptions {
  // "CAT/PF": the metadata's CATEGORY and PF must say the same (an upload for a lease).
  std::optional<std::string> expect_cpv;
  // A GnuPG home directory, or a public key file (armoured or binary) to import into a temporary
  // one: signatures are then verified with `gpg --verify`. Empty: signatures are not checked.
  std::filesystem::path verify_signature_with;
  // Extra digests of the whole file, computed in the same pass (MD5/SHA1 for the Packages index,
  // XXH3-128 for transport). SHA-256 is always computed.
  std::vector<hash::Algo> file_digests;
  // Limits of what the inner archives decompress to (streamed, never held whole): metadata.tar
  // and image.tar, and the image's member count. The metadata held in memory is smaller still
  // (1 MiB per text value).
  uint64_t max_metadata_bytes = 64ull << 20;
  uint64_t max_image_bytes = 64ull << 30;
  uint64_t max_image_members = 1'000'000;
};

// Why a member of image.tar* must not be installed, or nullopt when it may: a path outside
// image/ (absolute, "..", another top directory), a device node, FIFO or other special file,
// a hard link to anything outside image/, a relative symlink climbing out of image/.
std::optional<std::string> unsafe_image_member(const TarMember& member);

struct GpkgMember {
  std::string name; // full name in the outer tar, "hello-1.2.3-r1-1/image.tar.zst"
  uint64_t size = 0;
  uint64_t data_offset = 0;
};

struct GpkgReport {
  bool valid = false;
  std::string reason; // why not valid; empty when valid
  BinpkgFormat format = BinpkgFormat::unknown;
  std::string dir_name; // the one directory of every member, "PF-BUILD_ID"
  TarFormat tar_format = TarFormat::unknown;
  std::vector<GpkgMember> members; // in archive order
  // Metadata as Portage reads it: every text member of metadata/ (not environment.bz2 nor the
  // ebuild), whitespace-normalised (" ".join(v.split())). For xpak files: the XPAK index.
  std::map<std::string, std::string> metadata;
  bool is_signed = false;
  SignatureStatus signature = SignatureStatus::unsigned_package;
  std::string signature_detail; // what gpg said, when it ran
  Compression metadata_compression = Compression::none;
  Compression image_compression = Compression::none;
  uint64_t size = 0;          // file size in bytes
  std::string sha256;         // of the whole file
  hash::Digests file_digests; // sha256 plus GpkgOptions::file_digests
};

// Judges a binary package file. Errors are only for files that cannot be opened or read; every
// problem with the content is a report with valid = false and a reason. Old xpak packages are
// recognised (format xpak, "not a GPKG (old xpak format)") and their metadata read.
Result<GpkgReport> validate_gpkg(const std::filesystem::path& path, const GpkgOptions& options = {});

// Portage's whitespace normalisation of a metadata value: runs of whitespace become one space,
// leading and trailing whitespace is dropped.
std::string normalize_metadata_value(std::string_view value);

// The parsed DATA lines of a GPKG Manifest: file basename → size and hashes by Manifest name
// ("BLAKE2B", "SHA512", …; order on the line does not matter).
struct ManifestEntry {
  uint64_t size = 0;
  std::map<std::string, std::string> hashes;
};
Result<std::map<std::string, ManifestEntry>> parse_gpkg_manifest(std::string_view text);
// The signed text of a `gpg --clear-sign` message (dash-escaping undone), or nullopt if `text`
// is not clear-signed.
std::optional<std::string> clearsigned_plaintext(std::string_view text);

// One file of a package image.
struct ImageFile {
  std::string content;
  uint32_t mode = 0644;
  TarEntryType type = TarEntryType::regular; // regular or symlink
  std::string link_target;                   // for symlinks
};

struct GpkgContent {
  std::string dir_name;                        // "PF-BUILD_ID", e.g. "hello-1.2.3-r1-1"
  std::map<std::string, std::string> metadata; // KEY → content (see write_gpkg)
  std::map<std::string, ImageFile> image;      // "usr/bin/hello" → file
  Compression compression = Compression::zstd; // Portage's default BINPKG_COMPRESS
  int64_t mtime = 0;                           // of every tar entry; 0: now
};

// Writes a GPKG exactly as Portage lays it out: outer ustar with gpkg-1, metadata.tar${comp},
// image.tar${comp}, Manifest (BLAKE2B + SHA512 DATA lines, gpkg-1 included), padded to 10240.
// Metadata tar: one file per key, no directory entry; text keys (no '.' in the name) get a
// trailing newline, except BUILD_ID which never has one (`echo -n`). Image tar: directory entries
// (image/, image/usr/, …) in sorted depth-first order, owner root. Written to a temporary file
// and renamed into place.
Result<> write_gpkg(const std::filesystem::path& path, const GpkgContent& content);

} // namespace swarm::portage
