#pragma once
// Tar archives as Portage's binary packages use them: the outer (uncompressed) GPKG container
// and the inner metadata/image archives. POSIX ustar and the ustar-compatible GNU subset (GLEP 78):
// ././@LongLink names, pax path/size records, base-256 numbers.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_stream.hpp"
#include "core/error.hpp"

namespace swarm::portage {

inline constexpr size_t k_tar_block = 512;
inline constexpr size_t k_tar_record = 10240; // Python tarfile's default record size

// Magic of a header block, as Portage's gpkg._get_tar_format sees it.
enum class TarFormat { ustar, gnu, unknown };
std::string_view tar_format_name(TarFormat format); // "ustar", "gnu", "unknown"
// The magic of the 512-byte header `block` (bytes 257..264).
TarFormat tar_header_format(std::string_view block);

enum class TarEntryType { regular, hardlink, symlink, char_device, block_device, directory, fifo, other };
std::string_view tar_entry_type_name(TarEntryType type);

// One archive member as read from its header(s).
struct TarMember {
  std::string name;     // full path (long-name and pax records applied); directories keep a trailing '/'
  std::string linkname; // symlink/hardlink target
  TarEntryType type = TarEntryType::regular;
  char typeflag = '0';
  uint32_t mode = 0;
  uint64_t uid = 0;
  uint64_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime = 0;
  uint64_t size = 0;          // bytes of data
  uint64_t header_offset = 0; // where this member's first header (incl. long-name headers) starts
  uint64_t data_offset = 0;   // where its data starts
};

// Pulls members one by one from a tar stream (a file range, or a decompressor).
class TarReader {
public:
  explicit TarReader(stream::ByteSource& source) : m_source(source), m_data(*this) {}

  // The next member; nullopt at the end of the archive (a zero block, or the end of the input at a
  // block boundary after at least one member). Unread data of the previous member is skipped.
  // Garbage, a bad header checksum or input ending inside a header or data is an error.
  Result<std::optional<TarMember>> next();
  // The current member's data, limited to its size.
  stream::ByteSource& data() { return m_data; }
  // Reads the current member's data whole; fails past `limit` bytes.
  Result<std::string> read_data(size_t limit);
  // Magic of the first header (unknown before next() was called).
  TarFormat format() const { return m_format; }
  // Bytes consumed from the source so far.
  uint64_t offset() const { return m_offset; }

private:
  class DataSource : public stream::ByteSource {
  public:
    explicit DataSource(TarReader& reader) : m_reader(reader) {}
    Result<size_t> read(char* buffer, size_t size) override;
    Result<> skip(uint64_t size) override;

  private:
    TarReader& m_reader;
  };

  Result<> read_block(char* block, bool& end_of_input);
  Result<> finish_member();

  stream::ByteSource& m_source;
  DataSource m_data;
  TarFormat m_format = TarFormat::unknown;
  uint64_t m_offset = 0;
  uint64_t m_remaining = 0; // data bytes of the current member not yet read
  uint64_t m_padding = 0;   // padding after the current member's data
  bool m_done = false;
  size_t m_count = 0;
};

// The members of a tar archive and the magic of its first header.
struct TarListing {
  TarFormat format = TarFormat::unknown;
  std::vector<TarMember> members;
  uint64_t end_offset = 0; // where the last member's padded data ends
};

// Lists a tar file's members without loading it (headers are read, data is skipped).
// Fails, with a reason, on files that are not tar archives or are truncated.
Result<TarListing> list_tar_file(const std::filesystem::path& path);
// The same over an already open file.
Result<TarListing> list_tar_file(const stream::File& file);

// A member and its whole content, for small archives (metadata.tar).
struct TarEntry {
  TarMember member;
  std::string content;
};
// Reads every member with its content; fails if the contents add up to more than `limit` bytes.
Result<std::vector<TarEntry>> read_tar_entries(stream::ByteSource& source, size_t limit);

// Header dialect the writer uses: ustar (names split into prefix/name, sizes < 8 GiB) or GNU
// (././@LongLink for long names, base-256 sizes) — Python tarfile's USTAR_FORMAT/GNU_FORMAT.
enum class TarDialect { ustar, gnu };

struct TarWriteEntry {
  std::string name; // directories get a trailing '/' if it is missing
  TarEntryType type = TarEntryType::regular;
  uint32_t mode = 0644;
  uint64_t uid = 0;
  uint64_t gid = 0;
  std::string uname;
  std::string gname;
  int64_t mtime = 0;
  uint64_t size = 0; // for add_stream; add() takes the content's size
  std::string linkname;
};

// Writes a tar stream byte-compatible with Python's tarfile (which Portage uses): octal fields
// as "%07o\0", checksum "%06o\0 ", empty device numbers, and the archive padded to 10240 bytes.
class TarWriter {
public:
  TarWriter(stream::ByteSink& sink, TarDialect dialect) : m_sink(sink), m_dialect(dialect) {}

  Result<> add(const TarWriteEntry& entry, std::string_view content = {});
  // Streams `entry.size` bytes from `content` (fails if it has fewer).
  Result<> add_stream(const TarWriteEntry& entry, stream::ByteSource& content);
  // Two zero blocks, then zeros up to a multiple of 10240 bytes. Does not finish the sink.
  Result<> finish();
  uint64_t offset() const { return m_offset; }

private:
  Result<> write_header(const TarWriteEntry& entry);
  Result<> put(const char* data, size_t size);
  Result<> pad_to(uint64_t multiple);

  stream::ByteSink& m_sink;
  TarDialect m_dialect;
  uint64_t m_offset = 0;
};

} // namespace swarm::portage
