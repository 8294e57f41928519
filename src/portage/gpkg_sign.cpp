#include "portage/gpkg_sign.hpp"

#include <chrono>
#include <vector>

#include <fmt/format.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "portage/tar.hpp"

namespace swarm::portage {

namespace {

// Hashes what passes through it.
class HashingSource : public stream::ByteSource {
public:
  HashingSource(stream::ByteSource& inner, hash::MultiHasher& hasher) : m_inner(inner), m_hasher(hasher) {}
  Result<size_t> read(char* buffer, size_t size) override
  {
    auto got = m_inner.read(buffer, size);
    if (got && *got > 0) {
      m_hasher.update(buffer, *got);
    }
    return got;
  }

private:
  stream::ByteSource& m_inner;
  hash::MultiHasher& m_hasher;
};

class WriterSink : public stream::ByteSink {
public:
  explicit WriterSink(fs::AtomicFileWriter& writer) : m_writer(writer) {}
  Result<> write(const char* data, size_t size) override { return m_writer.write(std::string_view(data, size)); }
  using ByteSink::write;

private:
  fs::AtomicFileWriter& m_writer;
};

std::string member_basename(const std::string& name)
{
  const auto slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

std::string manifest_line(const std::string& name, uint64_t size, const hash::Digests& digests)
{
  return fmt::format("DATA {} {} BLAKE2B {} SHA512 {}\n", name, size, digests.at(hash::Algo::blake2b),
                     digests.at(hash::Algo::sha512));
}

struct Planned {
  const TarMember* member = nullptr; // nullptr: a signature made here
  std::string name;                  // basename
  std::string content;               // for signatures and the Manifest
};

} // namespace

Result<> sign_gpkg(const std::filesystem::path& path, const SignFunction& sign)
{
  auto file = stream::File::open_read(path);
  if (!file) {
    return fail(file.error());
  }
  auto listing = list_tar_file(*file);
  if (!listing) {
    return fail(listing.error());
  }
  std::string dir;
  bool has_marker = false;
  for (const auto& member : listing->members) {
    const auto slash = member.name.find('/');
    if (slash == std::string::npos || slash == 0 || member.name.find('/', slash + 1) != std::string::npos ||
        member.type != TarEntryType::regular) {
      return fail(ErrorKind::invalid, "{}: member '{}' is not a file in the package directory", path.string(),
                  member.name);
    }
    const auto member_dir = member.name.substr(0, slash);
    if (!dir.empty() && member_dir != dir) {
      return fail(ErrorKind::invalid, "{}: members in more than one directory", path.string());
    }
    dir = member_dir;
    has_marker = has_marker || member_basename(member.name) == "gpkg-1";
  }
  if (!has_marker) {
    return fail(ErrorKind::invalid, "{} is not a GPKG (no gpkg-1 member)", path.string());
  }

  // Members in their order, each but gpkg-1 followed by its new signature; old signatures and the
  // Manifest are dropped (the Manifest is written anew, last).
  std::vector<Planned> planned;
  std::string manifest;
  for (const auto& member : listing->members) {
    const auto base = member_basename(member.name);
    if (base == "Manifest" || base.ends_with(".sig")) {
      continue;
    }
    hash::MultiHasher hasher({hash::Algo::blake2b, hash::Algo::sha512});
    stream::FileRangeSource range(*file, member.data_offset, member.size);
    HashingSource hashing(range, hasher);
    std::string signature;
    if (base != "gpkg-1") {
      auto signed_data = sign(hashing, false);
      if (!signed_data) {
        return fail(ErrorKind::io, "signing {} of {}: {}", base, path.string(), signed_data.error().message);
      }
      signature = std::move(*signed_data);
    }
    // Whatever the signer left unread still counts for the digests.
    std::vector<char> buffer(1 << 16);
    while (true) {
      auto got = hashing.read(buffer.data(), buffer.size());
      if (!got) {
        return fail(got.error());
      }
      if (*got == 0) {
        break;
      }
    }
    if (hasher.bytes() != member.size) {
      return fail(ErrorKind::io, "{}: read {} of {} bytes of {}", path.string(), hasher.bytes(), member.size, base);
    }
    manifest += manifest_line(base, member.size, hasher.finish());
    planned.push_back({&member, base, {}});
    if (base != "gpkg-1") {
      const auto sig_name = base + ".sig";
      manifest += manifest_line(sig_name, signature.size(),
                                hash::hash_bytes(signature, {hash::Algo::blake2b, hash::Algo::sha512}));
      planned.push_back({nullptr, sig_name, std::move(signature)});
    }
  }
  stream::StringSource manifest_source(manifest);
  auto signed_manifest = sign(manifest_source, true);
  if (!signed_manifest) {
    return fail(ErrorKind::io, "signing the Manifest of {}: {}", path.string(), signed_manifest.error().message);
  }
  planned.push_back({nullptr, "Manifest", std::move(*signed_manifest)});

  // Portage writes ustar unless a name or size does not fit (then GNU).
  bool ustar = listing->format != TarFormat::gnu;
  for (const auto& item : planned) {
    const auto full = dir + "/" + item.name;
    const uint64_t size = item.member != nullptr ? item.member->size : item.content.size();
    ustar = ustar && full.size() < 100 && size < 8'000'000'000ull;
  }
  auto writer = fs::AtomicFileWriter::create(path, 0644);
  if (!writer) {
    return fail(writer.error());
  }
  WriterSink sink(*writer);
  TarWriter outer(sink, ustar ? TarDialect::ustar : TarDialect::gnu);
  const auto now =
    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const auto& item : planned) {
    TarWriteEntry entry;
    entry.name = dir + "/" + item.name;
    entry.mode = 0644;
    entry.mtime = item.member != nullptr && item.member->mtime != 0 ? item.member->mtime : now;
    if (item.member != nullptr) {
      entry.size = item.member->size;
      stream::FileRangeSource range(*file, item.member->data_offset, item.member->size);
      if (auto added = outer.add_stream(entry, range); !added) {
        return added;
      }
    } else if (auto added = outer.add(entry, item.content); !added) {
      return added;
    }
  }
  if (auto done = outer.finish(); !done) {
    return done;
  }
  return writer->commit();
}

} // namespace swarm::portage
