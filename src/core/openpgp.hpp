#pragma once
// The binhost's OpenPGP keyring: a private GnuPG home (0700) driven through GPGME. It creates the
// signing key (no passphrase), lists and exports the keys, signs data (armoured detached or
// clear-signed, SHA-512, as Portage's binpkg-signing does) and stops the gpg-agent it started.
//
// gpg-agent puts its sockets in the home directory and a Unix socket path is at most 107 bytes:
// a longer home is reached through a short symlink in the temporary directory.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/byte_stream.hpp"
#include "core/error.hpp"

namespace swarm::openpgp {

struct KeyInfo {
  std::string fingerprint;
  std::string uid;       // "Name <email>"
  std::string algorithm; // "ed25519", "rsa4096"
  int64_t created = 0;   // epoch seconds
  int64_t expires = 0;   // epoch seconds; 0: never
  bool has_secret = false;
  bool expired = false;
  bool revoked = false;
  bool active = false; // the key the binhost signs with
};

enum class SignMode { detached, clear };

class Keyring {
public:
  // Opens (creating it 0700 when `create`) the GnuPG home `home`. Fails if it does not exist
  // and `create` is false.
  static Result<std::unique_ptr<Keyring>> open(const std::filesystem::path& home, bool create);
  ~Keyring();
  Keyring(const Keyring&) = delete;
  Keyring& operator=(const Keyring&) = delete;

  // A new key without passphrase, able to sign: algorithm "ed25519" or "rsa4096"; expires after
  // `expire_days` (0: never). It becomes the active signing key.
  Result<KeyInfo> create_key(const std::string& name, const std::string& email, const std::string& algorithm,
                             int expire_days);
  // Every key of the keyring (public keys, with has_secret for our own).
  Result<std::vector<KeyInfo>> keys();
  // The key the binhost signs with: the one recorded by create_key/activate, else the newest
  // usable secret key; nullopt when there is none.
  Result<std::optional<KeyInfo>> signing_key();
  // Makes `fingerprint` (a secret key of this keyring) the signing key.
  Result<> activate(const std::string& fingerprint);
  // Removes a key that is not the active one (public and secret parts).
  Result<> remove_key(const std::string& fingerprint);
  // Armoured public keys: all of them (empty list) or the given fingerprints.
  Result<std::string> export_public(const std::vector<std::string>& fingerprints = {});
  // Armoured signature of everything `data` yields, by the secret key `fingerprint` (see
  // signing_key()).
  Result<std::string> sign(stream::ByteSource& data, SignMode mode, const std::string& fingerprint);

  // Ends the gpg-agent of this home, if one runs (`gpgconf --kill gpg-agent`).
  void stop_agent();

  const std::filesystem::path& home() const { return m_home; }

private:
  explicit Keyring(std::filesystem::path home, std::filesystem::path engine_home);
  std::filesystem::path m_home;        // the real directory
  std::filesystem::path m_engine_home; // what gpg is given (a short alias of a long m_home)
  std::mutex m_mutex;
};

// "0x…" or spaces removed, upper case; empty when `text` is not 40 hex digits (v4 fingerprint).
std::string normalize_fingerprint(std::string_view text);

} // namespace swarm::openpgp
