// Orchestrator routes: verify, finalize, releases, rollback (docs/protocol.md, "Releases").
#include "roles/orch/api_context.hpp"

#include <set>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "roles/orch/release.hpp"
#include "roles/orch/verify.hpp"

namespace swarm::roles::orch {

namespace {

struct ReleaseApi {
  ReleaseApi(std::shared_ptr<Api> shared, ReleaseOptions options) : api(std::move(shared)), releases(std::move(options))
  {}
  std::shared_ptr<Api> api;
  ReleaseStore releases;
};

Result<int> threshold_from(const std::string& text, int fallback)
{
  if (text.empty()) {
    return fallback;
  }
  auto parsed = strings::parse_int(text);
  if (!parsed || *parsed < 0 || *parsed > 100) {
    return fail(ErrorKind::invalid, "threshold must be an integer from 0 to 100");
  }
  return static_cast<int>(*parsed);
}

// Received packages of the plan whose artifact checked out: what finalize publishes.
std::vector<StagedPackage> staged_packages(const VerifyInput& input, const std::filesystem::path& staging_dir)
{
  std::vector<StagedPackage> out;
  for (const auto& row : input.packages) {
    if (!publishable(row)) {
      continue;
    }
    if (auto it = input.artifacts.find(row.cpv);
        it != input.artifacts.end() && it->second.status != ArtifactStatus::ok) {
      continue;
    }
    StagedPackage package;
    package.cpv = row.cpv;
    package.slot = row.slot;
    package.file = staging_dir / row.artifact_path;
    package.relative_path = row.artifact_path;
    auto entry = json::parse(row.index_entry, nullptr, false);
    if (entry.is_object()) {
      for (const auto& [key, value] : entry.items()) {
        if (value.is_string()) {
          package.entry[key] = value.get<std::string>();
        }
      }
    }
    if (auto slot = package.entry.find("SLOT"); slot != package.entry.end() && !slot->second.empty()) {
      package.slot = slot->second;
    }
    out.push_back(std::move(package));
  }
  return out;
}

// How many publishable packages the current release does not list yet.
size_t unreleased_count(ReleaseApi& self)
{
  std::set<std::string> published;
  if (auto current = self.releases.current()) {
    if (auto index = self.releases.index_of(*current)) {
      for (const auto& block : index->packages) {
        if (auto it = block.find("PATH"); it != block.end()) {
          published.insert(it->second);
        }
      }
    }
  }
  size_t count = 0;
  for (const auto& row : self.api->coordinator.received_packages()) {
    if (publishable(row) && !published.count(row.artifact_path)) {
      ++count;
    }
  }
  return count;
}

} // namespace

void install_release_routes(net::HttpServer& server, const std::shared_ptr<Api>& api)
{
  ReleaseOptions release_options;
  release_options.releases_dir = api->options.data_dir / "releases";
  release_options.production_link = api->options.production_link;
  release_options.keep = api->options.keep_releases;
  auto self = std::make_shared<ReleaseApi>(api, release_options);

  server.get("/api/v1/verify", [self](const httplib::Request& request, httplib::Response& response) {
    if (!self->api->admin(request, response)) {
      return;
    }
    auto threshold = threshold_from(request.get_param_value("threshold"), self->api->options.risk_threshold);
    if (!threshold) {
      return net::error_response(response, threshold.error());
    }
    const auto report = verify(self->api->coordinator, self->api->options.staging_dir, *threshold);
    net::json_response(response, 200, report.to_json());
  });

  server.post("/api/v1/releases/finalize", [self](const httplib::Request& request, httplib::Response& response) {
    if (!self->api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    bool force = false;
    int threshold = self->api->options.risk_threshold;
    try {
      force = body->value("force", false);
      threshold = body->value("threshold", threshold);
    } catch (const json::exception&) {
      return net::error_response(response,
                                 {ErrorKind::invalid, "\"force\" must be a boolean and \"threshold\" an integer"});
    }
    const auto input = gather(self->api->coordinator, self->api->options.staging_dir);
    const auto report = score_risk(input, threshold);
    if (!report.pass && !force) {
      auto out = report.to_json();
      out["error"] = fmt::format("risk score {} is above the threshold {}: see the findings, or finalize with --force",
                                 report.score, report.threshold);
      out["kind"] = "conflict";
      out["reason"] = "risk";
      return net::json_response(response, 409, out);
    }
    const auto packages = staged_packages(input, self->api->options.staging_dir);
    if (packages.empty()) {
      return net::json_response(response, 409,
                                json{{"error", "nothing is received: no built package to release"},
                                     {"kind", "conflict"},
                                     {"reason", "nothing_received"}});
    }
    auto release = self->releases.publish(packages);
    if (!release) {
      if (release.error().kind == ErrorKind::conflict) {
        return net::json_response(
          response, 409, json{{"error", release.error().message}, {"kind", "conflict"}, {"reason", "nothing_new"}});
      }
      return net::error_response(response, release.error());
    }
    auto out = release->to_json();
    out["release"] = release->id;
    out["url"] = production_url(self->api->options);
    out["score"] = report.score;
    out["threshold"] = report.threshold;
    out["forced"] = !report.pass;
    net::json_response(response, 200, out);
  });

  server.get("/api/v1/releases", [self](const httplib::Request& request, httplib::Response& response) {
    if (!self->api->reader(request, response)) {
      return;
    }
    json list = json::array();
    for (const auto& release : self->releases.list()) {
      list.push_back(release.to_json());
    }
    const auto current = self->releases.current();
    net::json_response(response, 200,
                       json{{"releases", list},
                            {"current", current ? json(*current) : json(nullptr)},
                            {"unreleased", unreleased_count(*self)},
                            {"keep", self->api->options.keep_releases},
                            {"url", production_url(self->api->options)}});
  });

  server.post("/api/v1/releases/rollback", [self](const httplib::Request& request, httplib::Response& response) {
    if (!self->api->admin(request, response)) {
      return;
    }
    auto body = body_json(request);
    if (!body) {
      return net::error_response(response, body.error());
    }
    std::optional<std::string> id;
    if (body->contains("release") && !(*body)["release"].is_null()) {
      if (!(*body)["release"].is_string()) {
        return net::error_response(response, {ErrorKind::invalid, "\"release\" must be a release id"});
      }
      id = (*body)["release"].get<std::string>();
      if (id->empty()) {
        id.reset();
      }
    }
    auto release = self->releases.rollback(id);
    if (!release) {
      return net::error_response(response, release.error());
    }
    auto out = release->to_json();
    out["release"] = release->id;
    out["url"] = production_url(self->api->options);
    net::json_response(response, 200, out);
  });
}

} // namespace swarm::roles::orch
