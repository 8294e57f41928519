#include "portage/gpkg.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include <stdlib.h>
#include <sys/stat.h>

#include "core/byte_stream.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "portage/xpak.hpp"

namespace swarm::portage {

namespace {

constexpr std::string_view k_marker = "gpkg-1";
constexpr size_t k_manifest_limit = 16u << 20;
constexpr size_t k_metadata_value_limit = 1u << 20;  // one text value of metadata.tar, in memory
constexpr size_t k_metadata_memory_limit = 8u << 20; // every text value together
constexpr size_t k_sniff_bytes = 100;                // portage binpkg.get_binpkg_format reads this much
constexpr std::string_view k_signature_begin = "-----BEGIN PGP SIGNATURE-----";
constexpr std::string_view k_signed_begin = "-----BEGIN PGP SIGNED MESSAGE-----";

// Manifest hash names swarm can check. Portage knows a few more (SHA3_*, STREEBOG*, …); those are
// skipped like any hash Portage itself does not support, and at least one of ours must be present.
std::optional<hash::Algo> manifest_algo(std::string_view name)
{
  if (name == "BLAKE2B") {
    return hash::Algo::blake2b;
  }
  if (name == "SHA512") {
    return hash::Algo::sha512;
  }
  if (name == "SHA256") {
    return hash::Algo::sha256;
  }
  if (name == "SHA1") {
    return hash::Algo::sha1;
  }
  if (name == "MD5") {
    return hash::Algo::md5;
  }
  return std::nullopt;
}

std::string basename_of(std::string_view name)
{
  const auto slash = name.rfind('/');
  return std::string(slash == std::string_view::npos ? name : name.substr(slash + 1));
}

std::string lower(std::string_view text)
{
  std::string out(text);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// A metadata member Portage reads as text (not environment.bz2, not the saved ebuild).
bool is_text_metadata(std::string_view key)
{
  return !key.ends_with(".bz2") && !key.ends_with(".ebuild");
}

GpkgReport invalid(GpkgReport report, std::string reason)
{
  report.valid = false;
  report.reason = std::move(reason);
  return report;
}

// A member name must be "<dir>/<file>": exactly one level deep, relative, no "." or ".." parts.
std::optional<std::string> check_member_name(std::string_view name)
{
  const auto parts = strings::split(name, '/');
  if (std::find(parts.begin(), parts.end(), "..") != parts.end()) {
    return fmt::format("member '{}' escapes the package directory ('..')", name);
  }
  if (name.starts_with('/')) {
    return fmt::format("member '{}' has an absolute path", name);
  }
  if (parts.size() != 2) {
    return fmt::format("member '{}' is not exactly one level deep in the package directory", name);
  }
  if (parts[0].empty() || parts[1].empty() || parts[0] == "." || parts[1] == ".") {
    return fmt::format("member '{}' has an empty or '.' path component", name);
  }
  return std::nullopt;
}

// Reads one member of the outer tar whole (small members only: Manifest).
Result<std::string> read_member(const stream::File& file, const GpkgMember& member, size_t limit)
{
  if (member.size > limit) {
    return fail(ErrorKind::too_large, "member '{}' is {} bytes, more than the {} allowed", member.name, member.size,
                limit);
  }
  std::string out(static_cast<size_t>(member.size), '\0');
  if (auto read = file.read_at(member.data_offset, out.data(), out.size()); !read) {
    return fail(read.error());
  }
  return out;
}

// A hasher over one member's byte range, fed during the single pass over the file.
struct RangeHash {
  size_t member_index;
  uint64_t begin;
  uint64_t end;
  hash::MultiHasher hasher;
};

// Reads the file once from start to end: the whole-file digests and every member's digests.
Result<hash::Digests> stream_hashes(const stream::File& file, uint64_t size, const std::vector<hash::Algo>& file_algos,
                                    std::vector<RangeHash>& ranges)
{
  hash::MultiHasher whole(file_algos);
  std::vector<char> buffer(1 << 20);
  uint64_t offset = 0;
  while (offset < size) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(buffer.size(), size - offset));
    if (auto read = file.read_at(offset, buffer.data(), n); !read) {
      return fail(read.error());
    }
    whole.update(buffer.data(), n);
    const auto chunk_end = offset + n;
    for (auto& range : ranges) {
      const auto from = std::max(range.begin, offset);
      const auto to = std::min(range.end, chunk_end);
      if (from < to) {
        range.hasher.update(buffer.data() + (from - offset), static_cast<size_t>(to - from));
      }
    }
    offset = chunk_end;
  }
  return whole.finish();
}

// Where `gpg --verify` runs: a home directory holding the trusted keys.
class GpgHome {
public:
  ~GpgHome()
  {
    if (!m_scratch.empty()) {
      std::error_code ignored;
      // Importing into a new keyring starts a gpg-agent: end it with its home.
      if (m_home.parent_path() == m_scratch && std::filesystem::exists(m_home / "S.gpg-agent", ignored)) {
        (void)subprocess::run_capture({"gpgconf", "--homedir", m_home.string(), "--kill", "gpg-agent"});
      }
      std::filesystem::remove_all(m_scratch, ignored);
    }
  }
  GpgHome() = default;
  GpgHome(const GpgHome&) = delete;
  GpgHome& operator=(const GpgHome&) = delete;

  // A directory is used as the GnuPG home; a key file is imported into a scratch home.
  Result<> prepare(const std::filesystem::path& keys)
  {
    std::string pattern = (std::filesystem::temp_directory_path() / "swarm-gpg.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return fail(ErrorKind::io, "cannot create a temporary directory: {}", std::strerror(errno));
    }
    m_scratch = pattern;
    std::error_code error;
    if (std::filesystem::is_directory(keys, error)) {
      m_home = keys;
      return {};
    }
    if (!std::filesystem::is_regular_file(keys, error)) {
      return fail(ErrorKind::not_found, "signing key {} not found", keys.string());
    }
    m_home = m_scratch / "home";
    std::filesystem::create_directory(m_home, error);
    ::chmod(m_home.c_str(), 0700);
    auto imported = subprocess::run_capture(
      {"gpg", "--homedir", m_home.string(), "--batch", "--no-tty", "--quiet", "--import", keys.string()});
    if (!imported) {
      return fail(imported.error());
    }
    if (!imported->success()) {
      return fail(ErrorKind::invalid, "gpg could not import {}: {}", keys.string(), strings::trim(imported->output));
    }
    return {};
  }

  const std::filesystem::path& scratch() const { return m_scratch; }

  // `gpg --verify` of a clear-signed file (one argument) or a detached signature and its data.
  Result<std::string> verify(const std::vector<std::string>& files) const
  {
    std::vector<std::string> argv{"gpg",         "--homedir", m_home.string(),
                                  "--batch",     "--no-tty",  "--no-auto-check-trustdb",
                                  "--status-fd", "1",         "--verify"};
    argv.insert(argv.end(), files.begin(), files.end());
    auto outcome = subprocess::run_capture(argv);
    if (!outcome) {
      return fail(outcome.error());
    }
    // Like Portage's _check_gpg_status: exit 0 alone is not enough, gpg must report a good,
    // valid signature.
    const bool good = outcome->output.find("[GNUPG:] GOODSIG ") != std::string::npos &&
                      outcome->output.find("[GNUPG:] VALIDSIG ") != std::string::npos;
    if (!outcome->success() || !good) {
      std::string detail;
      for (const auto& line : strings::split(outcome->output, '\n')) {
        if (line.starts_with("[GNUPG:] ") && !line.starts_with("[GNUPG:] NEWSIG") &&
            !line.starts_with("[GNUPG:] KEY_CONSIDERED")) {
          detail = line.substr(9);
          break;
        }
      }
      return fail(ErrorKind::invalid, "GnuPG verification failed ({})", detail.empty() ? outcome->describe() : detail);
    }
    return std::string("good signature");
  }

private:
  std::filesystem::path m_scratch;
  std::filesystem::path m_home;
};

Result<> copy_member_to(const stream::File& file, const GpkgMember& member, const std::filesystem::path& target)
{
  auto writer = fs::AtomicFileWriter::create(target);
  if (!writer) {
    return fail(writer.error());
  }
  stream::FileRangeSource source(file, member.data_offset, member.size);
  std::vector<char> buffer(1 << 20);
  while (true) {
    auto got = source.read(buffer.data(), buffer.size());
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      break;
    }
    if (auto put = writer->write(std::string_view(buffer.data(), *got)); !put) {
      return put;
    }
  }
  return writer->commit();
}

// Verifies the clear-signed Manifest and each member's detached signature (Portage requires an
// X.sig for every member but gpkg-1 and the signatures themselves).
Result<std::string> verify_signatures(const stream::File& file, const std::vector<GpkgMember>& members,
                                      const std::string& manifest, const std::filesystem::path& keys)
{
  GpgHome home;
  if (auto prepared = home.prepare(keys); !prepared) {
    return fail(prepared.error());
  }
  const auto manifest_path = home.scratch() / "Manifest";
  if (auto written = fs::write_file_atomic(manifest_path, manifest); !written) {
    return fail(written.error());
  }
  if (auto verified = home.verify({manifest_path.string()}); !verified) {
    return fail(ErrorKind::invalid, "Manifest: {}", verified.error().message);
  }
  std::map<std::string, const GpkgMember*> by_base;
  for (const auto& member : members) {
    by_base[basename_of(member.name)] = &member;
  }
  for (const auto& [base, member] : by_base) {
    if (base == k_marker || base == "Manifest" || base.ends_with(".sig")) {
      continue;
    }
    auto sig = by_base.find(base + ".sig");
    if (sig == by_base.end()) {
      return fail(ErrorKind::invalid, "{} has no signature ({}.sig missing)", base, base);
    }
    const auto data_path = home.scratch() / base;
    const auto sig_path = home.scratch() / (base + ".sig");
    if (auto copied = copy_member_to(file, *member, data_path); !copied) {
      return fail(copied.error());
    }
    if (auto copied = copy_member_to(file, *sig->second, sig_path); !copied) {
      return fail(copied.error());
    }
    if (auto verified = home.verify({sig_path.string(), data_path.string()}); !verified) {
      return fail(ErrorKind::invalid, "{}: {}", base, verified.error().message);
    }
    std::error_code ignored;
    std::filesystem::remove(data_path, ignored);
  }
  return std::string("Manifest and every member signature verified");
}

// Fills report.metadata from metadata.tar* (decompressed in a stream from the file): text
// values are read into memory (bounded), the others (environment.bz2, the ebuild) streamed past.
Result<> read_gpkg_metadata(const stream::File& file, const GpkgMember& member, Compression compression,
                            const GpkgOptions& options, GpkgReport& report)
{
  stream::FileRangeSource raw(file, member.data_offset, member.size);
  auto decompressor = make_decompressor(compression, raw);
  if (!decompressor) {
    return fail(decompressor.error());
  }
  const auto base = basename_of(member.name);
  BoundedSource bounded(**decompressor, options.max_metadata_bytes, base);
  TarReader reader(bounded);
  size_t held = 0;
  while (true) {
    auto next = reader.next();
    if (!next) {
      return fail(ErrorKind::invalid, "cannot read {}: {}", base, next.error().message);
    }
    if (!*next) {
      return {};
    }
    const auto& entry = **next;
    const auto& name = entry.name;
    if (entry.type == TarEntryType::directory && (name == "metadata/" || name == "metadata")) {
      continue;
    }
    if (!name.starts_with("metadata/") || entry.type != TarEntryType::regular) {
      return fail(ErrorKind::invalid, "{} holds '{}', outside metadata/ or not a regular file", base, name);
    }
    const auto key = name.substr(std::string_view("metadata/").size());
    if (key.empty() || key.find('/') != std::string::npos) {
      return fail(ErrorKind::invalid, "{} holds an unexpected path '{}'", base, name);
    }
    if (!is_text_metadata(key)) {
      continue; // skipped, still decompressed (and counted) on the way
    }
    const size_t limit = std::min(k_metadata_value_limit, k_metadata_memory_limit - held);
    if (entry.size > limit) {
      return fail(ErrorKind::invalid, "{}: metadata value {} of {} bytes is larger than the limit of {} bytes", base,
                  key, entry.size, limit);
    }
    auto content = reader.read_data(limit);
    if (!content) {
      return fail(ErrorKind::invalid, "cannot read {}: {}", base, content.error().message);
    }
    held += content->size();
    report.metadata[key] = normalize_metadata_value(*content);
  }
}

// Lexically resolves `target` against the directory `from` (both below image/): false when it
// climbs above image/.
bool stays_in_image(std::string_view from_dir, std::string_view target)
{
  std::vector<std::string_view> stack;
  for (const auto& part : strings::split(from_dir, '/')) {
    if (!part.empty() && part != ".") {
      stack.push_back(part);
    }
  }
  for (const auto& part : strings::split(target, '/')) {
    if (part.empty() || part == ".") {
      continue;
    }
    if (part == "..") {
      // stack[0] is "image": climbing above it leaves the image.
      if (stack.size() <= 1) {
        return false;
      }
      stack.pop_back();
    } else {
      stack.push_back(part);
    }
  }
  return true;
}

// Why `path` is not a path below image/ (or image/ itself), or nullopt.
std::optional<std::string> image_path_problem(std::string_view what, std::string_view path)
{
  if (path.empty() || path.find('\0') != std::string_view::npos) {
    return fmt::format("{} has an empty or malformed path", what);
  }
  if (path.starts_with('/')) {
    return fmt::format("{} '{}' has an absolute path", what, path);
  }
  const auto parts = strings::split(path, '/');
  if (std::find(parts.begin(), parts.end(), "..") != parts.end()) {
    return fmt::format("{} '{}' has a '..' component", what, path);
  }
  size_t first = 0;
  while (first < parts.size() && parts[first] == ".") {
    ++first;
  }
  if (first == parts.size() || parts[first] != "image") {
    return fmt::format("{} '{}' is not below image/", what, path);
  }
  return std::nullopt;
}

// Streams through image.tar*: every member must pass unsafe_image_member, within the limits.
Result<> check_gpkg_image(const stream::File& file, const GpkgMember& member, Compression compression,
                          const GpkgOptions& options)
{
  stream::FileRangeSource raw(file, member.data_offset, member.size);
  auto decompressor = make_decompressor(compression, raw);
  if (!decompressor) {
    return fail(decompressor.error());
  }
  const auto base = basename_of(member.name);
  BoundedSource bounded(**decompressor, options.max_image_bytes, base);
  TarReader reader(bounded);
  uint64_t count = 0;
  while (true) {
    auto next = reader.next();
    if (!next && count == 0 && reader.offset() == k_tar_block &&
        next.error().message.find("zero block") != std::string::npos) {
      return {}; // an empty archive, as Python's tarfile writes one (no image/ entry at all)
    }
    if (!next) {
      return fail(ErrorKind::invalid, "cannot read {}: {}", base, next.error().message);
    }
    if (!*next) {
      return {};
    }
    if (++count > options.max_image_members) {
      return fail(ErrorKind::invalid, "{} has more than {} members", base, options.max_image_members);
    }
    if (auto problem = unsafe_image_member(**next)) {
      return fail(ErrorKind::invalid, "{}: {}", base, *problem);
    }
  }
}

std::unexpected<Error> io_error(const std::filesystem::path& path, const Error& error)
{
  return fail(ErrorKind::io, "{}: {}", path.string(), error.message);
}

} // namespace

std::optional<std::string> unsafe_image_member(const TarMember& member)
{
  std::string_view name = member.name;
  while (name.size() > 1 && name.back() == '/') {
    name.remove_suffix(1);
  }
  if (auto problem = image_path_problem("image member", name)) {
    return problem;
  }
  switch (member.type) {
  case TarEntryType::regular:
  case TarEntryType::directory:
    return std::nullopt;
  case TarEntryType::hardlink:
    if (auto problem = image_path_problem(fmt::format("the target of hard link '{}'", name), member.linkname)) {
      return problem;
    }
    return std::nullopt;
  case TarEntryType::symlink: {
    if (member.linkname.empty()) {
      return fmt::format("symlink '{}' has no target", name);
    }
    if (member.linkname.starts_with('/')) {
      return std::nullopt; // resolved in the root it is installed to, like any package's
    }
    const size_t slash = name.rfind('/');
    const auto dir = slash == std::string_view::npos ? std::string_view() : name.substr(0, slash);
    if (!stays_in_image(dir, member.linkname)) {
      return fmt::format("symlink '{}' -> '{}' points outside the image", name, member.linkname);
    }
    return std::nullopt;
  }
  case TarEntryType::char_device:
  case TarEntryType::block_device:
  case TarEntryType::fifo:
  case TarEntryType::other:
    break;
  }
  return fmt::format("image member '{}' is a {}, which a package may not install", name,
                     tar_entry_type_name(member.type));
}

std::string_view binpkg_format_name(BinpkgFormat format)
{
  switch (format) {
  case BinpkgFormat::gpkg:
    return "gpkg";
  case BinpkgFormat::xpak:
    return "xpak";
  case BinpkgFormat::unknown:
    break;
  }
  return "unknown";
}

std::string_view signature_status_name(SignatureStatus status)
{
  switch (status) {
  case SignatureStatus::unsigned_package:
    return "unsigned";
  case SignatureStatus::not_verified:
    return "signed, not verified";
  case SignatureStatus::verified:
    return "signed, verified";
  case SignatureStatus::bad:
    return "bad signature";
  }
  return "?";
}

std::string normalize_metadata_value(std::string_view value)
{
  return strings::join(strings::split_any(value, " \t\n\r\f\v"), " ");
}

std::optional<std::string> clearsigned_plaintext(std::string_view text)
{
  if (!text.starts_with(k_signed_begin)) {
    return std::nullopt;
  }
  const auto lines = strings::split(text, '\n');
  size_t i = 1;
  // Armor headers ("Hash: SHA512") up to the first empty line.
  while (i < lines.size() && !strings::trim(lines[i]).empty()) {
    ++i;
  }
  if (i == lines.size()) {
    return std::nullopt;
  }
  ++i;
  std::string out;
  bool ended = false;
  for (; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.ends_with('\r')) {
      line.remove_suffix(1);
    }
    if (line == k_signature_begin) {
      ended = true;
      break;
    }
    if (line.starts_with("- ")) {
      line.remove_prefix(2);
    }
    out.append(line);
    out.push_back('\n');
  }
  if (!ended) {
    return std::nullopt;
  }
  return out;
}

Result<std::map<std::string, ManifestEntry>> parse_gpkg_manifest(std::string_view text)
{
  std::map<std::string, ManifestEntry> out;
  for (const auto& raw : strings::split(text, '\n')) {
    const auto tokens = strings::split_any(raw, " \t\r");
    if (tokens.empty()) {
      continue;
    }
    // gpkg._load_manifest: every line is a DATA line with an integer size, no name twice.
    if (tokens[0] != "DATA") {
      return fail(ErrorKind::invalid, "Manifest line is not a DATA line: '{}'", strings::trim(raw));
    }
    if (tokens.size() < 3 || (tokens.size() - 3) % 2 != 0) {
      return fail(ErrorKind::invalid, "malformed Manifest line: '{}'", strings::trim(raw));
    }
    auto size = strings::parse_uint(tokens[2]);
    if (!size) {
      return fail(ErrorKind::invalid, "Manifest size of {} is not an integer: '{}'", tokens[1], tokens[2]);
    }
    if (out.contains(tokens[1])) {
      return fail(ErrorKind::invalid, "Manifest lists {} twice", tokens[1]);
    }
    ManifestEntry entry;
    entry.size = *size;
    for (size_t i = 3; i + 1 < tokens.size(); i += 2) {
      entry.hashes[tokens[i]] = tokens[i + 1];
    }
    out[tokens[1]] = std::move(entry);
  }
  return out;
}

Result<GpkgReport> validate_gpkg(const std::filesystem::path& path, const GpkgOptions& options)
{
  auto opened = stream::File::open_read(path);
  if (!opened) {
    return fail(opened.error());
  }
  const auto& file = *opened;
  auto file_size = file.size();
  if (!file_size) {
    return io_error(path, file_size.error());
  }
  GpkgReport report;
  report.size = *file_size;

  auto file_algos = options.file_digests;
  file_algos.push_back(hash::Algo::sha256);
  std::vector<RangeHash> ranges;
  // Every outcome reports the file's size and digests: hash it (and the members that need it).
  auto finish = [&](GpkgReport done) -> Result<GpkgReport> {
    auto digests = stream_hashes(file, report.size, file_algos, ranges);
    if (!digests) {
      return io_error(path, digests.error());
    }
    done.file_digests = std::move(*digests);
    done.sha256 = done.file_digests.at(hash::Algo::sha256);
    return done;
  };

  // Format sniffing as portage binpkg.get_binpkg_format: "/gpkg-1\0" in the first 100 bytes,
  // else an XPAK trailer, else (Portage's fallback) a tar with a gpkg-1 member somewhere.
  std::string head(static_cast<size_t>(std::min<uint64_t>(report.size, k_tar_block)), '\0');
  if (auto read = file.read_at(0, head.data(), head.size()); !read) {
    return io_error(path, read.error());
  }
  const bool marker_first =
    std::string_view(head).substr(0, k_sniff_bytes).find(std::string_view("/gpkg-1\0", 8)) != std::string_view::npos;
  if (!marker_first && report.size >= 16) {
    std::string tail(16, '\0');
    if (auto read = file.read_at(report.size - 16, tail.data(), tail.size()); !read) {
      return io_error(path, read.error());
    }
    if (has_xpak_trailer(tail)) {
      report.format = BinpkgFormat::xpak;
      auto xpak = read_xpak(file);
      if (!xpak) {
        return finish(
          invalid(report, fmt::format("not a GPKG (old xpak format, unreadable: {})", xpak.error().message)));
      }
      for (const auto& [key, value] : xpak->metadata) {
        if (is_text_metadata(key)) {
          report.metadata[key] = normalize_metadata_value(value);
        }
      }
      return finish(invalid(report, "not a GPKG (old xpak format)"));
    }
  }
  if (report.size < k_tar_block) {
    return finish(invalid(report, fmt::format("not a GPKG: {} bytes is too small for a tar archive", report.size)));
  }

  auto listing = list_tar_file(file);
  if (!listing) {
    if (marker_first) {
      report.format = BinpkgFormat::gpkg;
      return finish(invalid(report, fmt::format("corrupt GPKG: {}", listing.error().message)));
    }
    return finish(invalid(report, fmt::format("not a GPKG (unsupported format): {}", listing.error().message)));
  }
  report.tar_format = listing->format;
  for (const auto& member : listing->members) {
    report.members.push_back({member.name, member.size, member.data_offset});
  }
  const bool has_marker = std::any_of(listing->members.begin(), listing->members.end(),
                                      [](const TarMember& m) { return basename_of(m.name) == k_marker; });
  if (!has_marker) {
    return finish(invalid(report, "not a GPKG: tar archive without a gpkg-1 member"));
  }
  report.format = BinpkgFormat::gpkg;
  // 1. The outer tar's magic (gpkg._get_tar_format).
  if (listing->format == TarFormat::unknown) {
    return finish(invalid(report, "unsupported tar format: the first header is neither ustar nor GNU"));
  }
  // Portage decides "this is a GPKG" from the first 100 bytes: a package whose marker is not the
  // first member is not recognised by every code path, so we refuse to publish it.
  if (!marker_first || basename_of(listing->members.front().name) != k_marker) {
    return finish(invalid(report, "gpkg-1 is not the first member (Portage detects a GPKG by its first 100 bytes)"));
  }

  // 2. Structure: one level deep, one directory, no duplicates, regular files only.
  std::set<std::string> seen;
  for (const auto& member : listing->members) {
    if (member.type != TarEntryType::regular) {
      return finish(invalid(report, fmt::format("member '{}' is a {}, only regular files are allowed", member.name,
                                                tar_entry_type_name(member.type))));
    }
    if (auto problem = check_member_name(member.name)) {
      return finish(invalid(report, *problem));
    }
    if (!seen.insert(member.name).second) {
      return finish(invalid(report, fmt::format("member '{}' appears twice", member.name)));
    }
    const auto dir = member.name.substr(0, member.name.find('/'));
    if (report.dir_name.empty()) {
      report.dir_name = dir;
    } else if (dir != report.dir_name) {
      return finish(
        invalid(report, fmt::format("members are in more than one directory ('{}' and '{}')", report.dir_name, dir)));
    }
  }

  // 3. The Manifest.
  const auto manifest_it = std::find_if(report.members.begin(), report.members.end(),
                                        [](const GpkgMember& m) { return basename_of(m.name) == "Manifest"; });
  if (manifest_it == report.members.end()) {
    return finish(invalid(report, "no Manifest member"));
  }
  auto manifest_text = read_member(file, *manifest_it, k_manifest_limit);
  if (!manifest_text) {
    if (manifest_text.error().kind == ErrorKind::too_large) {
      return finish(invalid(report, manifest_text.error().message));
    }
    return io_error(path, manifest_text.error());
  }

  // 4. Signatures: any .sig member or a signature block in the Manifest.
  const bool has_sig_member = std::any_of(report.members.begin(), report.members.end(),
                                          [](const GpkgMember& m) { return m.name.ends_with(".sig"); });
  const bool manifest_signed = manifest_text->find(k_signature_begin) != std::string::npos;
  report.is_signed = has_sig_member || manifest_signed;
  std::string manifest_body = *manifest_text;
  if (manifest_signed) {
    auto plain = clearsigned_plaintext(*manifest_text);
    if (!plain) {
      return finish(invalid(report, "Manifest holds a signature but is not a clear-signed message"));
    }
    manifest_body = std::move(*plain);
  } else if (report.is_signed) {
    // Portage verifies the Manifest whenever a signature exists; an unsigned one then fails.
    return finish(invalid(report, "package has .sig members but its Manifest is not signed"));
  }
  if (!options.verify_signature_with.empty()) {
    if (!report.is_signed) {
      return finish(invalid(report, "package is not signed, and a signing key is configured"));
    }
    auto verified = verify_signatures(file, report.members, *manifest_text, options.verify_signature_with);
    if (!verified) {
      if (verified.error().kind == ErrorKind::invalid) {
        report.signature = SignatureStatus::bad;
        report.signature_detail = verified.error().message;
        return finish(invalid(report, verified.error().message));
      }
      return fail(ErrorKind::io, "cannot verify signatures of {}: {}", path.string(), verified.error().message);
    }
    report.signature = SignatureStatus::verified;
    report.signature_detail = *verified;
  } else if (report.is_signed) {
    report.signature = SignatureStatus::not_verified;
  }

  auto manifest = parse_gpkg_manifest(manifest_body);
  if (!manifest) {
    return finish(invalid(report, manifest.error().message));
  }

  // 5. Each member has a record with its size and a hash we can check …
  for (size_t i = 0; i < report.members.size(); ++i) {
    const auto& member = report.members[i];
    const auto base = basename_of(member.name);
    if (base == "Manifest") {
      continue;
    }
    auto record = manifest->find(base);
    if (record == manifest->end()) {
      return finish(invalid(report, fmt::format("{} is not listed in the Manifest", base)));
    }
    if (record->second.size != member.size) {
      return finish(
        invalid(report, fmt::format("{} is {} bytes, the Manifest says {}", base, member.size, record->second.size)));
    }
    std::vector<hash::Algo> algos;
    for (const auto& [name, value] : record->second.hashes) {
      if (auto algo = manifest_algo(name)) {
        algos.push_back(*algo);
      }
    }
    if (algos.empty()) {
      return finish(invalid(report, fmt::format("the Manifest line of {} has no hash swarm supports", base)));
    }
    ranges.push_back({i, member.data_offset, member.data_offset + member.size, hash::MultiHasher(algos)});
  }
  // 6. … and every record has a member.
  for (const auto& [name, entry] : *manifest) {
    const bool present = std::any_of(report.members.begin(), report.members.end(),
                                     [&name](const GpkgMember& m) { return basename_of(m.name) == name; });
    if (!present || name == "Manifest") {
      return finish(invalid(report, fmt::format("the Manifest lists {}, which the package does not contain", name)));
    }
  }

  // One pass over the file: its own digests and every member's.
  auto digests = stream_hashes(file, report.size, file_algos, ranges);
  if (!digests) {
    return io_error(path, digests.error());
  }
  report.file_digests = std::move(*digests);
  report.sha256 = report.file_digests.at(hash::Algo::sha256);
  for (auto& range : ranges) {
    const auto base = basename_of(report.members[range.member_index].name);
    const auto computed = range.hasher.finish();
    for (const auto& [name, expected] : manifest->at(base).hashes) {
      auto algo = manifest_algo(name);
      if (algo && computed.at(*algo) != lower(expected)) {
        return invalid(report, fmt::format("{} {} checksum does not match the Manifest", base, name));
      }
    }
  }
  ranges.clear();

  // The inner archives: metadata.tar${comp} is read, image.tar${comp} is streamed through and
  // every member checked (unsafe_image_member), both within GpkgOptions' limits.
  const GpkgMember* metadata_member = nullptr;
  const GpkgMember* image_member = nullptr;
  for (const auto& member : report.members) {
    const auto base = basename_of(member.name);
    if (base.ends_with(".sig")) {
      continue;
    }
    for (auto [prefix, slot] : {std::pair{"metadata.tar", &metadata_member}, std::pair{"image.tar", &image_member}}) {
      if (base.starts_with(prefix)) {
        if (*slot != nullptr) {
          return invalid(report, fmt::format("more than one {}* member", prefix));
        }
        *slot = &member;
      }
    }
  }
  if (metadata_member == nullptr) {
    return invalid(report, "no metadata.tar* member");
  }
  if (image_member == nullptr) {
    return invalid(report, "no image.tar* member");
  }
  for (auto [member, target] :
       {std::pair{metadata_member, &report.metadata_compression}, std::pair{image_member, &report.image_compression}}) {
    auto compression = compression_from_tar_name(member->name);
    if (!compression) {
      return invalid(report, compression.error().message);
    }
    if (!compression_supported(*compression)) {
      return invalid(report, fmt::format("{}: unsupported compression {}", basename_of(member->name),
                                         compression_name(*compression)));
    }
    *target = *compression;
  }
  if (auto read = read_gpkg_metadata(file, *metadata_member, report.metadata_compression, options, report); !read) {
    report.metadata.clear();
    return invalid(report, read.error().message);
  }
  if (auto checked = check_gpkg_image(file, *image_member, report.image_compression, options); !checked) {
    return invalid(report, checked.error().message);
  }
  // bintree treats a package without CATEGORY, PF or SLOT as invalid.
  for (const char* key : {"CATEGORY", "PF", "SLOT"}) {
    auto it = report.metadata.find(key);
    if (it == report.metadata.end() || it->second.empty()) {
      return invalid(report, fmt::format("metadata has no {}", key));
    }
  }
  if (options.expect_cpv) {
    const auto& category = report.metadata.at("CATEGORY");
    const auto& pf = report.metadata.at("PF");
    const auto cpv = category + "/" + pf;
    if (cpv != *options.expect_cpv) {
      // Name only what differs: "metadata names evil-9.9, expected app-misc/hello-1.2.3-r1".
      const bool same_category = options.expect_cpv->starts_with(category + "/");
      return invalid(report,
                     fmt::format("metadata names {}, expected {}", same_category ? pf : cpv, *options.expect_cpv));
    }
  }
  report.valid = true;
  return report;
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

// Whether Python's tarfile in USTAR_FORMAT could store the entry (else Portage switches to GNU).
bool fits_ustar(const std::string& name, const std::string& link, uint64_t size)
{
  if (link.size() > 100 || size >= (uint64_t{1} << 33)) {
    return false;
  }
  if (name.size() <= 100) {
    return true;
  }
  for (size_t slash = 0; slash < name.size(); ++slash) {
    if (name[slash] == '/' && slash <= 155 && name.size() - slash - 1 <= 100) {
      return true;
    }
  }
  return false;
}

struct ImageNode {
  std::map<std::string, ImageNode> children;
  const ImageFile* file = nullptr;
};

// tarfile.add(root, "image") recurses into sorted(os.listdir()) depth first.
void collect_image(const ImageNode& node, const std::string& path,
                   std::vector<std::pair<std::string, const ImageFile*>>& out)
{
  for (const auto& [name, child] : node.children) {
    const auto child_path = path + "/" + name;
    out.emplace_back(child_path, child.file);
    if (child.file == nullptr) {
      collect_image(child, child_path, out);
    }
  }
}

Result<std::string> build_tar(const std::vector<std::pair<TarWriteEntry, std::string_view>>& entries,
                              Compression compression)
{
  bool ustar = true;
  for (const auto& [entry, content] : entries) {
    ustar = ustar && fits_ustar(entry.name, entry.linkname, content.size());
  }
  stream::StringSink compressed;
  auto sink = make_compressor(compression, compressed);
  if (!sink) {
    return fail(sink.error());
  }
  TarWriter writer(**sink, ustar ? TarDialect::ustar : TarDialect::gnu);
  for (const auto& [entry, content] : entries) {
    if (auto added = writer.add(entry, content); !added) {
      return fail(added.error());
    }
  }
  if (auto done = writer.finish(); !done) {
    return fail(done.error());
  }
  if (auto done = (*sink)->finish(); !done) {
    return fail(done.error());
  }
  return std::move(compressed.data());
}

class AtomicSink : public stream::ByteSink {
public:
  explicit AtomicSink(fs::AtomicFileWriter& writer) : m_writer(writer) {}
  Result<> write(const char* data, size_t size) override { return m_writer.write(std::string_view(data, size)); }
  using ByteSink::write;

private:
  fs::AtomicFileWriter& m_writer;
};

} // namespace

Result<> write_gpkg(const std::filesystem::path& path, const GpkgContent& content)
{
  if (content.dir_name.empty() || content.dir_name.find('/') != std::string::npos || content.dir_name == "." ||
      content.dir_name == "..") {
    return fail(ErrorKind::invalid, "bad GPKG directory name '{}'", content.dir_name);
  }
  if (!compression_supported(content.compression)) {
    return fail(ErrorKind::invalid, "cannot write {} compression", compression_name(content.compression));
  }
  const auto mtime =
    content.mtime != 0
      ? content.mtime
      : std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();

  // metadata.tar: metadata/KEY files, no directory entry, uid/gid 0, no owner names.
  std::vector<std::string> values;
  values.reserve(content.metadata.size());
  for (const auto& [key, value] : content.metadata) {
    if (key.empty() || key.find('/') != std::string::npos) {
      return fail(ErrorKind::invalid, "bad metadata key '{}'", key);
    }
    auto text = value;
    if (key == "BUILD_ID") {
      while (!text.empty() && text.back() == '\n') {
        text.pop_back();
      }
    } else if (key.find('.') == std::string::npos && !text.ends_with('\n')) {
      text.push_back('\n');
    }
    values.push_back(std::move(text));
  }
  std::vector<std::pair<TarWriteEntry, std::string_view>> metadata_entries;
  size_t index = 0;
  for (const auto& [key, value] : content.metadata) {
    TarWriteEntry entry;
    entry.name = "metadata/" + key;
    entry.mode = 0644;
    entry.mtime = mtime;
    metadata_entries.emplace_back(entry, values[index++]);
  }

  // image.tar: image/ and every directory and file below, owner root.
  ImageNode root;
  for (const auto& [file_path, file] : content.image) {
    const auto parts = strings::split_any(file_path, "/");
    if (parts.empty() || std::find(parts.begin(), parts.end(), "..") != parts.end()) {
      return fail(ErrorKind::invalid, "bad image path '{}'", file_path);
    }
    ImageNode* node = &root;
    for (const auto& part : parts) {
      node = &node->children[part];
    }
    node->file = &file;
  }
  std::vector<std::pair<std::string, const ImageFile*>> image_paths{{"image", nullptr}};
  collect_image(root, "image", image_paths);
  std::vector<std::pair<TarWriteEntry, std::string_view>> image_entries;
  for (const auto& [entry_path, file] : image_paths) {
    TarWriteEntry entry;
    entry.name = entry_path;
    entry.uname = "root";
    entry.gname = "root";
    entry.mtime = mtime;
    std::string_view data;
    if (file == nullptr) {
      entry.type = TarEntryType::directory;
      entry.mode = 0755;
    } else {
      entry.type = file->type;
      entry.mode = file->mode;
      entry.linkname = file->link_target;
      if (file->type == TarEntryType::regular) {
        data = file->content;
      }
    }
    image_entries.emplace_back(entry, data);
  }

  auto metadata_tar = build_tar(metadata_entries, content.compression);
  if (!metadata_tar) {
    return fail(metadata_tar.error());
  }
  auto image_tar = build_tar(image_entries, content.compression);
  if (!image_tar) {
    return fail(image_tar.error());
  }
  const auto suffix = std::string(compression_suffix(content.compression));
  const std::vector<std::pair<std::string, std::string_view>> members{
    {std::string(k_marker), std::string_view()},
    {"metadata.tar" + suffix, *metadata_tar},
    {"image.tar" + suffix, *image_tar},
  };
  std::string manifest;
  for (const auto& [name, data] : members) {
    const auto digests = hash::hash_bytes(data, {hash::Algo::blake2b, hash::Algo::sha512});
    manifest += fmt::format("DATA {} {} BLAKE2B {} SHA512 {}\n", name, data.size(), digests.at(hash::Algo::blake2b),
                            digests.at(hash::Algo::sha512));
  }

  auto writer = fs::AtomicFileWriter::create(path);
  if (!writer) {
    return fail(writer.error());
  }
  AtomicSink sink(*writer);
  bool ustar = true;
  for (const auto& [name, data] : members) {
    ustar = ustar && fits_ustar(content.dir_name + "/" + name, "", data.size());
  }
  // Outer members: mode 0644, uid/gid 0, empty owner names, mtime now (gpkg.py).
  TarWriter outer(sink, ustar ? TarDialect::ustar : TarDialect::gnu);
  auto add = [&](const std::string& name, std::string_view data) -> Result<> {
    TarWriteEntry entry;
    entry.name = content.dir_name + "/" + name;
    entry.mode = 0644;
    entry.mtime = mtime;
    return outer.add(entry, data);
  };
  for (const auto& [name, data] : members) {
    if (auto added = add(name, data); !added) {
      return added;
    }
  }
  if (auto added = add("Manifest", manifest); !added) {
    return added;
  }
  if (auto done = outer.finish(); !done) {
    return done;
  }
  return writer->commit();
}

} // namespace swarm::portage
