// `swarm orch` (the orchestrator daemon) and `swarm drone enroll NAME`.

#include <CLI/CLI.hpp>

#include "core/exit_codes.hpp"
#include "roles/orch/daemon.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

void add_orch_options(CLI::App& app, ConfigFlags& flags)
{
  static const std::vector<std::pair<std::string, std::string>> k_flags{
    {"--listen", "orch.listen"},
    {"--public-url", "orch.public_url"},
    {"--data-dir", "orch.data_dir"},
    {"--admin-token", "orch.admin_token"},
    {"--public-status", "orch.public_status"},
    {"--public-binhost", "orch.public_binhost"},
    {"--threads", "orch.threads"},
    {"--claim-wait", "orch.claim_wait"},
    {"--heartbeat-interval", "orch.heartbeat_interval"},
    {"--lease-ttl", "orch.lease_ttl"},
    {"--drone-timeout", "orch.drone_timeout"},
    {"--maintenance-interval", "orch.maintenance_interval"},
    {"--drone-failure-limit", "orch.drone_failure_limit"},
    {"--ground-cooldown", "orch.ground_cooldown"},
    {"--package-failure-drones", "orch.package_failure_drones"},
    {"--auto-retry", "orch.auto_retry"},
    {"--retry-backoff", "orch.retry_backoff"},
    {"--max-upload", "orch.max_upload"},
    {"--default-build-seconds", "orch.default_build_seconds"},
    {"--heavy-build-seconds", "orch.heavy_build_seconds"},
    {"--keep-releases", "orch.keep_releases"},
    {"--risk-threshold", "orch.risk_threshold"},
    {"--signing", "orch.signing"},
    {"--tls-cert", "orch.tls_cert"},
    {"--tls-key", "orch.tls_key"},
    {"--auth-failure-limit", "orch.auth_failure_limit"},
    {"--trusted-proxies", "orch.trusted_proxies"},
    {"--log", "orch.log"},
  };
  for (const auto& [flag, key] : k_flags) {
    bind_config_flag(app, flags, flag, key);
  }
}

struct EnrollOptions {
  std::string name;
  bool json = false;
};

} // namespace

void add_orch_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"orch", "Run the orchestrator: build queue, scheduling, staging, releases (HTTP API)",
                   add_orch_options, [](const VerbContext& context) { return orch::run_daemon(context.config); }});
  verbs.push_back(make_verb<EnrollOptions>(
    "drone enroll", "Create a drone identity on this orchestrator's data dir and print its token",
    [](CLI::App& app, ConfigFlags& flags, EnrollOptions& options) {
      app.add_option("name", options.name, "Drone name")->required();
      bind_config_flag(app, flags, "--data-dir", "orch.data_dir");
      add_json_flag(app, options.json);
    },
    [](const VerbContext& context, const EnrollOptions& options) {
      return orch::enroll_locally(context.config.get("orch.data_dir"), options.name, options.json);
    }));
}

} // namespace swarm::roles
