#include "core/openpgp.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

#include <gpgme.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.hpp"
#include "core/hash.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"

namespace swarm::openpgp {

namespace {

constexpr const char* k_active_file = "swarm-signing-key";
// Longest socket name gpg-agent puts in its home ("S.gpg-agent.browser"), and the room a Unix
// socket address has (108 bytes with the terminating NUL).
constexpr size_t k_socket_name = 20;
constexpr size_t k_socket_room = 107;

void init_gpgme()
{
  static std::once_flag once;
  std::call_once(once, [] {
    gpgme_check_version(nullptr);
    gpgme_set_locale(nullptr, LC_CTYPE, "C");
  });
}

std::string error_text(gpgme_error_t error)
{
  return gpgme_strerror(error);
}

// A GPGME context on a home directory, released on destruction.
class Context {
public:
  Context() = default;
  ~Context()
  {
    if (m_ctx != nullptr) {
      gpgme_release(m_ctx);
    }
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Result<> open(const std::filesystem::path& home)
  {
    init_gpgme();
    if (auto error = gpgme_new(&m_ctx); error != 0) {
      return fail(ErrorKind::internal, "GPGME: {}", error_text(error));
    }
    gpgme_set_protocol(m_ctx, GPGME_PROTOCOL_OpenPGP);
    if (auto error = gpgme_ctx_set_engine_info(m_ctx, GPGME_PROTOCOL_OpenPGP, nullptr, home.c_str()); error != 0) {
      return fail(ErrorKind::internal, "GPGME cannot use {}: {}", home.string(), error_text(error));
    }
    gpgme_set_armor(m_ctx, 1);
    gpgme_set_offline(m_ctx, 1);
    // No passphrase ever: never ask a pinentry.
    gpgme_set_pinentry_mode(m_ctx, GPGME_PINENTRY_MODE_LOOPBACK);
    return {};
  }
  gpgme_ctx_t get() const { return m_ctx; }

private:
  gpgme_ctx_t m_ctx = nullptr;
};

// A GPGME data object, released on destruction.
struct Data {
  gpgme_data_t data = nullptr;
  ~Data()
  {
    if (data != nullptr) {
      gpgme_data_release(data);
    }
  }
  // Takes the memory of an output buffer.
  std::string take()
  {
    size_t length = 0;
    char* memory = gpgme_data_release_and_get_mem(data, &length);
    data = nullptr;
    std::string out(memory != nullptr ? memory : "", memory != nullptr ? length : 0);
    gpgme_free(memory);
    return out;
  }
};

struct KeyRef {
  gpgme_key_t key = nullptr;
  ~KeyRef()
  {
    if (key != nullptr) {
      gpgme_key_unref(key);
    }
  }
};

// Feeds a ByteSource to GPGME; an error of the source ends the read with EIO.
struct SourceFeed {
  stream::ByteSource* source = nullptr;
  std::optional<Error> error;
};

ssize_t feed_read(void* handle, void* buffer, size_t size)
{
  auto* feed = static_cast<SourceFeed*>(handle);
  auto got = feed->source->read(static_cast<char*>(buffer), size);
  if (!got) {
    feed->error = got.error();
    errno = EIO;
    return -1;
  }
  return static_cast<ssize_t>(*got);
}

KeyInfo key_info(gpgme_key_t key)
{
  KeyInfo info;
  if (key->subkeys != nullptr) {
    info.fingerprint = key->subkeys->fpr != nullptr ? key->subkeys->fpr : "";
    info.created = key->subkeys->timestamp;
    info.expires = key->subkeys->expires;
    if (char* algo = gpgme_pubkey_algo_string(key->subkeys); algo != nullptr) {
      info.algorithm = algo;
      gpgme_free(algo);
    }
  }
  if (key->uids != nullptr && key->uids->uid != nullptr) {
    info.uid = key->uids->uid;
  }
  info.expired = key->expired != 0;
  info.revoked = key->revoked != 0;
  return info;
}

// The directory gpg is given for `home`: `home` itself when its sockets fit in a socket address,
// else a symlink /tmp/swarm-gpg-HASH → home (created or checked).
Result<std::filesystem::path> engine_home_for(const std::filesystem::path& home)
{
  if (home.string().size() + 1 + k_socket_name <= k_socket_room) {
    return home;
  }
  const auto alias =
    std::filesystem::path("/tmp") / ("swarm-gpg-" + hash::hex_digest(hash::Algo::sha256, home.string()).substr(0, 16));
  std::error_code ec;
  struct stat info {};
  if (::lstat(alias.c_str(), &info) == 0) {
    if (S_ISLNK(info.st_mode) && info.st_uid == ::geteuid() && std::filesystem::read_symlink(alias, ec) == home) {
      return alias;
    }
    if (!S_ISLNK(info.st_mode) || info.st_uid != ::geteuid()) {
      return fail(ErrorKind::io, "{} (the short name of the GnuPG home {}) is taken by something else", alias.string(),
                  home.string());
    }
    std::filesystem::remove(alias, ec);
  }
  std::filesystem::create_directory_symlink(home, alias, ec);
  if (ec && ec != std::errc::file_exists) {
    return fail(ErrorKind::io, "cannot create {} for the GnuPG home: {}", alias.string(), ec.message());
  }
  return alias;
}

} // namespace

std::string normalize_fingerprint(std::string_view text)
{
  std::string out;
  std::string_view rest = strings::trim(text);
  if (rest.starts_with("0x") || rest.starts_with("0X")) {
    rest.remove_prefix(2);
  }
  for (const char c : rest) {
    if (c == ' ') {
      continue;
    }
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return {};
    }
    out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return out.size() == 40 ? out : std::string();
}

Keyring::Keyring(std::filesystem::path home, std::filesystem::path engine_home)
    : m_home(std::move(home)), m_engine_home(std::move(engine_home))
{}

Keyring::~Keyring() = default;

Result<std::unique_ptr<Keyring>> Keyring::open(const std::filesystem::path& home_in, bool create)
{
  std::error_code ec;
  const auto home = std::filesystem::absolute(home_in, ec).lexically_normal();
  if (!std::filesystem::is_directory(home, ec)) {
    if (!create) {
      return fail(ErrorKind::not_found, "no binhost keyring in {} (create a key with `swarm key create`)",
                  home.string());
    }
    if (auto made = fs::make_dirs(home); !made) {
      return fail(made.error());
    }
  }
  if (create) {
    ::chmod(home.c_str(), 0700);
    // Portage signs with SHA-512 (BINPKG_GPG_SIGNING_DIGEST); so does this home.
    const auto conf = home / "gpg.conf";
    if (!std::filesystem::exists(conf, ec)) {
      if (auto written = fs::write_file_atomic(conf, "digest-algo SHA512\ncert-digest-algo SHA512\n", 0600); !written) {
        return fail(written.error());
      }
    }
  }
  auto engine_home = engine_home_for(home);
  if (!engine_home) {
    return fail(engine_home.error());
  }
  return std::unique_ptr<Keyring>(new Keyring(home, *engine_home));
}

Result<KeyInfo> Keyring::create_key(const std::string& name, const std::string& email, const std::string& algorithm,
                                    int expire_days)
{
  if (algorithm != "ed25519" && algorithm != "rsa4096") {
    return fail(ErrorKind::invalid, "key algorithm '{}' is not ed25519 or rsa4096", algorithm);
  }
  if (strings::trim(name).empty() || email.find('@') == std::string::npos ||
      (name + email).find_first_of("<>\n\r") != std::string::npos) {
    return fail(ErrorKind::invalid, "a key needs a --name and an --email (NAME <user@host>)");
  }
  if (expire_days < 0) {
    return fail(ErrorKind::invalid, "--expire-days must be 0 (never) or more");
  }
  std::string fingerprint;
  {
    std::lock_guard lock(m_mutex);
    Context ctx;
    if (auto opened = ctx.open(m_engine_home); !opened) {
      return fail(opened.error());
    }
    const auto uid = fmt::format("{} <{}>", strings::trim(name), email);
    unsigned flags = GPGME_CREATE_SIGN | GPGME_CREATE_NOPASSWD | GPGME_CREATE_FORCE;
    if (expire_days == 0) {
      flags |= GPGME_CREATE_NOEXPIRE;
    }
    const auto expires = static_cast<unsigned long>(expire_days) * 86400ul;
    if (auto error = gpgme_op_createkey(ctx.get(), uid.c_str(), algorithm.c_str(), 0, expires, nullptr, flags);
        error != 0) {
      return fail(ErrorKind::io, "cannot create the key: {}", error_text(error));
    }
    gpgme_genkey_result_t result = gpgme_op_genkey_result(ctx.get());
    if (result == nullptr || result->fpr == nullptr) {
      return fail(ErrorKind::io, "gpg created no key");
    }
    fingerprint = result->fpr;
  }
  if (auto activated = activate(fingerprint); !activated) {
    return fail(activated.error());
  }
  auto all = keys();
  if (!all) {
    return fail(all.error());
  }
  for (auto& key : *all) {
    if (key.fingerprint == fingerprint) {
      return key;
    }
  }
  return fail(ErrorKind::io, "the new key {} is not in the keyring", fingerprint);
}

Result<std::vector<KeyInfo>> Keyring::keys()
{
  std::lock_guard lock(m_mutex);
  Context ctx;
  if (auto opened = ctx.open(m_engine_home); !opened) {
    return fail(opened.error());
  }
  std::vector<std::string> secret;
  std::vector<KeyInfo> out;
  for (const int secret_only : {1, 0}) {
    if (auto error = gpgme_op_keylist_start(ctx.get(), nullptr, secret_only); error != 0) {
      return fail(ErrorKind::io, "cannot list the keys of {}: {}", m_home.string(), error_text(error));
    }
    while (true) {
      gpgme_key_t key = nullptr;
      const auto error = gpgme_op_keylist_next(ctx.get(), &key);
      if (gpgme_err_code(error) == GPG_ERR_EOF) {
        break;
      }
      if (error != 0) {
        return fail(ErrorKind::io, "cannot list the keys of {}: {}", m_home.string(), error_text(error));
      }
      KeyRef ref{key};
      auto info = key_info(key);
      if (secret_only != 0) {
        secret.push_back(info.fingerprint);
      } else {
        info.has_secret = std::find(secret.begin(), secret.end(), info.fingerprint) != secret.end();
        out.push_back(std::move(info));
      }
    }
    gpgme_op_keylist_end(ctx.get());
  }
  const auto recorded = normalize_fingerprint(fs::read_first_line(m_home / k_active_file));
  const KeyInfo* active = nullptr;
  for (const auto& key : out) {
    if (!key.has_secret || key.expired || key.revoked) {
      continue;
    }
    if (key.fingerprint == recorded) {
      active = &key;
      break;
    }
    if (recorded.empty() && (active == nullptr || key.created > active->created)) {
      active = &key;
    }
  }
  for (auto& key : out) {
    key.active = active != nullptr && &key == active;
  }
  return out;
}

Result<std::optional<KeyInfo>> Keyring::signing_key()
{
  auto all = keys();
  if (!all) {
    return fail(all.error());
  }
  for (const auto& key : *all) {
    if (key.active) {
      return key;
    }
  }
  return std::optional<KeyInfo>();
}

Result<> Keyring::activate(const std::string& fingerprint_in)
{
  const auto fingerprint = normalize_fingerprint(fingerprint_in);
  auto all = keys();
  if (!all) {
    return fail(all.error());
  }
  for (const auto& key : *all) {
    if (key.fingerprint == fingerprint && key.has_secret) {
      return fs::write_file_atomic(m_home / k_active_file, fingerprint + "\n", 0600);
    }
  }
  return fail(ErrorKind::not_found, "no secret key {} in {}", fingerprint_in, m_home.string());
}

Result<> Keyring::remove_key(const std::string& fingerprint_in)
{
  const auto fingerprint = normalize_fingerprint(fingerprint_in);
  auto active = signing_key();
  if (!active) {
    return fail(active.error());
  }
  if (*active && (*active)->fingerprint == fingerprint) {
    return fail(ErrorKind::conflict, "{} is the active signing key: create or activate another one first", fingerprint);
  }
  std::lock_guard lock(m_mutex);
  Context ctx;
  if (auto opened = ctx.open(m_engine_home); !opened) {
    return fail(opened.error());
  }
  KeyRef ref;
  if (fingerprint.empty() || gpgme_get_key(ctx.get(), fingerprint.c_str(), &ref.key, 0) != 0 || ref.key == nullptr) {
    return fail(ErrorKind::not_found, "no key {} in {}", fingerprint_in, m_home.string());
  }
  if (auto error = gpgme_op_delete_ext(ctx.get(), ref.key, GPGME_DELETE_ALLOW_SECRET | GPGME_DELETE_FORCE);
      error != 0) {
    return fail(ErrorKind::io, "cannot remove {}: {}", fingerprint, error_text(error));
  }
  return {};
}

Result<std::string> Keyring::export_public(const std::vector<std::string>& fingerprints)
{
  std::lock_guard lock(m_mutex);
  Context ctx;
  if (auto opened = ctx.open(m_engine_home); !opened) {
    return fail(opened.error());
  }
  Data out;
  if (auto error = gpgme_data_new(&out.data); error != 0) {
    return fail(ErrorKind::internal, "GPGME: {}", error_text(error));
  }
  std::vector<const char*> patterns;
  for (const auto& fingerprint : fingerprints) {
    patterns.push_back(fingerprint.c_str());
  }
  patterns.push_back(nullptr);
  if (auto error = gpgme_op_export_ext(ctx.get(), fingerprints.empty() ? nullptr : patterns.data(), 0, out.data);
      error != 0) {
    return fail(ErrorKind::io, "cannot export the public keys: {}", error_text(error));
  }
  auto text = out.take();
  if (text.empty()) {
    return fail(ErrorKind::not_found, "no public key to export in {}", m_home.string());
  }
  return text;
}

Result<std::string> Keyring::sign(stream::ByteSource& source, SignMode mode, const std::string& fingerprint)
{
  std::lock_guard lock(m_mutex);
  Context ctx;
  if (auto opened = ctx.open(m_engine_home); !opened) {
    return fail(opened.error());
  }
  KeyRef key;
  if (auto error = gpgme_get_key(ctx.get(), fingerprint.c_str(), &key.key, 1); error != 0 || key.key == nullptr) {
    return fail(ErrorKind::not_found, "no secret key {} in {}", fingerprint, m_home.string());
  }
  gpgme_signers_clear(ctx.get());
  if (auto error = gpgme_signers_add(ctx.get(), key.key); error != 0) {
    return fail(ErrorKind::io, "signing key {}: {}", fingerprint, error_text(error));
  }
  SourceFeed feed{&source, std::nullopt};
  gpgme_data_cbs callbacks{};
  callbacks.read = feed_read;
  Data in;
  Data out;
  if (auto error = gpgme_data_new_from_cbs(&in.data, &callbacks, &feed); error != 0) {
    return fail(ErrorKind::internal, "GPGME: {}", error_text(error));
  }
  if (auto error = gpgme_data_new(&out.data); error != 0) {
    return fail(ErrorKind::internal, "GPGME: {}", error_text(error));
  }
  const auto error =
    gpgme_op_sign(ctx.get(), in.data, out.data, mode == SignMode::clear ? GPGME_SIG_MODE_CLEAR : GPGME_SIG_MODE_DETACH);
  if (feed.error) {
    return fail(*feed.error);
  }
  if (error != 0) {
    return fail(ErrorKind::io, "gpg could not sign: {}", error_text(error));
  }
  gpgme_sign_result_t result = gpgme_op_sign_result(ctx.get());
  if (result == nullptr || result->signatures == nullptr || result->invalid_signers != nullptr) {
    return fail(ErrorKind::io, "gpg made no signature with {}", fingerprint);
  }
  return out.take();
}

void Keyring::stop_agent()
{
  std::error_code ec;
  if (!std::filesystem::exists(m_home / "S.gpg-agent", ec)) {
    return;
  }
  (void)subprocess::run_capture({"gpgconf", "--homedir", m_engine_home.string(), "--kill", "gpg-agent"});
  // The agent removes its socket as it exits: wait for that (bounded), so that no agent is
  // still running when the caller goes on.
  for (int i = 0; i < 250 && std::filesystem::exists(m_home / "S.gpg-agent", ec); ++i) {
    ::usleep(20'000);
  }
}

} // namespace swarm::openpgp
