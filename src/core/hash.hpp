#pragma once
// Message digests (OpenSSL EVP: MD5, SHA-1, SHA-256, SHA-512, BLAKE2b-512; xxHash XXH3-128 for
// transport integrity), computed several at once over a stream of chunks. Hex output.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace swarm::hash {

enum class Algo { md5, sha1, sha256, sha512, blake2b, xxh3_128 };

// Algorithm → lower-case hex digest.
using Digests = std::map<Algo, std::string>;

// "md5", "sha1", "sha256", "sha512", "blake2b", "xxh3-128".
std::string_view algo_name(Algo algo);
// Case-insensitive inverse of algo_name ("BLAKE2B", "SHA512", "xxh3_128" also accepted).
std::optional<Algo> algo_from_name(std::string_view name);
// Length of the hex digest (32 for MD5, 128 for SHA-512 …).
size_t hex_length(Algo algo);

// Feeds the same bytes to several digests: `MultiHasher h({Algo::sha256, Algo::xxh3_128});
// h.update(p, n); auto digests = h.finish();`. finish() may be called once.
class MultiHasher {
public:
  explicit MultiHasher(const std::vector<Algo>& algos);
  ~MultiHasher();
  MultiHasher(MultiHasher&&) noexcept;
  MultiHasher& operator=(MultiHasher&&) noexcept;
  MultiHasher(const MultiHasher&) = delete;
  MultiHasher& operator=(const MultiHasher&) = delete;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // Number of bytes fed so far.
  uint64_t bytes() const { return m_bytes; }
  Digests finish();

private:
  struct State;
  std::vector<std::unique_ptr<State>> m_states;
  uint64_t m_bytes = 0;
};

// Digests of an in-memory buffer.
Digests hash_bytes(std::string_view data, const std::vector<Algo>& algos);
std::string hex_digest(Algo algo, std::string_view data);

// Digests of a file, read in chunks (never whole into memory).
Result<Digests> hash_file(const std::filesystem::path& path, const std::vector<Algo>& algos);

} // namespace swarm::hash
