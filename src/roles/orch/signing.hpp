#pragma once
// The signed binhost (docs/signing.md): the orchestrator's OpenPGP keyring lives in
// DATA_DIR/gnupg (0700); when it holds a signing key, every accepted GPKG is signed there, as
// Portage signs (portage/gpkg_sign.hpp), before it enters staging and the Packages index. Drones
// never see the key. orch.signing: auto (sign when a key exists), on (refuse uploads without a
// key), off.

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/error.hpp"

namespace swarm::openpgp {
class Keyring;
}

namespace swarm::roles::orch {

// DATA_DIR/gnupg.
std::filesystem::path keyring_dir(const std::filesystem::path& data_dir);

class BinhostSigner {
public:
  enum class Mode { automatic, on, off };
  // Parses orch.signing ("auto", "on", "off").
  static Result<Mode> parse_mode(const std::string& text);

  BinhostSigner(std::filesystem::path data_dir, Mode mode);
  ~BinhostSigner();
  BinhostSigner(const BinhostSigner&) = delete;
  BinhostSigner& operator=(const BinhostSigner&) = delete;

  // The fingerprint packages are signed with now; nullopt when the binhost does not sign (no
  // key, or orch.signing off). With orch.signing on and no key: an error.
  Result<std::optional<std::string>> active_key();
  // Signs the GPKG at `path` in place (atomically) with the active key; a no-op returning false
  // when the binhost does not sign.
  Result<bool> sign(const std::filesystem::path& path);
  // The GnuPG home that verifies this binhost's packages (its keyring), when it signs.
  std::optional<std::filesystem::path> verify_home();
  // Every public key of the keyring, armoured (what clients import); not_found without keys.
  Result<std::string> public_keys();
  // Ends the gpg-agent the signing started (at shutdown).
  void stop();

private:
  Result<openpgp::Keyring*> keyring();
  std::filesystem::path m_data_dir;
  Mode m_mode;
  std::mutex m_mutex;
  std::unique_ptr<openpgp::Keyring> m_keyring;
  std::optional<std::string> m_active; // cached fingerprint
  std::string m_active_stamp;          // what the cache was computed from
};

} // namespace swarm::roles::orch
