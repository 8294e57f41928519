#include "portage/xpak.hpp"

namespace swarm::portage {

namespace {

constexpr std::string_view k_pack = "XPAKPACK";
constexpr std::string_view k_stop = "XPAKSTOP";
constexpr size_t k_max_segment = 256u << 20; // metadata is small; refuse absurd lengths

uint32_t decode_u32(std::string_view bytes)
{
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

void encode_u32(std::string& out, uint32_t value)
{
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

} // namespace

bool has_xpak_trailer(std::string_view last16)
{
  return last16.size() == 16 && last16.substr(0, 8) == k_stop && last16.substr(12, 4) == "STOP";
}

Result<XpakMetadata> parse_xpak_segment(std::string_view segment)
{
  if (segment.size() < 24 || segment.substr(0, 8) != k_pack || segment.substr(segment.size() - 8) != k_stop) {
    return fail(ErrorKind::invalid, "XPAK segment lacks its XPAKPACK/XPAKSTOP markers");
  }
  const uint64_t index_len = decode_u32(segment.substr(8, 4));
  const uint64_t data_len = decode_u32(segment.substr(12, 4));
  if (16 + index_len + data_len + 8 != segment.size()) {
    return fail(ErrorKind::invalid, "XPAK segment lengths do not add up (index {}, data {}, segment {})", index_len,
                data_len, segment.size());
  }
  auto index = segment.substr(16, index_len);
  const auto data = segment.substr(16 + index_len, data_len);
  XpakMetadata out;
  while (!index.empty()) {
    if (index.size() < 4) {
      return fail(ErrorKind::invalid, "truncated XPAK index entry");
    }
    const uint64_t name_len = decode_u32(index);
    if (index.size() < 4 + name_len + 8) {
      return fail(ErrorKind::invalid, "truncated XPAK index entry");
    }
    auto name = std::string(index.substr(4, name_len));
    const uint64_t offset = decode_u32(index.substr(4 + name_len, 4));
    const uint64_t length = decode_u32(index.substr(8 + name_len, 4));
    if (offset + length > data.size()) {
      return fail(ErrorKind::invalid, "XPAK entry '{}' points past the data", name);
    }
    out[std::move(name)] = std::string(data.substr(offset, length));
    index.remove_prefix(12 + name_len);
  }
  return out;
}

std::string write_xpak_segment(const XpakMetadata& metadata)
{
  std::string index;
  std::string data;
  for (const auto& [key, value] : metadata) {
    encode_u32(index, static_cast<uint32_t>(key.size()));
    index += key;
    encode_u32(index, static_cast<uint32_t>(data.size()));
    encode_u32(index, static_cast<uint32_t>(value.size()));
    data += value;
  }
  std::string out(k_pack);
  encode_u32(out, static_cast<uint32_t>(index.size()));
  encode_u32(out, static_cast<uint32_t>(data.size()));
  out += index;
  out += data;
  out += k_stop;
  return out;
}

Result<XpakPackage> read_xpak(const stream::File& file)
{
  auto size = file.size();
  if (!size) {
    return fail(size.error());
  }
  if (*size < 16) {
    return fail(ErrorKind::invalid, "file too small for an XPAK trailer");
  }
  std::string trailer(16, '\0');
  if (auto read = file.read_at(*size - 16, trailer.data(), trailer.size()); !read) {
    return fail(read.error());
  }
  if (!has_xpak_trailer(trailer)) {
    return fail(ErrorKind::invalid, "no XPAKSTOP trailer");
  }
  // The trailer's length covers "XPAKPACK" through "XPAKSTOP" (xpak.tbz2.scan).
  const uint64_t segment_len = decode_u32(std::string_view(trailer).substr(8, 4));
  if (segment_len < 24 || segment_len + 8 > *size || segment_len > k_max_segment) {
    return fail(ErrorKind::invalid, "XPAK trailer gives an impossible length {}", segment_len);
  }
  XpakPackage out;
  out.xpak_offset = *size - 8 - segment_len;
  std::string segment(static_cast<size_t>(segment_len), '\0');
  if (auto read = file.read_at(out.xpak_offset, segment.data(), segment.size()); !read) {
    return fail(read.error());
  }
  auto metadata = parse_xpak_segment(segment);
  if (!metadata) {
    return fail(metadata.error());
  }
  out.metadata = std::move(*metadata);
  return out;
}

Result<XpakPackage> read_xpak(const std::filesystem::path& path)
{
  auto file = stream::File::open_read(path);
  if (!file) {
    return fail(file.error());
  }
  return read_xpak(*file);
}

} // namespace swarm::portage
