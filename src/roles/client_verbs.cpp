// This machine as a client of a swarm profile's binhost (issues 4 and 9): `client setup` points
// Portage at the profile's production binhost, `client update` installs from it from binaries
// only — and refuses, naming them, when Portage would compile something or drop world atoms —
// and `client check` compares this machine's configuration with the profile's.

#include <cstdio>
#include <cstdlib>
#include <optional>

#include <sys/stat.h>

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "core/fs.hpp"
#include "core/strings.hpp"
#include "core/subprocess.hpp"
#include "roles/operator/api_client.hpp"
#include "roles/operator/build_profiles.hpp"
#include "roles/operator/client_side.hpp"
#include "roles/operator/client_update.hpp"
#include "roles/operator/profile_option.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

using nlohmann::json;
using namespace operator_cli;

// --- client setup -----------------------------------------------------------------------------

struct ClientSetupOptions {
  bool json = false;
  std::string gateway; // "": client.url
  std::string profile = std::string(k_default_profile);
};

// The production URL of `profile`: what a gateway's /binhost hands out, or, asked directly, what
// an orchestrator announces in /healthz (the default profile's) moved to the profile's place.
std::string binhost_url_for(net::HttpClient& client, const std::string& gateway, const std::string& profile)
{
  net::CallOptions returning;
  returning.on_http_error = net::OnHttpError::return_response;
  auto binhost = client.request("GET", profile_path("/binhost", profile), {}, {}, returning);
  if (binhost && binhost->status == 400) {
    const auto body = binhost->json().value_or(json::object());
    throw_error(ErrorKind::invalid, body.is_object() ? body.value("error", std::string("bad request")) : "bad request");
  }
  if (binhost && binhost->ok()) {
    const auto body = binhost->json().value_or(json::object());
    if (body.is_object() && !body.value("url", std::string()).empty()) {
      return body.value("url", std::string());
    }
  }
  // Not a gateway: an orchestrator announces its production URL in /healthz.
  const auto health = must(client.get_json("/healthz"));
  const auto url = health.value("production_url", std::string());
  if (url.empty()) {
    throw_error(ErrorKind::conflict, fmt::format("{} handed out no binhost URL", gateway));
  }
  return profile_binhost_url(url, profile);
}

// A signed binhost's public key(s), armoured, from GET /api/v1/key; "" when the binhost does not
// sign (404).
std::string binhost_keys(net::HttpClient& client, const std::string& gateway)
{
  net::CallOptions returning;
  returning.on_http_error = net::OnHttpError::return_response;
  auto reply = must(client.request("GET", "/api/v1/key", {}, {}, returning));
  if (reply.status == 404) {
    return {};
  }
  if (!reply.ok() || !reply.body.starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
    throw_error(ErrorKind::unavailable,
                fmt::format("{}/api/v1/key answered HTTP {} without a public key", gateway, reply.status));
  }
  return reply.body;
}

// Makes Portage trust the binhost's keys: imported into its verification home (which Portage
// reads as nobody, so the home and its public files are world-readable), ultimately trusted.
// Returns the fingerprints.
std::vector<std::string> install_binhost_keys(const std::filesystem::path& home, const std::string& keys)
{
  std::error_code ec;
  const bool existed = std::filesystem::is_directory(home, ec);
  must_do(fs::make_dirs(home));
  if (!existed) {
    ::chmod(home.c_str(), 0755);
  }
  const auto key_file = home / "swarm-binhost.asc";
  must_do(fs::write_file_atomic(key_file, keys, 0644));
  const auto commands = trust_key_commands(home.string(), key_file.string());
  auto run_gpg = [&](std::vector<std::string> argv) {
    auto outcome = must(subprocess::run_capture(argv));
    if (!outcome.success()) {
      throw_error(ErrorKind::io, fmt::format("`{}` failed ({}): {}", strings::join(argv, " "), outcome.describe(),
                                             strings::trim(outcome.output).substr(0, 400)));
    }
    return outcome.output;
  };
  run_gpg(commands[0]);
  const auto trust = ultimate_ownertrust(run_gpg(commands[1]));
  if (trust.empty()) {
    throw_error(ErrorKind::invalid, "the binhost's key file holds no key");
  }
  const auto trust_file = home / "swarm-binhost.ownertrust";
  must_do(fs::write_file_atomic(trust_file, trust, 0644));
  auto import_trust = commands[2];
  import_trust.push_back(trust_file.string());
  run_gpg(import_trust);
  run_gpg(commands[3]);
  for (const auto* name : {"pubring.kbx", "trustdb.gpg"}) {
    ::chmod((home / name).c_str(), 0644);
  }
  // gpg starts an agent when it creates a keyring: none is left behind.
  if (std::filesystem::exists(home / "S.gpg-agent", ec)) {
    (void)subprocess::run_capture({"gpgconf", "--homedir", home.string(), "--kill", "gpg-agent"});
  }
  std::vector<std::string> fingerprints;
  for (const auto& line : strings::split(trust, '\n')) {
    if (line.size() > 40) {
      fingerprints.push_back(line.substr(0, 40));
    }
  }
  return fingerprints;
}

// client.ca's text, checked to be PEM certificates before anything is sent or written.
std::string read_client_ca(const std::string& file)
{
  auto text = fs::read_file(file, 1u << 20);
  if (!text) {
    throw_error(ErrorKind::invalid, fmt::format("cannot read the CA file {}: {}", file, text.error().message));
  }
  if (auto checked = check_pem_certificates(*text); !checked) {
    throw_error(ErrorKind::invalid, fmt::format("{} is not a PEM CA certificate: {}", file, checked.error().message));
  }
  return *text;
}

struct CaAnchor {
  std::filesystem::path path;
  bool changed = false; // written now (new or different), not already there
  std::string command;  // what rebuilt the system's CA store
};

// Portage fetches an https:// binhost with the system's CA store (its index with Python's
// urllib, the packages with wget): the CA goes into the trust-anchor directory, and the store is
// rebuilt from it. Run again, it finds the same file and rebuilds the store again (harmless).
CaAnchor install_ca_anchor(const std::filesystem::path& directory, const std::string& name, const std::string& text,
                           const std::string& command)
{
  CaAnchor out;
  out.path = directory / name;
  out.command = command;
  std::error_code ec;
  const bool existed = std::filesystem::is_directory(directory, ec);
  must_do(fs::make_dirs(directory));
  if (!existed) {
    ::chmod(directory.c_str(), 0755);
  }
  auto old = fs::read_file(out.path, 1u << 20);
  out.changed = !old || *old != text;
  if (out.changed) {
    must_do(fs::write_file_atomic(out.path, text, 0644));
  }
  auto outcome = must(subprocess::run_capture({command}));
  if (!outcome.success()) {
    throw_error(ErrorKind::io, fmt::format("`{}` failed ({}) after {} was written: {}", command, outcome.describe(),
                                           out.path.string(), strings::trim(outcome.output).substr(0, 400)));
  }
  return out;
}

int run_client_setup(const VerbContext& context, const ClientSetupOptions& options)
{
  const auto& config = context.config;
  const auto gateway = options.gateway.empty() ? config.get("client.url") : options.gateway;
  const auto ca_file = config.get("client.ca");
  const auto ca_text = ca_file.empty() ? std::string() : read_client_ca(ca_file);
  net::ClientOptions client_options;
  client_options.base_url = gateway;
  client_options.ca_file = config.get("client.ca");
  client_options.timeout =
    std::chrono::milliseconds(static_cast<int64_t>(config.get_seconds("client.timeout") * 1000.0));
  net::HttpClient client(client_options);
  const auto url = binhost_url_for(client, gateway, options.profile);
  const auto keys = binhost_keys(client, gateway);
  const auto text = must(binrepos_conf_text(url, gateway, options.profile, !keys.empty()));

  // An https:// binhost verified with client.ca: Portage needs that CA in the system's store.
  const std::filesystem::path ca_store = config.get("client.ca_store_dir");
  const bool https_binhost = url.starts_with("https://");
  const bool install_ca = https_binhost && !ca_text.empty() && !ca_store.empty();
  std::string update_command;
  if (install_ca) {
    const auto wanted = config.get("client.update_ca_certificates");
    const char* path_variable = std::getenv("PATH");
    auto found = find_program(wanted, path_variable ? path_variable : "");
    if (!found) {
      throw_error(ErrorKind::unavailable,
                  fmt::format("cannot find `{}`, which makes Portage trust {} (it fetches {} with the system's CA "
                              "store): install ca-certificates, name the command with --update-ca-certificates, or "
                              "add the CA to the system's store yourself and pass --ca-store-dir ''",
                              wanted, ca_file, url));
    }
    update_command = *found;
  }

  // A profile without a release has no index yet: Portage would find no binhost there.
  std::string warning;
  net::CallOptions probe;
  probe.on_http_error = net::OnHttpError::return_response;
  net::ClientOptions binhost_options = client_options;
  binhost_options.base_url = url;
  if (auto index = net::HttpClient(binhost_options).request("GET", "/Packages", {}, {}, probe);
      !index || !index->ok()) {
    warning = fmt::format("{}/Packages is not there yet ({}): profile {} has no release; emerge finds nothing until "
                          "`{}` publishes one",
                          url, index ? fmt::format("HTTP {}", index->status) : index.error().message, options.profile,
                          profile_command("swarm finalize", options.profile));
  }

  const std::filesystem::path path = config.get("client.binrepos_conf");
  std::error_code ec;
  if (std::filesystem::exists(path.parent_path(), ec) && !std::filesystem::is_directory(path.parent_path(), ec)) {
    throw_error(ErrorKind::io, fmt::format("{} is a file; make it a directory (move the file into it) first",
                                           path.parent_path().string()));
  }
  // The keys first: binrepos.conf never asks Portage to verify with keys it does not have.
  const std::filesystem::path gnupg_home = config.get("client.gnupg_home");
  std::vector<std::string> fingerprints;
  if (!keys.empty()) {
    fingerprints = install_binhost_keys(gnupg_home, keys);
  }
  // And the CA: binrepos.conf never names an https:// binhost Portage cannot verify.
  std::optional<CaAnchor> anchor;
  if (install_ca) {
    anchor = install_ca_anchor(ca_store, ca_anchor_name(url), ca_text, update_command);
  }
  must_do(fs::make_dirs(path.parent_path()));
  must_do(fs::write_file_atomic(path, text, 0644));
  if (!warning.empty()) {
    fmt::print(stderr, "warning: {}\n", warning);
  }
  if (options.json) {
    print_json(json{{"path", path.string()},
                    {"profile", options.profile},
                    {"binhost_url", url},
                    {"text", text},
                    {"verify_signature", !keys.empty()},
                    {"gnupg_home", keys.empty() ? json(nullptr) : json(gnupg_home.string())},
                    {"keys", fingerprints},
                    {"ca_anchor", anchor ? json{{"path", anchor->path.string()},
                                                {"ca", ca_file},
                                                {"changed", anchor->changed},
                                                {"command", anchor->command}}
                                         : json(nullptr)},
                    {"warnings", warning.empty() ? json::array() : json::array({warning})}});
  } else {
    fmt::print("wrote {} (binhost {})\n", path.string(), url);
    if (keys.empty()) {
      fmt::print("the binhost does not sign its packages: signature verification is off for it\n");
    } else {
      fmt::print("Portage verifies its signatures: trusted key(s) {} in {}\n", strings::join(fingerprints, ", "),
                 gnupg_home.string());
    }
    if (anchor) {
      fmt::print("Portage fetches it over https trusting {}: {} {} the system's CA store ({} ran)\n", ca_file,
                 anchor->path.string(), anchor->changed ? "added to" : "already in", anchor->command);
    } else if (https_binhost && !ca_text.empty()) {
      fmt::print("client.ca_store_dir is empty: the system's CA store must trust {} for Portage's https fetches\n",
                 ca_file);
    }
    fmt::print("next: swarm client update\n");
  }
  return exit_code::k_ok;
}

// --- client update ----------------------------------------------------------------------------

struct ClientUpdateOptions {
  bool json = false;
  std::string profile; // "": whichever binhost Portage is configured with
};

// `client update --profile NAME`: the binrepos.conf `client setup` wrote must be NAME's.
void check_binhost_profile(const config::Config& config, const std::string& profile)
{
  const std::filesystem::path path = config.get("client.binrepos_conf");
  auto text = fs::read_file(path, 1u << 20);
  if (!text) {
    throw_error(ErrorKind::conflict, fmt::format("cannot read {} ({}): `{}` writes it", path.string(),
                                                 text.error().message, profile_command("swarm client setup", profile)));
  }
  const auto configured = binrepos_conf_profile(*text);
  if (configured != profile) {
    throw_error(ErrorKind::conflict,
                fmt::format("{} points Portage at {}, not at profile {}: run `{}` first", path.string(),
                            configured ? "profile " + *configured : std::string("no swarm binhost"), profile,
                            profile_command("swarm client setup", profile)));
  }
}

int run_client_update(const VerbContext& context, const ClientUpdateOptions& options)
{
  if (!options.profile.empty()) {
    check_binhost_profile(context.config, options.profile);
  }
  ClientUpdateSettings settings;
  settings.emerge = context.config.get("client.emerge");
  settings.portageq = context.config.get("client.portageq");
  // With --json, stdout is the summary; emerge's own output goes to stderr.
  FILE* output = options.json ? stderr : stdout;
  settings.on_output = [output](std::string_view chunk) {
    std::fwrite(chunk.data(), 1, chunk.size(), output);
    std::fflush(output);
  };
  fmt::print(stderr, "running {}\n", strings::join(client_pretend_argv(settings.emerge), " "));
  subprocess::SystemProcessRunner runner;
  const auto result = must(update_from_binaries(settings, runner));
  const auto& report = result.report;

  using Stage = ClientUpdateResult::Stage;
  int code = exit_code::k_ok;
  std::string message;
  switch (result.stage) {
  case Stage::pretend_failed:
    code = result.emerge_exit_code > 0 ? result.emerge_exit_code : exit_code::k_failure;
    message = fmt::format("emerge --pretend exited with status {}; nothing was installed{}", result.emerge_exit_code,
                          report.problems.empty() ? "" : ": " + strings::join(report.problems, "; "));
    break;
  case Stage::refused: {
    code = exit_code::k_failure;
    std::vector<std::string> parts;
    if (!report.from_source.empty()) {
      parts.push_back("it would compile " + strings::join(report.from_source, ", "));
    }
    if (!report.unsatisfied.empty()) {
      parts.push_back("the binhost cannot satisfy " + strings::join(report.unsatisfied, ", ") +
                      " (Portage would leave it out and still exit 0)");
    }
    if (!report.masked.empty()) {
      parts.push_back("masked: " + strings::join(report.masked, ", "));
    }
    message = fmt::format("refusing to update, nothing was installed: {}. A missing binary means the profile's "
                          "build has not published it (`swarm status`, `swarm fix-blocked`); a binary built with "
                          "other USE means this machine's configuration differs from the profile's "
                          "(`swarm client check`)",
                          strings::join(parts, "; "));
    break;
  }
  case Stage::install_failed:
    code = result.emerge_exit_code > 0 ? result.emerge_exit_code : exit_code::k_failure;
    message = fmt::format("emerge exited with status {}", result.emerge_exit_code);
    break;
  case Stage::incomplete:
    code = exit_code::k_failure;
    message = fmt::format("after the update, no installed package satisfies these world atoms: {}",
                          strings::join(result.missing, ", "));
    break;
  case Stage::updated:
    break;
  }

  if (options.json) {
    print_json(json{{"result", stage_name(result.stage)},
                    {"profile", options.profile.empty() ? json(nullptr) : json(options.profile)},
                    {"exit_code", code},
                    {"installed", result.installed},
                    {"binaries", report.binaries},
                    {"from_source", report.from_source},
                    {"unsatisfied", report.unsatisfied},
                    {"masked", report.masked},
                    {"problems", report.problems},
                    {"world", result.world},
                    {"missing", result.missing},
                    {"eroot", result.eroot}});
  }
  if (code != exit_code::k_ok) {
    print_error(message);
    return code;
  }
  if (!options.json) {
    fmt::print("updated from binaries only: {} package(s) installed; all {} world atom(s) are installed\n",
               report.binaries.size(), result.world.size());
  }
  return exit_code::k_ok;
}

// --- client check -----------------------------------------------------------------------------

struct ClientCheckOptions {
  bool json = false;
  std::string profile = std::string(k_default_profile);
  std::string config_root = "/";
};

int run_client_check(const VerbContext& context, const ClientCheckOptions& options)
{
  subprocess::SystemProcessRunner runner;
  const auto config_root = config_root_argument(options.config_root);
  const auto local = must(capture_local_profile(context.config, config_root, runner));
  auto client = make_client(context.config);
  const auto swarm_profile = must(fetch_swarm_profile(client, options.profile));
  if (!swarm_profile.build_profile) {
    throw_error(ErrorKind::conflict,
                fmt::format("profile {} has no build profile to compare with: its plan came without one (`swarm "
                            "fresh --from FILE` without --config-root)",
                            options.profile));
  }
  const auto differences = compare_build_profiles(*swarm_profile.build_profile, local);
  const bool differ = differences_change_binaries(differences);
  if (options.json) {
    print_json(json{{"profile", options.profile},
                    {"build_profile", swarm_profile.hash},
                    {"config_root", config_root},
                    {"local_build_profile", portage::build_profile_hash(local)},
                    {"same", differences.empty()},
                    {"binaries_differ", differ},
                    {"differences", differences_to_json(differences)}});
    return differ ? exit_code::k_failure : exit_code::k_ok;
  }
  if (differences.empty()) {
    fmt::print("this machine ({}) has the configuration of profile {}\n", config_root, options.profile);
    return exit_code::k_ok;
  }
  fmt::print("A = profile {}, B = this machine ({})\n", options.profile, config_root);
  fmt::print("{}", describe_differences(differences));
  if (!differ) {
    fmt::print("{} difference(s), none of which changes a binary: this machine can use profile {}'s binaries (`swarm "
               "client update` says whether the binhost has every version this tree wants)\n",
               differences.size(), options.profile);
    return exit_code::k_ok;
  }
  fmt::print("{} difference(s): binaries of profile {} were built with A's configuration. Portage refuses a binary "
             "whose USE differs, and other flags differ silently. Make this machine's configuration the profile's, "
             "or give it a profile of its own (`swarm fresh --profile NAME` here).\n",
             differences.size(), options.profile);
  return exit_code::k_failure;
}

} // namespace

void add_client_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"client", "This machine as a client of the swarm's binhost", nullptr, nullptr});
  verbs.push_back(make_verb<ClientSetupOptions>(
    "client setup", "Point Portage at a profile's production binhost the gateway hands out (writes binrepos.conf)",
    [](CLI::App& app, ConfigFlags& flags, ClientSetupOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--binrepos-conf", "client.binrepos_conf");
      bind_config_flag(app, flags, "--gnupg-home", "client.gnupg_home");
      bind_config_flag(app, flags, "--ca-store-dir", "client.ca_store_dir");
      bind_config_flag(app, flags, "--update-ca-certificates", "client.update_ca_certificates");
      app.add_option("--gateway", options.gateway, "Gateway (or orchestrator) URL (default client.url)");
      add_profile_option(app, options.profile, "The profile whose binhost to use (default: default)");
    },
    run_client_setup));
  verbs.push_back(make_verb<ClientUpdateOptions>(
    "client update",
    "Update @world from binaries only: emerge --pretend first, refused when Portage would compile or drop anything; "
    "then the install, checked against the installed packages",
    [](CLI::App& app, ConfigFlags& flags, ClientUpdateOptions& options) {
      bind_config_flag(app, flags, "--emerge", "client.emerge");
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      bind_config_flag(app, flags, "--binrepos-conf", "client.binrepos_conf");
      add_json_flag(app, options.json);
      add_profile_option(app, options.profile,
                         "Refuse unless binrepos.conf points at this profile's binhost (`swarm client setup --profile "
                         "NAME` writes it)");
    },
    run_client_update));
  verbs.push_back(make_verb<ClientCheckOptions>(
    "client check",
    "Compare this machine's Portage configuration with a profile's build profile (exit 0 the same, 1 different)",
    [](CLI::App& app, ConfigFlags& flags, ClientCheckOptions& options) {
      add_client_flags(app, flags);
      add_json_flag(app, options.json);
      bind_config_flag(app, flags, "--portageq", "client.portageq");
      add_profile_option(app, options.profile, "The profile to compare with (default: default)");
      app.add_option("--config-root", options.config_root,
                     "This machine's configuration: DIR/etc/portage, as PORTAGE_CONFIGROOT (default /)");
    },
    run_client_check));
}

} // namespace swarm::roles
