// `swarm key create|show|export|activate|retire`: the signed binhost's OpenPGP key, on the
// orchestrator's machine, in its data dir (DATA_DIR/gnupg, docs/signing.md).

#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/openpgp.hpp"
#include "roles/orch/signing.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

struct KeyCreateOptions {
  std::string name;
  std::string email;
  std::string algorithm = "ed25519";
  int expire_days = 0;
  bool rotate = false;
  bool json = false;
};

struct KeyShowOptions {
  bool json = false;
};

struct KeyExportOptions {
  std::string output;
};

struct KeyFingerprintOptions {
  std::string fingerprint;
  bool json = false;
};

std::string date_text(int64_t epoch)
{
  return fmt::format("{:%Y-%m-%d}", fmt::gmtime(static_cast<std::time_t>(epoch)));
}

nlohmann::json key_json(const openpgp::KeyInfo& key)
{
  return {{"fingerprint", key.fingerprint},
          {"uid", key.uid},
          {"algorithm", key.algorithm},
          {"created", key.created},
          {"expires", key.expires == 0 ? nlohmann::json(nullptr) : nlohmann::json(key.expires)},
          {"expired", key.expired},
          {"revoked", key.revoked},
          {"secret", key.has_secret},
          {"active", key.active}};
}

void print_key(const openpgp::KeyInfo& key)
{
  fmt::print("{}{}\n", key.fingerprint, key.active ? "  (signs the binhost)" : "");
  fmt::print("  uid:       {}\n", key.uid);
  fmt::print("  algorithm: {}\n", key.algorithm);
  fmt::print("  created:   {}\n", date_text(key.created));
  fmt::print("  expires:   {}{}\n", key.expires == 0 ? std::string("never") : date_text(key.expires),
             key.expired ? " (expired)" : "");
  if (key.revoked) {
    fmt::print("  revoked\n");
  }
  if (!key.has_secret) {
    fmt::print("  public key only (still trusted by clients that import the binhost's keys)\n");
  }
}

// Opens the keyring of the data dir; prints the error and returns nullptr when it cannot.
std::unique_ptr<openpgp::Keyring> open_keyring(const VerbContext& context, bool create)
{
  const std::filesystem::path data_dir = context.config.get("orch.data_dir");
  auto keyring = openpgp::Keyring::open(orch::keyring_dir(data_dir), create);
  if (!keyring) {
    print_error(keyring.error().message);
    return nullptr;
  }
  return std::move(*keyring);
}

// Ends the gpg-agent a verb started, whatever way the verb returns.
struct AgentStop {
  openpgp::Keyring* keyring;
  ~AgentStop()
  {
    if (keyring != nullptr) {
      keyring->stop_agent();
    }
  }
};

int key_create(const VerbContext& context, const KeyCreateOptions& options)
{
  auto keyring = open_keyring(context, true);
  if (!keyring) {
    return exit_code::k_failure;
  }
  AgentStop stop{keyring.get()};
  auto existing = keyring->signing_key();
  if (!existing) {
    print_error(existing.error().message);
    return exit_code::k_failure;
  }
  if (*existing && !options.rotate) {
    print_error(fmt::format("the binhost already has the signing key {} (pass --rotate to make a new one; "
                            "docs/signing.md)",
                            (*existing)->fingerprint));
    return exit_code::k_usage;
  }
  auto key = keyring->create_key(options.name, options.email, options.algorithm, options.expire_days);
  if (!key) {
    print_error(key.error().message);
    return key.error().kind == ErrorKind::invalid ? exit_code::k_usage : exit_code::k_failure;
  }
  if (options.json) {
    fmt::print("{}\n", key_json(*key).dump(2));
  } else {
    fmt::print("created the binhost signing key\n");
    print_key(*key);
    fmt::print("The orchestrator signs every package it accepts from now on. Clients: `swarm client setup` "
               "imports the public key.\n");
  }
  return exit_code::k_ok;
}

int key_show(const VerbContext& context, const KeyShowOptions& options)
{
  auto keyring = open_keyring(context, false);
  if (!keyring) {
    return exit_code::k_failure;
  }
  AgentStop stop{keyring.get()};
  auto keys = keyring->keys();
  if (!keys) {
    print_error(keys.error().message);
    return exit_code::k_failure;
  }
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& key : *keys) {
      list.push_back(key_json(key));
    }
    fmt::print("{}\n", nlohmann::json{{"home", keyring->home().string()}, {"keys", list}}.dump(2));
    return exit_code::k_ok;
  }
  if (keys->empty()) {
    fmt::print("no key in {} (`swarm key create`)\n", keyring->home().string());
    return exit_code::k_ok;
  }
  for (const auto& key : *keys) {
    print_key(key);
  }
  return exit_code::k_ok;
}

int key_export(const VerbContext& context, const KeyExportOptions& options)
{
  auto keyring = open_keyring(context, false);
  if (!keyring) {
    return exit_code::k_failure;
  }
  AgentStop stop{keyring.get()};
  auto text = keyring->export_public();
  if (!text) {
    print_error(text.error().message);
    return exit_code::k_failure;
  }
  if (options.output.empty() || options.output == "-") {
    fmt::print("{}", *text);
    return exit_code::k_ok;
  }
  if (auto written = fs::write_file_atomic(options.output, *text, 0644); !written) {
    print_error(written.error().message);
    return exit_code::k_failure;
  }
  return exit_code::k_ok;
}

int key_change(const VerbContext& context, const KeyFingerprintOptions& options, bool retire)
{
  if (openpgp::normalize_fingerprint(options.fingerprint).empty()) {
    print_error(fmt::format("'{}' is not a key fingerprint (40 hex digits; `swarm key show`)", options.fingerprint));
    return exit_code::k_usage;
  }
  auto keyring = open_keyring(context, false);
  if (!keyring) {
    return exit_code::k_failure;
  }
  AgentStop stop{keyring.get()};
  auto done = retire ? keyring->remove_key(options.fingerprint) : keyring->activate(options.fingerprint);
  if (!done) {
    print_error(done.error().message);
    return done.error().kind == ErrorKind::internal || done.error().kind == ErrorKind::io ? exit_code::k_failure
                                                                                          : exit_code::k_usage;
  }
  const auto fingerprint = openpgp::normalize_fingerprint(options.fingerprint);
  if (options.json) {
    fmt::print("{}\n", nlohmann::json{{"fingerprint", fingerprint}, {retire ? "retired" : "active", true}}.dump());
  } else {
    fmt::print("{} {}\n", fingerprint,
               retire ? "retired (removed from the binhost's keyring)" : "now signs the binhost");
  }
  return exit_code::k_ok;
}

void add_data_dir(CLI::App& app, ConfigFlags& flags)
{
  bind_config_flag(app, flags, "--data-dir", "orch.data_dir");
}

} // namespace

void add_key_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"key", "The signed binhost's OpenPGP key (on the orchestrator's machine)", nullptr, nullptr});
  verbs.push_back(make_verb<KeyCreateOptions>(
    "key create", "Create the binhost's signing key (no passphrase) in the orchestrator's data dir",
    [](CLI::App& app, ConfigFlags& flags, KeyCreateOptions& options) {
      app.add_option("--name", options.name, "Name in the key's user id, e.g. \"Example binhost\"")->required();
      app.add_option("--email", options.email, "Email in the key's user id")->required();
      app.add_option("--algorithm", options.algorithm, "ed25519 (default) or rsa4096")
        ->check(CLI::IsMember({"ed25519", "rsa4096"}));
      app.add_option("--expire-days", options.expire_days, "Days until the key expires (0: never)")
        ->check(CLI::NonNegativeNumber);
      app.add_flag("--rotate", options.rotate, "Add a new key that signs from now on, beside the current one");
      add_data_dir(app, flags);
      add_json_flag(app, options.json);
    },
    key_create));
  verbs.push_back(make_verb<KeyShowOptions>(
    "key show", "Show the binhost's keys: fingerprint, user id, expiry, which one signs",
    [](CLI::App& app, ConfigFlags& flags, KeyShowOptions& options) {
      add_data_dir(app, flags);
      add_json_flag(app, options.json);
    },
    key_show));
  verbs.push_back(make_verb<KeyExportOptions>(
    "key export", "Print the binhost's public key(s), armoured (what clients import)",
    [](CLI::App& app, ConfigFlags& flags, KeyExportOptions& options) {
      app.add_option("-o,--output", options.output, "Write to this file instead of stdout");
      add_data_dir(app, flags);
    },
    key_export));
  verbs.push_back(make_verb<KeyFingerprintOptions>(
    "key activate", "Make another of the binhost's secret keys the one that signs",
    [](CLI::App& app, ConfigFlags& flags, KeyFingerprintOptions& options) {
      app.add_option("fingerprint", options.fingerprint, "Fingerprint (`swarm key show`)")->required();
      add_data_dir(app, flags);
      add_json_flag(app, options.json);
    },
    [](const VerbContext& context, const KeyFingerprintOptions& options) {
      return key_change(context, options, false);
    }));
  verbs.push_back(make_verb<KeyFingerprintOptions>(
    "key retire", "Remove an old key from the binhost (after a rotation; never the active one)",
    [](CLI::App& app, ConfigFlags& flags, KeyFingerprintOptions& options) {
      app.add_option("fingerprint", options.fingerprint, "Fingerprint (`swarm key show`)")->required();
      add_data_dir(app, flags);
      add_json_flag(app, options.json);
    },
    [](const VerbContext& context, const KeyFingerprintOptions& options) {
      return key_change(context, options, true);
    }));
}

} // namespace swarm::roles
