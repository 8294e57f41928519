// The fuzz targets (targets.hpp). Each feeds its input to one parser and, where it is cheap,
// checks what the parser promises about its result: round trips through the matching writer,
// offsets inside the input, comparisons that agree with themselves.
#include "targets.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/byte_stream.hpp"
#include "core/error.hpp"
#include "net/protocol.hpp"
#include "portage/atom.hpp"
#include "portage/build_profile.hpp"
#include "portage/compression.hpp"
#include "portage/dep_string.hpp"
#include "portage/emerge_output.hpp"
#include "portage/gpkg.hpp"
#include "portage/md5_cache.hpp"
#include "portage/packages_index.hpp"
#include "portage/plan.hpp"
#include "portage/tar.hpp"
#include "portage/version.hpp"
#include "portage/xpak.hpp"

namespace swarm::fuzz {
namespace {

void fuzz_require(bool condition, std::string_view what)
{
  if (!condition) {
    throw InvariantBroken(std::string(what));
  }
}

std::string_view fuzz_text(const uint8_t* data, size_t size)
{
  return {reinterpret_cast<const char*>(data), size};
}

// The input cut at the first `separator` (the rest empty when there is none).
std::pair<std::string_view, std::string_view> fuzz_split(std::string_view text, char separator)
{
  const auto at = text.find(separator);
  if (at == std::string_view::npos) {
    return {text, {}};
  }
  return {text.substr(0, at), text.substr(at + 1)};
}

int fuzz_sign(int value)
{
  return (value > 0) - (value < 0);
}

// A file holding the input, for the parsers that read files (one per process, rewritten per run).
std::filesystem::path fuzz_input_file(std::string_view content, std::string_view suffix)
{
  static const auto dir = std::filesystem::temp_directory_path();
  auto path = dir / fmt::format("swarm-fuzz-{}{}", ::getpid(), suffix);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  fuzz_require(static_cast<bool>(out), "cannot write the fuzz input file");
  return path;
}

// The input with the header checksum of every non-zero 512-byte block made right, so that mutated
// headers get past the checksum and into the parsing behind it ("" when nothing changed).
std::string fuzz_fix_tar_checksums(std::string_view input)
{
  std::string fixed(input);
  bool changed = false;
  for (size_t block = 0; block + 512 <= fixed.size(); block += 512) {
    char* header = fixed.data() + block;
    if (std::all_of(header, header + 512, [](char ch) { return ch == '\0'; })) {
      continue;
    }
    unsigned sum = 0;
    for (size_t i = 0; i < 512; ++i) {
      sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(header[i]);
    }
    char field[9];
    std::snprintf(field, sizeof field, "%06o", sum & 0777777);
    field[7] = ' ';
    if (std::string_view(header + 148, 8) != std::string_view(field, 8)) {
      std::memcpy(header + 148, field, 8);
      changed = true;
    }
  }
  return changed ? fixed : std::string();
}

// --- tar ------------------------------------------------------------------------------------

void fuzz_tar_round_trip(const std::vector<portage::TarEntry>& entries)
{
  stream::StringSink sink;
  portage::TarWriter writer(sink, portage::TarDialect::gnu);
  std::vector<const portage::TarEntry*> written;
  for (const auto& entry : entries) {
    const auto& member = entry.member;
    if (member.type != portage::TarEntryType::regular && member.type != portage::TarEntryType::directory &&
        member.type != portage::TarEntryType::symlink) {
      continue;
    }
    if (member.name.empty() || member.name.find('\0') != std::string::npos ||
        member.linkname.find('\0') != std::string::npos) {
      continue;
    }
    portage::TarWriteEntry out;
    out.name = member.name;
    out.type = member.type;
    out.mode = member.mode & 07777;
    out.linkname = member.linkname;
    if (!writer.add(out, member.type == portage::TarEntryType::regular ? std::string_view(entry.content) : "")) {
      return; // names the writer cannot express: nothing to compare
    }
    written.push_back(&entry);
  }
  if (written.empty()) {
    return; // an archive of no members is refused by the reader on purpose (a GPKG never is one)
  }
  fuzz_require(static_cast<bool>(writer.finish()), "tar writer: finish failed");
  stream::StringSource source(sink.data());
  auto reread = portage::read_tar_entries(source, sink.data().size());
  fuzz_require(reread.has_value(), "tar: what TarWriter wrote does not read back");
  fuzz_require(reread->size() == written.size(), "tar: member count changed in a round trip");
  for (size_t i = 0; i < written.size(); ++i) {
    const auto& before = *written[i];
    const auto& after = (*reread)[i];
    auto name = before.member.name;
    if (before.member.type == portage::TarEntryType::directory && !name.ends_with('/')) {
      name += '/';
    }
    fuzz_require(after.member.name == name, "tar: member name changed in a round trip");
    fuzz_require(after.member.type == before.member.type, "tar: member type changed in a round trip");
    fuzz_require(after.content == (before.member.type == portage::TarEntryType::regular ? before.content : ""),
                 "tar: member content changed in a round trip");
    if (before.member.type == portage::TarEntryType::symlink) {
      fuzz_require(after.member.linkname == before.member.linkname, "tar: link target changed in a round trip");
    }
  }
}

} // namespace

namespace {

void fuzz_tar_input(std::string_view input)
{
  const size_t size = input.size();
  {
    stream::StringSource source(input);
    portage::TarReader reader(source);
    uint64_t previous_end = 0;
    for (int count = 0; count < 10000; ++count) {
      auto member = reader.next();
      if (!member || !*member) {
        break;
      }
      const auto& m = **member;
      fuzz_require(m.header_offset >= previous_end, "tar: members overlap");
      fuzz_require(m.data_offset > m.header_offset && m.data_offset <= size, "tar: data offset outside the input");
      fuzz_require(m.data_offset % portage::k_tar_block == 0, "tar: data offset not on a block");
      auto content = reader.read_data(size);
      if (!content) {
        break;
      }
      fuzz_require(content->size() == m.size, "tar: data read differs from the member size");
      fuzz_require(m.size <= size && m.data_offset + m.size <= size, "tar: member data reaches past the input");
      previous_end = m.data_offset + m.size;
      fuzz_require(reader.offset() <= size, "tar: reader offset past the input");
    }
  }
  stream::StringSource source(input);
  auto entries = portage::read_tar_entries(source, size);
  if (entries) {
    uint64_t total = 0;
    for (const auto& entry : *entries) {
      fuzz_require(entry.content.size() == entry.member.size, "tar: entry content differs from its size");
      total += entry.content.size();
      (void)portage::unsafe_image_member(entry.member);
    }
    fuzz_require(total <= size, "tar: contents larger than the input");
    fuzz_tar_round_trip(*entries);
  }
}

} // namespace

int fuzz_tar(const uint8_t* data, size_t size)
{
  const auto input = fuzz_text(data, size);
  fuzz_tar_input(input);
  if (const auto fixed = fuzz_fix_tar_checksums(input); !fixed.empty()) {
    fuzz_tar_input(fixed);
  }
  return 0;
}

// --- gpkg -----------------------------------------------------------------------------------

namespace {

void fuzz_gpkg_input(std::string_view input)
{
  const size_t size = input.size();
  const auto path = fuzz_input_file(input, ".gpkg.tar");
  portage::GpkgOptions options;
  options.max_metadata_bytes = 4u << 20;
  options.max_image_bytes = 16u << 20;
  options.max_image_members = 10000;
  options.file_digests = {hash::Algo::md5};
  auto report = portage::validate_gpkg(path, options);
  fuzz_require(report.has_value(), "gpkg: reading a readable file failed");
  fuzz_require(report->size == size, "gpkg: reported size differs from the file's");
  fuzz_require(report->valid == report->reason.empty(), "gpkg: valid and reason disagree");
  for (const auto& member : report->members) {
    fuzz_require(member.data_offset <= size && member.size <= size - member.data_offset,
                 "gpkg: member data reaches past the file");
  }
  if (report->valid) {
    fuzz_require(!report->dir_name.empty(), "gpkg: a valid package without a directory");
    fuzz_require(report->format == portage::BinpkgFormat::gpkg, "gpkg: a valid package not in GPKG format");
  }
  // The Manifest parsers see the input as text too.
  if (auto manifest = portage::parse_gpkg_manifest(input)) {
    (void)manifest->size();
  }
  if (auto plain = portage::clearsigned_plaintext(input)) {
    fuzz_require(plain->size() <= size, "gpkg: clear-signed text longer than the message");
  }
  (void)portage::normalize_metadata_value(input);
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
}

} // namespace

int fuzz_gpkg(const uint8_t* data, size_t size)
{
  const auto input = fuzz_text(data, size);
  fuzz_gpkg_input(input);
  if (const auto fixed = fuzz_fix_tar_checksums(input); !fixed.empty()) {
    fuzz_gpkg_input(fixed);
  }
  return 0;
}

// --- xpak -----------------------------------------------------------------------------------

int fuzz_xpak(const uint8_t* data, size_t size)
{
  const auto input = fuzz_text(data, size);
  if (size >= 16) {
    (void)portage::has_xpak_trailer(input.substr(size - 16));
  }
  // A whole .xpak file (trailer and index), and the segment alone wherever it starts.
  {
    const auto path = fuzz_input_file(input, ".xpak");
    auto package = portage::read_xpak(path);
    if (package) {
      fuzz_require(package->xpak_offset <= size, "xpak: segment offset past the file");
    }
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
  auto segment = input;
  if (const auto at = input.find("XPAKPACK"); at != std::string_view::npos) {
    segment = input.substr(at);
  }
  auto metadata = portage::parse_xpak_segment(segment);
  if (metadata) {
    auto written = portage::write_xpak_segment(*metadata);
    auto reread = portage::parse_xpak_segment(written);
    fuzz_require(reread.has_value(), "xpak: a written segment does not parse");
    fuzz_require(*reread == *metadata, "xpak: metadata changed in a round trip");
  }
  return 0;
}

// --- compression ----------------------------------------------------------------------------

int fuzz_compression(const uint8_t* data, size_t size)
{
  if (size == 0) {
    return 0;
  }
  static constexpr portage::Compression codecs[] = {portage::Compression::none, portage::Compression::gzip,
                                                    portage::Compression::bzip2, portage::Compression::xz,
                                                    portage::Compression::zstd};
  const auto codec = codecs[data[0] % std::size(codecs)];
  const auto input = fuzz_text(data + 1, size - 1);
  (void)portage::sniff_compression(input);
  (void)portage::compression_from_tar_name(input);
  constexpr size_t k_limit = 4u << 20;
  auto plain = portage::decompress(codec, input, k_limit);
  if (plain) {
    fuzz_require(plain->size() <= k_limit, "compression: output past the limit");
  }
  // Whatever comes in survives compression and decompression unchanged (fast levels: the
  // round trip is about framing, not ratio).
  portage::CompressOptions options;
  options.level = 1;
  auto packed = portage::compress(codec, input, options);
  fuzz_require(packed.has_value(), "compression: compressing failed");
  auto unpacked = portage::decompress(codec, *packed, input.size());
  fuzz_require(unpacked.has_value(), "compression: own output does not decompress");
  fuzz_require(*unpacked == input, "compression: round trip changed the data");
  return 0;
}

// --- Packages index -------------------------------------------------------------------------

int fuzz_packages_index(const uint8_t* data, size_t size)
{
  auto index = portage::read_packages_index(fuzz_text(data, size));
  if (!index) {
    return 0;
  }
  // Writing is canonical: what was written reads back and writes out the same bytes.
  const portage::WriteOptions options{.timestamp = 1700000000};
  const auto written = portage::write_packages_index(*index, options);
  auto reread = portage::read_packages_index(written);
  fuzz_require(reread.has_value(), "packages: a written index does not read back");
  fuzz_require(reread->packages.size() == index->packages.size(), "packages: package count changed");
  fuzz_require(portage::write_packages_index(*reread, options) == written, "packages: writing is not stable");
  return 0;
}

// --- emerge output --------------------------------------------------------------------------

int fuzz_emerge_output(const uint8_t* data, size_t size)
{
  const auto input = fuzz_text(data, size);
  (void)portage::displayed_text(fuzz_split(input, '\n').first);
  auto list = portage::parse_emerge_output(input);
  if (!list) {
    return 0;
  }
  for (const auto& entry : list->entries) {
    if (!entry.cpv.empty()) {
      fuzz_require(portage::parse_cpv(entry.cpv).has_value(), "emerge output: an entry's cpv does not parse");
    }
    auto flags = entry.enabled_flags();
    fuzz_require(std::is_sorted(flags.begin(), flags.end()), "emerge output: enabled flags not sorted");
  }
  // What `--json` prints (dump with replacement: the output may hold any bytes).
  (void)portage::merge_list_to_json(*list).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}

// --- md5-cache ------------------------------------------------------------------------------

int fuzz_md5_cache(const uint8_t* data, size_t size)
{
  auto entry = portage::parse_md5_cache(fuzz_text(data, size));
  if (!entry) {
    return 0;
  }
  (void)entry->eapi();
  std::string rewritten;
  bool comparable = true;
  for (const auto& [key, value] : entry->values) {
    fuzz_require(entry->get(key) == value, "md5-cache: get() differs from the stored value");
    fuzz_require(!key.empty() && key.find('=') == std::string::npos && key.find('\n') == std::string::npos,
                 "md5-cache: malformed key");
    comparable = comparable && !value.ends_with('\r');
    rewritten += key + "=" + value + "\n";
  }
  if (comparable) {
    auto reread = portage::parse_md5_cache(rewritten);
    fuzz_require(reread.has_value(), "md5-cache: rewritten entry does not parse");
    fuzz_require(reread->values == entry->values, "md5-cache: values changed in a round trip");
    fuzz_require(reread->eclasses == entry->eclasses, "md5-cache: eclasses changed in a round trip");
  }
  return 0;
}

// --- atom -----------------------------------------------------------------------------------

namespace {

void fuzz_check_atom(const portage::Atom& atom, const portage::AtomOptions& options)
{
  fuzz_require(atom.cp.find('/') != std::string::npos, "atom: cp without a category");
  if (!atom.extended_syntax) {
    fuzz_require(atom.cpv.starts_with(atom.cp), "atom: cpv does not start with cp");
    fuzz_require(atom.version.empty() == atom.op.empty(), "atom: an operator without a version or vice versa");
  }
  (void)atom.use_string();
  (void)atom.category();
  (void)atom.package();
  // A plain versioned atom matches its own version exactly as its operator says.
  if (!atom.extended_syntax && !atom.version.empty() && atom.blocker == portage::BlockerKind::none && !atom.has_use &&
      !atom.slot && !atom.repo && atom.slot_operator.empty()) {
    auto candidate = portage::candidate_from_string(atom.cpv);
    fuzz_require(candidate.has_value(), "atom: its cpv is not a candidate");
    const bool matches = portage::atom_matches(atom, *candidate);
    if (atom.op == "<" || atom.op == ">") {
      fuzz_require(!matches, "atom: a strict comparison matches its own version");
    } else {
      fuzz_require(matches, "atom: an atom does not match its own version");
    }
  }
  // Resolving USE conditionals gives an atom Portage accepts again, with the same package.
  for (const auto& flags : {portage::FlagSet{}, portage::FlagSet{"a", "b", "foo", "test", "x"}}) {
    const auto evaluated = atom.evaluate_conditionals(flags);
    fuzz_require(!evaluated.has_use_conditionals(), "atom: conditionals left after evaluation");
    if (atom.extended_syntax || atom.build_id) {
      continue;
    }
    auto reparsed = portage::parse_atom(evaluated.text, options);
    fuzz_require(reparsed.has_value(), "atom: the evaluated atom does not parse");
    fuzz_require(reparsed->cp == evaluated.cp && reparsed->version == evaluated.version &&
                   reparsed->op == evaluated.op && reparsed->slot == evaluated.slot &&
                   reparsed->sub_slot == evaluated.sub_slot && reparsed->blocker == evaluated.blocker,
                 "atom: the evaluated atom parses differently");
    fuzz_require(reparsed->use_string() == evaluated.use_string(), "atom: USE deps changed in evaluation");
  }
}

} // namespace

int fuzz_atom(const uint8_t* data, size_t size)
{
  if (size == 0) {
    return 0;
  }
  // The first byte picks the options: wildcards, an EAPI, USE flag validation.
  static const char* const eapis[] = {nullptr, "0", "1", "2", "4", "5", "7", "8"};
  portage::AtomOptions options;
  options.allow_wildcard = (data[0] & 1) != 0;
  if (const char* eapi = eapis[(data[0] >> 1) % std::size(eapis)]) {
    options.eapi = eapi;
  }
  if ((data[0] & 0x10) != 0) {
    options.is_valid_flag = [](std::string_view flag) { return !flag.starts_with('x'); };
  }
  const auto text = fuzz_text(data + 1, size - 1);
  auto atom = portage::parse_atom(text, options);
  fuzz_require(portage::is_valid_atom(text, options, portage::Blockers::allow) == atom.has_value(),
               "atom: is_valid_atom disagrees with parse_atom");
  if (atom) {
    fuzz_check_atom(*atom, options);
  }
  (void)portage::is_just_name(text);
  (void)portage::dep_getslot(text);
  (void)portage::dep_getrepo(text);
  (void)portage::dep_getusedeps(text);
  if (auto candidate = portage::candidate_from_string(text); candidate && atom) {
    (void)portage::atom_matches(*atom, *candidate);
  }
  return 0;
}

// --- version --------------------------------------------------------------------------------

int fuzz_version(const uint8_t* data, size_t size)
{
  // Up to three strings, one per line: compared pairwise, checked for consistency.
  const auto input = fuzz_text(data, size);
  auto [a, rest] = fuzz_split(input, '\n');
  auto [b, c] = fuzz_split(rest, '\n');
  c = fuzz_split(c, '\n').first;
  const std::string_view strings[] = {a, b, c};
  std::optional<int> order[3][3];
  for (int i = 0; i < 3; ++i) {
    const bool valid_i = portage::is_valid_version(strings[i]);
    for (int j = 0; j < 3; ++j) {
      order[i][j] = portage::vercmp(strings[i], strings[j]);
      const bool valid_j = portage::is_valid_version(strings[j]);
      if (strings[i] == strings[j]) {
        fuzz_require(order[i][j] == 0, "version: a string does not equal itself");
      } else {
        fuzz_require(order[i][j].has_value() == (valid_i && valid_j), "version: vercmp and validity disagree");
      }
      if (order[i][j]) {
        fuzz_require(*order[i][j] >= -1 && *order[i][j] <= 1, "version: vercmp outside -1..1");
      }
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      if (order[i][j] && order[j][i]) {
        fuzz_require(*order[i][j] == -*order[j][i], "version: vercmp is not antisymmetric");
      }
      for (int k = 0; k < 3; ++k) {
        if (order[i][j] && order[j][k] && order[i][k] && *order[i][j] <= 0 && *order[j][k] <= 0) {
          fuzz_require(*order[i][k] <= 0, "version: vercmp is not transitive");
        }
      }
    }
  }
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) {
      const int forward = fuzz_sign(portage::cpv_sort_compare(strings[i], strings[j]));
      const int backward = fuzz_sign(portage::cpv_sort_compare(strings[j], strings[i]));
      fuzz_require(forward == -backward, "version: cpv_sort_compare is not antisymmetric");
      fuzz_require(portage::cpv_equal(strings[i], strings[j]) == portage::cpv_equal(strings[j], strings[i]),
                   "version: cpv_equal is not symmetric");
    }
    if (auto cpv = portage::parse_cpv(strings[i])) {
      fuzz_require(portage::is_valid_version(cpv->full_version()), "version: a cpv's version is not valid");
      auto again = portage::parse_cpv(cpv->str());
      fuzz_require(again.has_value(), "version: a cpv's canonical string does not parse");
      fuzz_require(again->category == cpv->category && again->package == cpv->package &&
                     again->version == cpv->version && again->revision == cpv->revision,
                   "version: a cpv parses differently from its canonical string");
      fuzz_require(portage::cpv_equal(strings[i], cpv->str()) != false || cpv->category == "null",
                   "version: a cpv differs from its canonical string");
    }
    const auto digits = strings[i];
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      fuzz_require(portage::compare_digits(digits, digits) == std::strong_ordering::equal,
                   "version: compare_digits of equal strings");
    }
  }
  return 0;
}

// --- dependency strings ---------------------------------------------------------------------

int fuzz_dep_string(const uint8_t* data, size_t size)
{
  if (size == 0) {
    return 0;
  }
  const uint8_t selector = data[0];
  const auto text = fuzz_text(data + 1, size - 1);
  auto parens = portage::paren_reduce(text);
  if (parens) {
    // paren_enclose is the inverse of paren_reduce for what paren_reduce returns.
    const auto enclosed = portage::paren_enclose(*parens);
    auto again = portage::paren_reduce(enclosed);
    fuzz_require(again.has_value(), "dep string: paren_enclose output does not reduce");
    fuzz_require(*again == *parens, "dep string: paren_reduce(paren_enclose(x)) differs");
    (void)portage::dep_list_to_json(*parens);
  }
  static const char* const eapis[] = {nullptr, "0", "2", "4", "5", "7", "8"};
  portage::UseReduceOptions options;
  options.use = {"a", "b", "foo", "test", "x"};
  options.mask = {"b"};
  options.is_src_uri = (selector & 1) != 0;
  options.opconvert = (selector & 2) != 0;
  options.flat = !options.opconvert && (selector & 4) != 0;
  options.match_all = (selector & 8) != 0;
  options.token_class =
    (selector & 16) != 0 && !options.is_src_uri ? portage::TokenClass::atom : portage::TokenClass::string;
  if (const char* eapi = eapis[(selector >> 5) % std::size(eapis)]) {
    options.eapi = eapi;
  }
  auto reduced = portage::use_reduce(text, options);
  if (reduced) {
    (void)portage::dep_list_to_json(*reduced);
    (void)portage::paren_enclose(*reduced);
    if (options.token_class == portage::TokenClass::atom && !options.opconvert && !options.flat) {
      if (auto tree = portage::dep_tree(*reduced, options.eapi)) {
        (void)portage::dep_tree_to_json(*tree).dump();
      }
    }
  }
  if (auto tree = portage::reduce_dependencies(text, options.use, options.eapi)) {
    (void)portage::dep_tree_to_json(*tree);
  }
  return 0;
}

// --- request and reply bodies of the API ----------------------------------------------------

namespace {

// As net::parse_json (src/net/http_server.cpp, which links the HTTP server): nesting past 64
// levels is refused while parsing.
std::optional<nlohmann::json> fuzz_parse_body(std::string_view text)
{
  constexpr int k_max_depth = 64;
  try {
    return nlohmann::json::parse(text, [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
      if (depth > k_max_depth) {
        throw std::length_error("too deep");
      }
      return true;
    });
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  } catch (const std::length_error&) {
    return std::nullopt;
  }
}

// Reads `body` as T the way a route does: a Fatal is the 400 answer; any other exception would be
// a 500 and is a finding. What was read writes out as JSON that reads back to the same JSON.
template <class T>
void fuzz_message(const nlohmann::json& body)
{
  T message;
  try {
    message = body.get<T>();
  } catch (const Fatal&) {
    return;
  }
  const nlohmann::json written = message;
  T again;
  try {
    again = written.get<T>();
  } catch (const Fatal& fatal) {
    throw InvariantBroken("protocol: a written message does not read back: " + fatal.error.message);
  }
  const nlohmann::json rewritten = again;
  fuzz_require(rewritten == written, "protocol: a message changed in a round trip");
  (void)written.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

int fuzz_protocol(const uint8_t* data, size_t size)
{
  auto body = fuzz_parse_body(fuzz_text(data, size));
  if (!body) {
    return 0;
  }
  fuzz_message<net::Lease>(*body);
  fuzz_message<net::RegisterRequest>(*body);
  fuzz_message<net::Registration>(*body);
  fuzz_message<net::HeartbeatRequest>(*body);
  fuzz_message<net::HeartbeatReply>(*body);
  fuzz_message<net::ClaimReply>(*body);
  fuzz_message<net::UploadReply>(*body);
  fuzz_message<net::ReportRequest>(*body);
  fuzz_message<net::ReportReply>(*body);
  fuzz_message<net::RefuseRequest>(*body);
  fuzz_message<net::EnrollRequest>(*body);
  fuzz_message<net::EnrollReply>(*body);
  fuzz_message<net::PlanRequest>(*body);
  fuzz_message<net::PlanReply>(*body);
  fuzz_message<net::PauseReply>(*body);
  fuzz_message<net::ResetReply>(*body);
  fuzz_message<net::UnblockRequest>(*body);
  fuzz_message<net::UnblockReply>(*body);
  fuzz_message<net::GroundRequest>(*body);
  fuzz_message<net::GroundReply>(*body);
  fuzz_message<net::BalanceReply>(*body);
  fuzz_message<net::LocalBuildRequest>(*body);
  fuzz_message<net::LocalBuildReply>(*body);
  fuzz_message<net::FinalizeRequest>(*body);
  fuzz_message<net::RollbackRequest>(*body);
  // POST /api/v1/plan: the plan and the build profile inside the body (api_control.cpp).
  if (body->is_object()) {
    if (const auto it = body->find("plan"); it != body->end()) {
      if (auto plan = portage::plan_from_json(*it)) {
        const auto written = portage::plan_to_json(*plan);
        auto again = portage::plan_from_json(written);
        fuzz_require(again.has_value(), "protocol: a written plan does not read back");
        fuzz_require(portage::plan_to_json(*again) == written, "protocol: a plan changed in a round trip");
      }
    }
    if (const auto it = body->find("build_profile"); it != body->end() && !it->is_null()) {
      if (auto profile = portage::build_profile_from_json(*it)) {
        auto again = portage::build_profile_from_json(portage::build_profile_to_json(*profile));
        fuzz_require(again.has_value(), "protocol: a written build profile does not read back");
        fuzz_require(*again == *profile, "protocol: a build profile changed in a round trip");
        (void)portage::build_profile_hash(*profile);
      }
    }
  }
  return 0;
}

const Target k_targets[] = {
  {"tar", fuzz_tar},
  {"gpkg", fuzz_gpkg},
  {"xpak", fuzz_xpak},
  {"compression", fuzz_compression},
  {"packages_index", fuzz_packages_index},
  {"emerge_output", fuzz_emerge_output},
  {"md5_cache", fuzz_md5_cache},
  {"atom", fuzz_atom},
  {"version", fuzz_version},
  {"dep_string", fuzz_dep_string},
  {"protocol", fuzz_protocol},
};
const size_t k_target_count = std::size(k_targets);

} // namespace swarm::fuzz
