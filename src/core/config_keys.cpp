// The one table of configuration keys. The environment variable of each key is derived from
// its name ("orch.listen" → SWARM_ORCH_LISTEN); the file section is the part before the dot.
// Keep it sorted by section; tests/unit/core/config_test.cpp checks that it is consistent.

#include "core/config.hpp"

namespace swarm::config {

namespace {

using enum KeyType;

constexpr KeyDef k_keys[] = {
  // --- command-line client (operator verbs, cron) ---
  {"client.url", string, "http://127.0.0.1:7000", "Gateway (or orchestrator) URL the operator verbs talk to"},
  {"client.ca", string, "", "PEM CA bundle to verify an https:// client.url with (empty: the system's)"},
  {"client.token", string, "", "Admin token for control verbs (or the orchestrator's data_dir/admin.token)", true},
  {"client.token_file", string, "", "File holding the token (first line); safer than client.token on a command line"},
  {"client.timeout", seconds, "30s", "Timeout of one API call"},
  {"client.binrepos_conf", string, "/etc/portage/binrepos.conf/swarm.conf", "File `swarm client setup` writes"},
  {"client.gnupg_home", string, "/etc/portage/gnupg",
   "Portage's binpkg verification keyring (BINPKG_GPG_VERIFY_GPG_HOME): `swarm client setup` adds a signed binhost's "
   "key"},
  {"client.ca_store_dir", string, "/usr/local/share/ca-certificates",
   "Trust-anchor directory `swarm client setup` puts client.ca in for Portage's https:// binhost fetches (empty: "
   "leave the system's CA store alone)"},
  {"client.update_ca_certificates", string, "update-ca-certificates",
   "The command that rebuilds the system's CA store from client.ca_store_dir (a name looked up in PATH, or a path)"},
  {"client.emerge", string, "/usr/bin/emerge", "Portage's emerge, for `fresh`, `build-local` and `client update`"},
  {"client.portageq", string, "/usr/bin/portageq",
   "Portage's portageq, for the build profile `fresh` and `client check` capture and `client update`'s checks"},
  {"client.repo_dir", string, "/var/db/repos/gentoo", "Ebuild repository whose md5-cache `fresh` reads"},
  {"client.orch_data_dir", string, "/var/lib/swarm/orch", "Orchestrator data dir (for `drone enroll` and `info`)"},

  // --- drone ---
  {"drone.url", string, "http://127.0.0.1:7000", "Gateway or orchestrator URL"},
  {"drone.ca", string, "", "PEM CA bundle to verify an https:// drone.url with (empty: the system's)"},
  {"drone.name", string, "", "Drone name (default: the host name)"},
  {"drone.token", string, "", "This drone's token, from `swarm drone enroll NAME`", true},
  {"drone.token_file", string, "", "File holding this drone's token (first line, mode 0600)"},
  {"drone.slots", integer, "0", "Concurrent builds (0: one per 4 cores, at least 1)"},
  {"drone.jobs", integer, "0", "MAKEOPTS -j per build (0: cores / slots)"},
  {"drone.spool", string, "/var/cache/swarm/drone", "Spool: PKGDIR, logs, artifacts waiting for upload"},
  {"drone.emerge", string, "/usr/bin/emerge", "Portage's emerge (tests put a fake here)"},
  {"drone.portage_configroot", string, "/", "PORTAGE_CONFIGROOT whose binrepos.conf gets the staging repo"},
  {"drone.repo_dir", string, "/var/db/repos/gentoo",
   "Ebuild repository (its metadata/timestamp.chk is the tree timestamp)"},
  {"drone.tree_timestamp", string, "", "Override the Portage tree timestamp (tests)"},
  {"drone.min_free_disk", bytes, "5G", "Refuse work while the spool's filesystem has less free space"},
  {"drone.drain", string, "finish", "On SIGTERM: 'finish' running builds, or 'return' them to the queue"},
  {"drone.log", string, "", "Also append the drone's log to this file"},
  {"drone.build_root", string, "isolated",
   "Where builds run: 'isolated' (a private overlay root per build; needs root, overlayfs and mount namespaces) or "
   "'host' (this machine's own system)"},
  {"drone.build_base", list, "/",
   "Lower layer of isolated builds: DIR, or PROFILE=DIR for one swarm profile (e.g. an unpacked stage3)"},
  {"drone.build_cache", string, "discard",
   "'discard' each build root after its lease, or 'keep' one per profile as a cache of build dependencies"},
  {"drone.profiles", list, "", "Swarm profiles this drone builds for (empty: all)"},
  {"drone.listen", string, "",
   "Serve /healthz, /readyz and /metrics on this address (e.g. 127.0.0.1:9101; empty: no listener)"},

  // --- gateway ---
  {"gateway.listen", string, "127.0.0.1:7000", "Address the gateway listens on (port 0: any free port)"},
  {"gateway.orchestrators", list, "http://127.0.0.1:7070",
   "Orchestrators as 'URL [PRIORITY]', comma-separated; higher priority wins, default by order"},
  {"gateway.health_interval", seconds, "2s", "Health-check interval"},
  {"gateway.ca", string, "", "PEM CA bundle to verify https:// orchestrators with (empty: the system's)"},
  {"gateway.tls_cert", string, "", "PEM certificate: serve HTTPS"},
  {"gateway.tls_key", string, "", "PEM private key for gateway.tls_cert"},
  {"gateway.health_timeout", seconds, "1s", "Health-check timeout"},
  {"gateway.threads", integer, "128", "Server threads (each proxied long-poll holds one)"},
  {"gateway.max_connections_per_client", integer, "256", "Open connections one client address may hold (0: any)"},
  {"gateway.auth_failure_limit", integer, "10",
   "Wrong credentials one client address may send in a minute before it is answered 429 (0: no limit)"},
  {"gateway.log", string, "", "Also append the gateway's log to this file"},

  // --- build logs (kept by the orchestrator) ---
  {"logs.keep_days", integer, "30", "Build logs older than this many days are removed (0: no age limit)"},
  {"logs.max_bytes", bytes, "1G", "Build logs are removed oldest first past this total (0: no size limit)"},

  // --- orchestrator ---
  {"orch.listen", string, "127.0.0.1:7070", "Address the orchestrator listens on (port 0: any free port)"},
  {"orch.public_url", string, "", "URL clients and drones reach this orchestrator at (default: from listen)"},
  {"orch.data_dir", string, "/var/lib/swarm/orch", "State database, staging, releases, production"},
  {"orch.admin_token", string, "", "Admin token (default: data_dir/admin.token, created on first start)", true},
  {"orch.public_status", boolean, "false", "Serve read-only status without a token"},
  {"orch.public_binhost", boolean, "true", "Serve the production binhost without a token"},
  {"orch.threads", integer, "128", "Server threads (each long-poll claim holds one)"},
  {"orch.claim_wait", seconds, "25s", "Longest a claim long-poll waits for work"},
  {"orch.max_long_polls", integer, "0",
   "Claims waiting at once; past it a claim is answered at once (0: threads minus max(8, a quarter), at least half)"},
  {"orch.max_connections_per_client", integer, "256",
   "Open connections one client address may hold (0: any); a gateway is one address"},
  {"orch.header_timeout", seconds, "10s", "A request's headers must arrive within this, else 408"},
  {"orch.min_transfer_rate", bytes, "64K", "Slowest average rate of a body or answer after a 30 s grace"},
  {"orch.heartbeat_interval", seconds, "10s", "How often drones heartbeat"},
  {"orch.lease_ttl", seconds, "120s", "A lease expires unless a heartbeat extends it within this time"},
  {"orch.drone_timeout", seconds, "90s", "A drone silent this long goes offline and loses its leases"},
  {"orch.maintenance_interval", seconds, "60s", "How often the maintenance loop runs"},
  {"orch.drone_failure_limit", integer, "5", "Consecutive failures that ground a drone"},
  {"orch.ground_cooldown", seconds, "5m", "How long a grounded drone rests before probation"},
  {"orch.package_failure_drones", integer, "2", "Distinct drones a package must fail on to be blocked"},
  {"orch.auto_retry", boolean, "false", "Retry blocked packages with backoff"},
  {"orch.retry_backoff", seconds, "30m", "First auto-retry delay (doubles each time)"},
  {"orch.max_upload", bytes, "8G", "Largest artifact accepted"},
  {"orch.default_build_seconds", seconds, "120s", "Expected build time of a package never built before"},
  {"orch.heavy_build_seconds", seconds, "1200s", "Packages expected to take longer prefer the biggest drones"},
  {"orch.keep_releases", integer, "5", "Releases kept after finalize"},
  {"orch.risk_threshold", integer, "15", "Highest risk score finalize accepts without --force"},
  {"orch.signing", string, "auto",
   "Sign accepted GPKGs with the key in data_dir/gnupg: auto (when a key exists), on (refuse uploads without one), "
   "off"},
  {"orch.tls_cert", string, "", "PEM certificate: serve HTTPS"},
  {"orch.tls_key", string, "", "PEM private key for orch.tls_cert"},
  {"orch.auth_failure_limit", integer, "10",
   "Wrong credentials one client address may send in a minute before it is answered 429 (0: no limit)"},
  {"orch.trusted_proxies", list, "",
   "Addresses of gateways whose X-Forwarded-For names the client (for orch.auth_failure_limit)"},
  {"orch.log", string, "", "Also append the orchestrator's log to this file"},
  {"orch.disk_low", bytes, "5G", "Staging free space below this fires the disk-low webhook event"},
  {"orch.no_release_after", seconds, "7d",
   "Fire the no-release webhook event (at most daily) when no release was finalized for this long (0: never)"},
  {"orch.webhook_queue", integer, "1000", "Webhook deliveries waiting at most; past it the oldest is dropped"},

  // --- webhooks, one [webhook.NAME] section each (orchestrator) ---
  {"webhook.*.url", string, "", "URL the event is POSTed to as JSON"},
  {"webhook.*.events", list, "*",
   "Events sent: * or a comma list of plan-complete, package-blocked, drone-grounded, drone-offline, drone-back, "
   "disk-low, release-finalized, verify-failed, no-release"},
  {"webhook.*.header", string, "", "Extra header sent with each delivery, 'Name: value' (e.g. a shared secret)", true},
};

} // namespace

std::span<const KeyDef> keys()
{
  return k_keys;
}

} // namespace swarm::config
