// `swarm orch` (the orchestrator daemon) and `swarm drone enroll NAME`.
#include "core/exit_codes.hpp"
#include "roles/orch/daemon.hpp"
#include "roles/verbs.hpp"

namespace swarm::roles {

namespace {

void add_orch_options(CLI::App& app, VerbArgs& args)
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
    {"--tls-cert", "orch.tls_cert"},
    {"--tls-key", "orch.tls_key"},
    {"--log", "orch.log"},
  };
  for (const auto& [flag, key] : k_flags) {
    bind_config_flag(app, args, flag, key);
  }
}

} // namespace

void add_orch_verbs(std::vector<Verb>& verbs)
{
  verbs.push_back({"orch", "Run the orchestrator: build queue, scheduling, staging, releases (HTTP API)",
                   add_orch_options, [](VerbArgs& args) { return orch::run_daemon(args.config); }});
  verbs.push_back({"drone enroll", "Create a drone identity on this orchestrator's data dir and print its token",
                   [](CLI::App& app, VerbArgs& args) {
                     app.add_option("name", args.options["name"], "Drone name")->required();
                     bind_config_flag(app, args, "--data-dir", "orch.data_dir");
                     add_json_flag(app, args);
                   },
                   [](VerbArgs& args) {
                     return orch::enroll_locally(args.config.get("orch.data_dir"), args.option("name"), args.json);
                   }});
}

} // namespace swarm::roles
