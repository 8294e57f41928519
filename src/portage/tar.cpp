#include "portage/tar.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>

#include "core/strings.hpp"

namespace swarm::portage {

namespace {

// Header field offsets and lengths (POSIX ustar).
struct Field {
  size_t offset;
  size_t length;
};
constexpr Field k_name{0, 100};
constexpr Field k_mode{100, 8};
constexpr Field k_uid{108, 8};
constexpr Field k_gid{116, 8};
constexpr Field k_size{124, 12};
constexpr Field k_mtime{136, 12};
constexpr Field k_chksum{148, 8};
constexpr size_t k_typeflag = 156;
constexpr Field k_linkname{157, 100};
constexpr Field k_magic{257, 8}; // magic (6) + version (2)
constexpr Field k_uname{265, 32};
constexpr Field k_gname{297, 32};
constexpr Field k_devmajor{329, 8};
constexpr Field k_devminor{337, 8};
constexpr Field k_prefix{345, 155};

constexpr std::string_view k_ustar_magic{"ustar\0"
                                         "00",
                                         8};
constexpr std::string_view k_gnu_magic{"ustar  \0", 8};
constexpr size_t k_max_meta_header = 1 << 20; // long names and pax records are small

std::string_view field(const char* block, Field f)
{
  return {block + f.offset, f.length};
}

// A NUL-terminated string field.
std::string text_field(const char* block, Field f)
{
  auto view = field(block, f);
  const auto nul = view.find('\0');
  return std::string(view.substr(0, nul));
}

// Octal (possibly space/NUL padded) or GNU base-256 number, as Python's tarfile.nti.
std::optional<int64_t> number_field(const char* block, Field f)
{
  const auto view = field(block, f);
  const auto first = static_cast<unsigned char>(view[0]);
  if (first == 0xff) {
    return std::nullopt; // negative base-256 numbers (dates before 1970) are not accepted
  }
  if (first == 0x80) {
    uint64_t value = 0;
    for (size_t i = 1; i < view.size(); ++i) {
      if (value >> 55 != 0) {
        return std::nullopt; // beyond int64
      }
      value = (value << 8) | static_cast<unsigned char>(view[i]);
    }
    return static_cast<int64_t>(value);
  }
  auto digits = strings::trim(view.substr(0, view.find('\0')));
  if (digits.empty()) {
    return 0;
  }
  int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '7' || value > (INT64_MAX >> 3)) {
      return std::nullopt;
    }
    value = value * 8 + (c - '0');
  }
  return value;
}

bool checksum_ok(const char* block)
{
  auto stored = number_field(block, k_chksum);
  if (!stored) {
    return false;
  }
  int64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < k_tar_block; ++i) {
    const bool in_chksum = i >= k_chksum.offset && i < k_chksum.offset + k_chksum.length;
    const char c = in_chksum ? ' ' : block[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  return *stored == unsigned_sum || *stored == signed_sum;
}

TarEntryType type_of(char flag)
{
  switch (flag) {
  case '0':
  case '\0':
  case '7':
    return TarEntryType::regular;
  case '1':
    return TarEntryType::hardlink;
  case '2':
    return TarEntryType::symlink;
  case '3':
    return TarEntryType::char_device;
  case '4':
    return TarEntryType::block_device;
  case '5':
    return TarEntryType::directory;
  case '6':
    return TarEntryType::fifo;
  default:
    return TarEntryType::other;
  }
}

char flag_of(TarEntryType type)
{
  switch (type) {
  case TarEntryType::regular:
    return '0';
  case TarEntryType::hardlink:
    return '1';
  case TarEntryType::symlink:
    return '2';
  case TarEntryType::char_device:
    return '3';
  case TarEntryType::block_device:
    return '4';
  case TarEntryType::directory:
    return '5';
  case TarEntryType::fifo:
    return '6';
  case TarEntryType::other:
    break;
  }
  return '0';
}

uint64_t padding_for(uint64_t size)
{
  return (k_tar_block - size % k_tar_block) % k_tar_block;
}

// Pax extended header records: "<len> <key>=<value>\n".
Result<std::map<std::string, std::string>> parse_pax(std::string_view data)
{
  std::map<std::string, std::string> out;
  while (!data.empty()) {
    if (data.front() == '\0') {
      break;
    }
    const auto space = data.find(' ');
    if (space == std::string_view::npos) {
      return fail(ErrorKind::invalid, "malformed pax record");
    }
    auto length = strings::parse_uint(data.substr(0, space));
    if (!length || *length <= space + 1 || *length > data.size() || data[*length - 1] != '\n') {
      return fail(ErrorKind::invalid, "malformed pax record");
    }
    const auto record = data.substr(space + 1, *length - space - 2);
    const auto eq = record.find('=');
    if (eq == std::string_view::npos) {
      return fail(ErrorKind::invalid, "malformed pax record");
    }
    out[std::string(record.substr(0, eq))] = std::string(record.substr(eq + 1));
    data.remove_prefix(*length);
  }
  return out;
}

} // namespace

std::string_view tar_format_name(TarFormat format)
{
  switch (format) {
  case TarFormat::ustar:
    return "ustar";
  case TarFormat::gnu:
    return "gnu";
  case TarFormat::unknown:
    break;
  }
  return "unknown";
}

TarFormat tar_header_format(std::string_view block)
{
  if (block.size() < k_magic.offset + k_magic.length) {
    return TarFormat::unknown;
  }
  const auto magic = block.substr(k_magic.offset, k_magic.length);
  if (magic == k_gnu_magic) {
    return TarFormat::gnu;
  }
  if (magic == k_ustar_magic) {
    return TarFormat::ustar;
  }
  return TarFormat::unknown;
}

std::string_view tar_entry_type_name(TarEntryType type)
{
  switch (type) {
  case TarEntryType::regular:
    return "file";
  case TarEntryType::hardlink:
    return "hardlink";
  case TarEntryType::symlink:
    return "symlink";
  case TarEntryType::char_device:
    return "char-device";
  case TarEntryType::block_device:
    return "block-device";
  case TarEntryType::directory:
    return "directory";
  case TarEntryType::fifo:
    return "fifo";
  case TarEntryType::other:
    break;
  }
  return "other";
}

// ---------------------------------------------------------------------------------------------
// Reader

Result<size_t> TarReader::DataSource::read(char* buffer, size_t size)
{
  const auto n = static_cast<size_t>(std::min<uint64_t>(size, m_reader.m_remaining));
  if (n == 0) {
    return size_t{0};
  }
  if (auto got = stream::read_exact(m_reader.m_source, buffer, n); !got) {
    if (got.error().kind == ErrorKind::too_large) {
      return fail(got.error()); // a limit of the source (a decompression bomb), not truncation
    }
    return fail(ErrorKind::invalid, "tar member data is truncated");
  }
  m_reader.m_remaining -= n;
  m_reader.m_offset += n;
  return n;
}

Result<> TarReader::DataSource::skip(uint64_t size)
{
  if (size > m_reader.m_remaining) {
    return fail(ErrorKind::invalid, "skip past the end of a tar member");
  }
  if (auto skipped = m_reader.m_source.skip(size); !skipped) {
    if (skipped.error().kind == ErrorKind::too_large) {
      return fail(skipped.error());
    }
    return fail(ErrorKind::invalid, "tar member data is truncated");
  }
  m_reader.m_remaining -= size;
  m_reader.m_offset += size;
  return {};
}

Result<> TarReader::read_block(char* block, bool& end_of_input)
{
  end_of_input = false;
  size_t done = 0;
  while (done < k_tar_block) {
    auto got = m_source.read(block + done, k_tar_block - done);
    if (!got) {
      return fail(got.error());
    }
    if (*got == 0) {
      break;
    }
    done += *got;
  }
  if (done == 0) {
    end_of_input = true;
    return {};
  }
  if (done < k_tar_block) {
    return fail(ErrorKind::invalid, "truncated tar header at byte {}", m_offset);
  }
  m_offset += k_tar_block;
  return {};
}

Result<> TarReader::finish_member()
{
  if (m_remaining + m_padding == 0) {
    return {};
  }
  if (auto skipped = m_source.skip(m_remaining + m_padding); !skipped) {
    if (skipped.error().kind == ErrorKind::too_large) {
      return fail(skipped.error());
    }
    return fail(ErrorKind::invalid, "tar archive is truncated (member data ends past the end of the file)");
  }
  m_offset += m_remaining + m_padding;
  m_remaining = 0;
  m_padding = 0;
  return {};
}

Result<std::optional<TarMember>> TarReader::next()
{
  if (m_done) {
    return std::nullopt;
  }
  if (auto finished = finish_member(); !finished) {
    return fail(finished.error());
  }
  std::optional<std::string> long_name;
  std::optional<std::string> long_link;
  std::map<std::string, std::string> pax;
  const auto header_offset = m_offset;
  std::array<char, k_tar_block> block{};
  while (true) {
    bool end_of_input = false;
    if (auto read = read_block(block.data(), end_of_input); !read) {
      return fail(read.error());
    }
    if (end_of_input) {
      if (m_count == 0 && m_offset == 0) {
        return fail(ErrorKind::invalid, "empty file, not a tar archive");
      }
      if (long_name || long_link || !pax.empty()) {
        return fail(ErrorKind::invalid, "tar archive ends after an extended header");
      }
      m_done = true;
      return std::nullopt;
    }
    if (std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; })) {
      if (m_offset == k_tar_block) {
        return fail(ErrorKind::invalid, "not a tar archive (starts with a zero block)");
      }
      // A long-name or pax header names the member after it: the end cannot come first.
      if (long_name || long_link || !pax.empty()) {
        return fail(ErrorKind::invalid, "tar archive ends after an extended header");
      }
      m_done = true;
      return std::nullopt;
    }
    if (!checksum_ok(block.data())) {
      if (m_offset == k_tar_block) {
        return fail(ErrorKind::invalid, "not a tar archive (bad header checksum)");
      }
      return fail(ErrorKind::invalid, "corrupt tar header at byte {} (bad checksum)", m_offset - k_tar_block);
    }
    if (m_format == TarFormat::unknown && m_count == 0) {
      m_format = tar_header_format(std::string_view(block.data(), block.size()));
    }
    const char flag = block[k_typeflag];
    auto size = number_field(block.data(), k_size);
    if (!size || *size < 0) {
      return fail(ErrorKind::invalid, "bad size field in tar header at byte {}", m_offset - k_tar_block);
    }
    // GNU long name/link and pax headers carry data for the next real header.
    if (flag == 'L' || flag == 'K' || flag == 'x' || flag == 'g') {
      if (static_cast<uint64_t>(*size) > k_max_meta_header) {
        return fail(ErrorKind::invalid, "oversized extended tar header at byte {}", m_offset - k_tar_block);
      }
      std::string data(static_cast<size_t>(*size), '\0');
      if (auto got = stream::read_exact(m_source, data.data(), data.size()); !got) {
        return fail(ErrorKind::invalid, "tar archive is truncated inside an extended header");
      }
      const auto padding = padding_for(data.size());
      if (auto skipped = m_source.skip(padding); !skipped) {
        return fail(ErrorKind::invalid, "tar archive is truncated inside an extended header");
      }
      m_offset += data.size() + padding;
      if (flag == 'L' || flag == 'K') {
        const auto value = data.substr(0, data.find('\0'));
        (flag == 'L' ? long_name : long_link) = value;
      } else if (flag == 'x') {
        auto records = parse_pax(data);
        if (!records) {
          return fail(records.error());
        }
        for (auto& [key, value] : *records) {
          pax[key] = value;
        }
      }
      continue; // global pax headers ('g') do not describe a member
    }

    TarMember member;
    member.header_offset = header_offset;
    member.typeflag = flag;
    member.type = type_of(flag);
    member.name = text_field(block.data(), k_name);
    const auto format = tar_header_format(std::string_view(block.data(), block.size()));
    const auto prefix = text_field(block.data(), k_prefix);
    if (format == TarFormat::ustar && !prefix.empty()) {
      member.name = prefix + "/" + member.name;
    }
    if (long_name) {
      member.name = *long_name;
    }
    member.linkname = long_link ? *long_link : text_field(block.data(), k_linkname);
    auto mode = number_field(block.data(), k_mode);
    auto uid = number_field(block.data(), k_uid);
    auto gid = number_field(block.data(), k_gid);
    auto mtime = number_field(block.data(), k_mtime);
    if (!mode || !uid || !gid || !mtime || *mode < 0 || *uid < 0 || *gid < 0) {
      return fail(ErrorKind::invalid, "bad numeric field in tar header at byte {}", m_offset - k_tar_block);
    }
    member.mode = static_cast<uint32_t>(*mode & 07777);
    member.uid = static_cast<uint64_t>(*uid);
    member.gid = static_cast<uint64_t>(*gid);
    member.mtime = *mtime;
    member.uname = text_field(block.data(), k_uname);
    member.gname = text_field(block.data(), k_gname);
    member.size = static_cast<uint64_t>(*size);
    for (const auto& [key, value] : pax) {
      if (key == "path") {
        member.name = value;
      } else if (key == "linkpath") {
        member.linkname = value;
      } else if (key == "size") {
        auto parsed = strings::parse_uint(value);
        if (!parsed) {
          return fail(ErrorKind::invalid, "bad pax size record");
        }
        member.size = *parsed;
      } else if (key == "uname") {
        member.uname = value;
      } else if (key == "gname") {
        member.gname = value;
      } else if (key == "uid" || key == "gid") {
        if (auto parsed = strings::parse_uint(value)) {
          (key == "uid" ? member.uid : member.gid) = *parsed;
        }
      } else if (key == "mtime") {
        if (auto parsed = strings::parse_double(value)) {
          member.mtime = static_cast<int64_t>(*parsed);
        }
      }
    }
    if (member.type == TarEntryType::regular && member.name.ends_with('/') && flag == '\0') {
      member.type = TarEntryType::directory; // old tars mark directories with a trailing slash only
    }
    // Links, directories and devices have no data whatever the size field says.
    const bool has_data = member.type == TarEntryType::regular || member.type == TarEntryType::other;
    if (!has_data) {
      member.size = 0;
    }
    member.data_offset = m_offset;
    m_remaining = member.size;
    m_padding = padding_for(member.size);
    ++m_count;
    return member;
  }
}

Result<std::string> TarReader::read_data(size_t limit)
{
  if (m_remaining > limit) {
    return fail(ErrorKind::too_large, "tar member larger than {} bytes", limit);
  }
  return stream::read_all(m_data, limit);
}

Result<TarListing> list_tar_file(const stream::File& file)
{
  auto size = file.size();
  if (!size) {
    return fail(size.error());
  }
  stream::FileRangeSource source(file, 0, *size);
  TarReader reader(source);
  TarListing listing;
  while (true) {
    auto member = reader.next();
    if (!member) {
      return fail(member.error());
    }
    if (!*member) {
      break;
    }
    // The data is skipped by seeking: make sure it is really there.
    const auto end = (*member)->data_offset + (*member)->size + padding_for((*member)->size);
    if ((*member)->data_offset + (*member)->size > *size) {
      return fail(ErrorKind::invalid, "tar archive is truncated: member '{}' needs {} bytes, the file has {}",
                  (*member)->name, (*member)->data_offset + (*member)->size, *size);
    }
    listing.end_offset = std::min(end, *size);
    listing.members.push_back(std::move(**member));
  }
  listing.format = reader.format();
  return listing;
}

Result<TarListing> list_tar_file(const std::filesystem::path& path)
{
  auto file = stream::File::open_read(path);
  if (!file) {
    return fail(file.error());
  }
  return list_tar_file(*file);
}

Result<std::vector<TarEntry>> read_tar_entries(stream::ByteSource& source, size_t limit)
{
  TarReader reader(source);
  std::vector<TarEntry> out;
  size_t total = 0;
  while (true) {
    auto member = reader.next();
    if (!member) {
      return fail(member.error());
    }
    if (!*member) {
      return out;
    }
    if ((*member)->size > limit - total) {
      return fail(ErrorKind::too_large, "tar contents larger than {} bytes", limit);
    }
    auto content = reader.read_data(limit - total);
    if (!content) {
      return fail(content.error());
    }
    total += content->size();
    out.push_back({std::move(**member), std::move(*content)});
  }
}

// ---------------------------------------------------------------------------------------------
// Writer

namespace {

// Python tarfile.itn: "%0*o" with digits-1 octal digits and a NUL; GNU falls back to base-256.
Result<> put_number(char* block, Field f, uint64_t value, TarDialect dialect)
{
  const auto digits = f.length - 1;
  if (digits < 22 && value >= (uint64_t{1} << (3 * digits))) {
    if (dialect != TarDialect::gnu) {
      return fail(ErrorKind::invalid, "value {} too large for a ustar header field", value);
    }
    block[f.offset] = static_cast<char>(0x80);
    for (size_t i = f.length - 1; i > 0; --i) {
      block[f.offset + i] = static_cast<char>(value & 0xff);
      value >>= 8;
    }
    return {};
  }
  const auto text = fmt::format("{:0{}o}", value, digits);
  std::memcpy(block + f.offset, text.data(), digits);
  block[f.offset + digits] = '\0';
  return {};
}

Result<> put_text(char* block, Field f, std::string_view text, std::string_view what)
{
  if (text.size() > f.length) {
    return fail(ErrorKind::invalid, "{} '{}' too long for a tar header", what, text);
  }
  std::memcpy(block + f.offset, text.data(), text.size());
  return {};
}

// Python's _posix_split_name: the shortest prefix ending at a '/' such that the prefix fits 155
// bytes and the rest fits 100.
std::optional<std::pair<std::string, std::string>> split_ustar_name(const std::string& name)
{
  for (size_t slash = 0; slash < name.size(); ++slash) {
    if (name[slash] != '/') {
      continue;
    }
    auto prefix = name.substr(0, slash);
    auto rest = name.substr(slash + 1);
    if (prefix.size() <= k_prefix.length && rest.size() <= k_name.length) {
      return std::make_pair(prefix, rest);
    }
  }
  return std::nullopt;
}

void put_checksum(char* block)
{
  std::memset(block + k_chksum.offset, ' ', k_chksum.length);
  uint64_t sum = 0;
  for (size_t i = 0; i < k_tar_block; ++i) {
    sum += static_cast<unsigned char>(block[i]);
  }
  const auto text = fmt::format("{:06o}", sum);
  std::memcpy(block + k_chksum.offset, text.data(), 6);
  block[k_chksum.offset + 6] = '\0';
  // The eighth byte stays a space, as Python writes it.
}

} // namespace

Result<> TarWriter::put(const char* data, size_t size)
{
  if (auto written = m_sink.write(data, size); !written) {
    return written;
  }
  m_offset += size;
  return {};
}

Result<> TarWriter::pad_to(uint64_t multiple)
{
  static const std::array<char, k_tar_block> k_zeros{};
  while (m_offset % multiple != 0) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(multiple - m_offset % multiple, k_zeros.size()));
    if (auto put_ok = put(k_zeros.data(), n); !put_ok) {
      return put_ok;
    }
  }
  return {};
}

Result<> TarWriter::write_header(const TarWriteEntry& entry)
{
  auto name = entry.name;
  if (entry.type == TarEntryType::directory && !name.ends_with('/')) {
    name += '/';
  }
  const auto magic = m_dialect == TarDialect::gnu ? k_gnu_magic : k_ustar_magic;
  std::string prefix;
  auto long_header = [&](char flag, const std::string& value) -> Result<> {
    // ././@LongLink: the value with its NUL as data, written like Python's _create_gnu_long_header.
    std::array<char, k_tar_block> block{};
    std::memcpy(block.data(), "././@LongLink", 13);
    (void)put_number(block.data(), k_mode, 0, m_dialect);
    (void)put_number(block.data(), k_uid, 0, m_dialect);
    (void)put_number(block.data(), k_gid, 0, m_dialect);
    (void)put_number(block.data(), k_size, value.size() + 1, m_dialect);
    (void)put_number(block.data(), k_mtime, 0, m_dialect);
    block[k_typeflag] = flag;
    std::memcpy(block.data() + k_magic.offset, magic.data(), magic.size());
    put_checksum(block.data());
    if (auto done = put(block.data(), block.size()); !done) {
      return done;
    }
    if (auto done = put(value.c_str(), value.size() + 1); !done) {
      return done;
    }
    return pad_to(k_tar_block);
  };

  if (name.size() > k_name.length) {
    if (m_dialect == TarDialect::gnu) {
      if (auto done = long_header('L', name); !done) {
        return done;
      }
      name.resize(k_name.length);
    } else {
      auto split = split_ustar_name(name);
      if (!split) {
        return fail(ErrorKind::invalid, "name '{}' is too long for ustar", entry.name);
      }
      prefix = split->first;
      name = split->second;
    }
  }
  auto linkname = entry.linkname;
  if (linkname.size() > k_linkname.length) {
    if (m_dialect != TarDialect::gnu) {
      return fail(ErrorKind::invalid, "link target '{}' is too long for ustar", linkname);
    }
    if (auto done = long_header('K', linkname); !done) {
      return done;
    }
    linkname.resize(k_linkname.length);
  }

  std::array<char, k_tar_block> block{};
  auto* b = block.data();
  std::memcpy(b + k_name.offset, name.data(), name.size());
  const uint64_t size = entry.type == TarEntryType::regular ? entry.size : 0;
  for (auto result : {put_number(b, k_mode, entry.mode & 07777, m_dialect), put_number(b, k_uid, entry.uid, m_dialect),
                      put_number(b, k_gid, entry.gid, m_dialect), put_number(b, k_size, size, m_dialect),
                      put_number(b, k_mtime, static_cast<uint64_t>(std::max<int64_t>(entry.mtime, 0)), m_dialect),
                      put_text(b, k_linkname, linkname, "link target"), put_text(b, k_uname, entry.uname, "user name"),
                      put_text(b, k_gname, entry.gname, "group name"), put_text(b, k_prefix, prefix, "name prefix")}) {
    if (!result) {
      return result;
    }
  }
  b[k_typeflag] = flag_of(entry.type);
  std::memcpy(b + k_magic.offset, magic.data(), magic.size());
  if (entry.type == TarEntryType::char_device || entry.type == TarEntryType::block_device) {
    (void)put_number(b, k_devmajor, 0, m_dialect);
    (void)put_number(b, k_devminor, 0, m_dialect);
  }
  put_checksum(b);
  return put(b, block.size());
}

Result<> TarWriter::add(const TarWriteEntry& entry, std::string_view content)
{
  auto sized = entry;
  sized.size = entry.type == TarEntryType::regular ? content.size() : 0;
  if (auto header = write_header(sized); !header) {
    return header;
  }
  if (sized.size == 0) {
    return {};
  }
  if (auto data = put(content.data(), content.size()); !data) {
    return data;
  }
  return pad_to(k_tar_block);
}

Result<> TarWriter::add_stream(const TarWriteEntry& entry, stream::ByteSource& content)
{
  if (auto header = write_header(entry); !header) {
    return header;
  }
  std::vector<char> buffer(1 << 18);
  uint64_t left = entry.type == TarEntryType::regular ? entry.size : 0;
  while (left > 0) {
    const auto want = static_cast<size_t>(std::min<uint64_t>(left, buffer.size()));
    if (auto got = stream::read_exact(content, buffer.data(), want); !got) {
      return fail(ErrorKind::invalid, "content of '{}' is shorter than its declared size", entry.name);
    }
    if (auto data = put(buffer.data(), want); !data) {
      return data;
    }
    left -= want;
  }
  return pad_to(k_tar_block);
}

Result<> TarWriter::finish()
{
  static const std::array<char, 2 * k_tar_block> k_end{};
  if (auto end = put(k_end.data(), k_end.size()); !end) {
    return end;
  }
  return pad_to(k_tar_record);
}

} // namespace swarm::portage
