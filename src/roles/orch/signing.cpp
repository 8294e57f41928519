#include "roles/orch/signing.hpp"

#include <sys/stat.h>

#include "core/byte_stream.hpp"
#include "core/log.hpp"
#include "core/openpgp.hpp"
#include "portage/gpkg_sign.hpp"

namespace swarm::roles::orch {

namespace {

// What the active key depends on: the recorded choice and the keyring's content.
std::string keyring_stamp(const std::filesystem::path& home)
{
  std::string stamp;
  for (const auto* name : {"swarm-signing-key", "pubring.kbx", "private-keys-v1.d"}) {
    struct stat info {};
    if (::stat((home / name).c_str(), &info) == 0) {
      stamp += fmt::format("{}:{}.{}:{};", name, info.st_mtim.tv_sec, info.st_mtim.tv_nsec, info.st_size);
    } else {
      stamp += std::string(name) + ":-;";
    }
  }
  return stamp;
}

} // namespace

std::filesystem::path keyring_dir(const std::filesystem::path& data_dir)
{
  return data_dir / "gnupg";
}

Result<BinhostSigner::Mode> BinhostSigner::parse_mode(const std::string& text)
{
  if (text.empty() || text == "auto") {
    return Mode::automatic;
  }
  if (text == "on" || text == "true" || text == "yes") {
    return Mode::on;
  }
  if (text == "off" || text == "false" || text == "no") {
    return Mode::off;
  }
  return fail(ErrorKind::invalid, "orch.signing must be auto, on or off, not '{}'", text);
}

BinhostSigner::BinhostSigner(std::filesystem::path data_dir, Mode mode) : m_data_dir(std::move(data_dir)), m_mode(mode)
{}

BinhostSigner::~BinhostSigner()
{
  stop();
}

Result<openpgp::Keyring*> BinhostSigner::keyring()
{
  if (!m_keyring) {
    auto opened = openpgp::Keyring::open(keyring_dir(m_data_dir), false);
    if (!opened) {
      return fail(opened.error());
    }
    m_keyring = std::move(*opened);
  }
  return m_keyring.get();
}

Result<std::optional<std::string>> BinhostSigner::active_key()
{
  if (m_mode == Mode::off) {
    return std::optional<std::string>();
  }
  std::lock_guard lock(m_mutex);
  const auto home = keyring_dir(m_data_dir);
  std::error_code ec;
  if (!std::filesystem::is_directory(home, ec)) {
    if (m_mode == Mode::on) {
      return fail(ErrorKind::unavailable, "orch.signing is on but there is no binhost key (run `swarm key create`)");
    }
    return std::optional<std::string>();
  }
  const auto stamp = keyring_stamp(home);
  if (stamp != m_active_stamp) {
    auto ring = keyring();
    if (!ring) {
      return fail(ring.error());
    }
    auto key = (*ring)->signing_key();
    if (!key) {
      return fail(key.error());
    }
    m_active = *key ? std::optional<std::string>((*key)->fingerprint) : std::nullopt;
    m_active_stamp = stamp;
    if (m_active) {
      LOG_INFO("signing binary packages with OpenPGP key {}", *m_active);
    }
  }
  if (!m_active && m_mode == Mode::on) {
    return fail(ErrorKind::unavailable, "orch.signing is on but {} holds no usable signing key", home.string());
  }
  return m_active;
}

Result<bool> BinhostSigner::sign(const std::filesystem::path& path)
{
  auto key = active_key();
  if (!key) {
    return fail(key.error());
  }
  if (!*key) {
    return false;
  }
  openpgp::Keyring* ring = nullptr;
  {
    std::lock_guard lock(m_mutex);
    auto opened = keyring();
    if (!opened) {
      return fail(opened.error());
    }
    ring = *opened;
  }
  const auto fingerprint = **key;
  auto signed_ok = portage::sign_gpkg(path, [&](stream::ByteSource& data, bool clear) {
    return ring->sign(data, clear ? openpgp::SignMode::clear : openpgp::SignMode::detached, fingerprint);
  });
  if (!signed_ok) {
    return fail(signed_ok.error());
  }
  return true;
}

std::optional<std::filesystem::path> BinhostSigner::verify_home()
{
  auto key = active_key();
  if (!key || !*key) {
    return std::nullopt;
  }
  return keyring_dir(m_data_dir);
}

Result<std::string> BinhostSigner::public_keys()
{
  std::lock_guard lock(m_mutex);
  std::error_code ec;
  if (!std::filesystem::is_directory(keyring_dir(m_data_dir), ec)) {
    return fail(ErrorKind::not_found, "this binhost has no signing key");
  }
  auto ring = keyring();
  if (!ring) {
    return fail(ring.error());
  }
  return (*ring)->export_public();
}

void BinhostSigner::stop()
{
  std::lock_guard lock(m_mutex);
  if (m_keyring) {
    m_keyring->stop_agent();
  }
}

} // namespace swarm::roles::orch
