#include "core/hash.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "core/strings.hpp"

namespace swarm::hash {

namespace {

const EVP_MD* evp_for(Algo algo)
{
  switch (algo) {
  case Algo::md5:
    return EVP_md5();
  case Algo::sha1:
    return EVP_sha1();
  case Algo::sha256:
    return EVP_sha256();
  case Algo::sha512:
    return EVP_sha512();
  case Algo::blake2b:
    return EVP_blake2b512();
  case Algo::xxh3_128:
    return nullptr;
  }
  return nullptr;
}

std::string lower(std::string_view text)
{
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

} // namespace

std::string_view algo_name(Algo algo)
{
  switch (algo) {
  case Algo::md5:
    return "md5";
  case Algo::sha1:
    return "sha1";
  case Algo::sha256:
    return "sha256";
  case Algo::sha512:
    return "sha512";
  case Algo::blake2b:
    return "blake2b";
  case Algo::xxh3_128:
    return "xxh3-128";
  }
  return "?";
}

std::optional<Algo> algo_from_name(std::string_view name)
{
  const auto key = lower(name);
  for (auto algo : {Algo::md5, Algo::sha1, Algo::sha256, Algo::sha512, Algo::blake2b, Algo::xxh3_128}) {
    if (key == algo_name(algo)) {
      return algo;
    }
  }
  if (key == "xxh3_128" || key == "xxh128") {
    return Algo::xxh3_128;
  }
  if (key == "blake2b512" || key == "blake2b-512") {
    return Algo::blake2b;
  }
  return std::nullopt;
}

size_t hex_length(Algo algo)
{
  switch (algo) {
  case Algo::md5:
  case Algo::xxh3_128:
    return 32;
  case Algo::sha1:
    return 40;
  case Algo::sha256:
    return 64;
  case Algo::sha512:
  case Algo::blake2b:
    return 128;
  }
  return 0;
}

// One digest in progress: either an OpenSSL context or an XXH3 state.
struct MultiHasher::State {
  Algo algo;
  EVP_MD_CTX* evp = nullptr;
  XXH3_state_t* xxh = nullptr;

  explicit State(Algo a) : algo(a)
  {
    if (algo == Algo::xxh3_128) {
      xxh = XXH3_createState();
      if (xxh == nullptr || XXH3_128bits_reset(xxh) == XXH_ERROR) {
        throw Fatal{Error{ErrorKind::internal, "cannot initialise XXH3-128"}};
      }
      return;
    }
    evp = EVP_MD_CTX_new();
    if (evp == nullptr || EVP_DigestInit_ex(evp, evp_for(algo), nullptr) != 1) {
      throw Fatal{Error{ErrorKind::internal, fmt::format("cannot initialise {}", algo_name(algo))}};
    }
  }
  ~State()
  {
    if (evp != nullptr) {
      EVP_MD_CTX_free(evp);
    }
    if (xxh != nullptr) {
      XXH3_freeState(xxh);
    }
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  void update(const void* data, size_t size)
  {
    if (xxh != nullptr) {
      XXH3_128bits_update(xxh, data, size);
    } else {
      EVP_DigestUpdate(evp, data, size);
    }
  }

  std::string finish()
  {
    if (xxh != nullptr) {
      // The canonical (big-endian) form is what `xxhsum -H128` prints.
      XXH128_canonical_t canonical;
      XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(xxh));
      return strings::to_hex(canonical.digest, sizeof canonical.digest);
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_DigestFinal_ex(evp, out, &size);
    return strings::to_hex(out, size);
  }
};

MultiHasher::MultiHasher(const std::vector<Algo>& algos)
{
  for (auto algo : algos) {
    const bool seen = std::any_of(m_states.begin(), m_states.end(), [algo](const auto& s) { return s->algo == algo; });
    if (!seen) {
      m_states.push_back(std::make_unique<State>(algo));
    }
  }
}

MultiHasher::~MultiHasher() = default;
MultiHasher::MultiHasher(MultiHasher&&) noexcept = default;
MultiHasher& MultiHasher::operator=(MultiHasher&&) noexcept = default;

void MultiHasher::update(const void* data, size_t size)
{
  m_bytes += size;
  for (auto& state : m_states) {
    state->update(data, size);
  }
}

Digests MultiHasher::finish()
{
  Digests out;
  for (auto& state : m_states) {
    out[state->algo] = state->finish();
  }
  m_states.clear();
  return out;
}

Digests hash_bytes(std::string_view data, const std::vector<Algo>& algos)
{
  MultiHasher hasher(algos);
  hasher.update(data);
  return hasher.finish();
}

std::string hex_digest(Algo algo, std::string_view data)
{
  return hash_bytes(data, {algo}).at(algo);
}

Result<Digests> hash_file(const std::filesystem::path& path, const std::vector<Algo>& algos)
{
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(ErrorKind::io, "cannot open {}: {}", path.string(), std::strerror(errno));
  }
  MultiHasher hasher(algos);
  std::vector<char> buffer(1 << 20);
  while (true) {
    const auto got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int saved = errno;
      ::close(fd);
      return fail(ErrorKind::io, "cannot read {}: {}", path.string(), std::strerror(saved));
    }
    if (got == 0) {
      break;
    }
    hasher.update(buffer.data(), static_cast<size_t>(got));
  }
  ::close(fd);
  return hasher.finish();
}

} // namespace swarm::hash
