#pragma once
// The legacy XPAK binary package (`.tbz2`/`.xpak`, man xpak.5): a compressed image tarball
// followed by "XPAKPACK" <index_len> <data_len> <index> <data> "XPAKSTOP" <xpak_len> "STOP".
// Only its metadata is read: swarm produces GPKGs, but must recognise old packages.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "core/byte_stream.hpp"
#include "core/error.hpp"

namespace swarm::portage {

// Raw metadata values by key (CATEGORY, PF, environment.bz2, …), as stored.
using XpakMetadata = std::map<std::string, std::string>;

// True if the last 16 bytes are "XPAKSTOP" <4 bytes> "STOP" (Portage's binpkg sniffing).
bool has_xpak_trailer(std::string_view last16);

struct XpakPackage {
  uint64_t xpak_offset = 0; // where "XPAKPACK" starts (= size of the compressed image)
  XpakMetadata metadata;
};

// Reads the trailer and the XPAK index of an open file (seeking; the image is not read).
Result<XpakPackage> read_xpak(const stream::File& file);
Result<XpakPackage> read_xpak(const std::filesystem::path& path);

// Parses an XPAK segment "XPAKPACK" … "XPAKSTOP".
Result<XpakMetadata> parse_xpak_segment(std::string_view segment);
// Serialises metadata as an XPAK segment (keys in map order), as Portage's xpak.xpak_mem.
std::string write_xpak_segment(const XpakMetadata& metadata);

} // namespace swarm::portage
