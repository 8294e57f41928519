#pragma once
// The orchestrator's HTTP API (docs/protocol.md): one table of routes, each with who may call
// it, mapped onto the Coordinator. Callers are authenticated before any body is read; artifact
// uploads stream to disk.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace swarm::net {
class HttpServer;
}

namespace swarm::roles::orch {

class Coordinator;
class BinhostSigner;
class Observability;

struct ApiOptions {
  std::string admin_token;
  bool public_status = false;
  bool public_binhost = true;
  uint64_t max_upload = 8ull << 30;
  std::string orch_id;
  std::string public_url; // http://host:port, how drones and clients reach this orchestrator
  std::string version;
  std::filesystem::path data_dir; // each profile's staging, releases and production (roles/orch/profiles.hpp)
  int keep_releases = 5;          // orch.keep_releases
  int risk_threshold = 15;        // orch.risk_threshold
  // Claims that wait at once (each holds a server worker); a claim past it is answered at once
  // without waiting, so that uploads, reports and /healthz always find a worker. 0: no cap.
  int max_long_polls = 0;
  // Wrong credentials a client address may send in a minute before it gets 429 (0: no limit);
  // requests from a trusted proxy (a gateway) count against the address its X-Forwarded-For names.
  int auth_failure_limit = 10;
  std::vector<std::string> trusted_proxies;
  // Signs accepted GPKGs and serves the public key (roles/orch/signing.hpp); null: unsigned.
  std::shared_ptr<BinhostSigner> signer;
};

// URLs derived from the public URL: the default profile's at /staging/ID and /production, another
// profile's under /p/NAME/ (roles/orch/profiles.hpp).
std::string staging_url(const ApiOptions& options, const std::string& profile = "default");
std::string production_url(const ApiOptions& options, const std::string& profile = "default");

// Registers every route on `server`; with `observability`, /metrics serves its metrics and the
// API reports claims, uploads, builds and releases to it.
void install_routes(net::HttpServer& server, Coordinator& coordinator, const ApiOptions& options,
                    Observability* observability = nullptr);

} // namespace swarm::roles::orch
