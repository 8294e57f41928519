// Orchestrator routes: verify, finalize, releases, rollback (docs/protocol.md, "Releases").
#include "roles/orch/api_context.hpp"

#include <set>

#include "core/log.hpp"
#include "core/strings.hpp"
#include "net/protocol.hpp"
#include "roles/orch/coordinator.hpp"
#include "roles/orch/observability.hpp"
#include "roles/orch/release.hpp"
#include "roles/orch/signing.hpp"
#include "roles/orch/verify.hpp"

namespace swarm::roles::orch {

namespace {

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
size_t unreleased_count(Api& api, const std::string& profile)
{
  std::set<std::string> published;
  auto& releases = api.releases(profile);
  if (auto current = releases.current()) {
    if (auto index = releases.index_of(*current)) {
      for (const auto& block : index->packages) {
        if (auto it = block.find("PATH"); it != block.end()) {
          published.insert(it->second);
        }
      }
    }
  }
  size_t count = 0;
  for (const auto& row : api.coordinator.received_packages(profile)) {
    if (publishable(row) && !published.count(row.artifact_path)) {
      ++count;
    }
  }
  return count;
}

// A signed binhost's keyring: verify and finalize check every package's signatures with it.
std::optional<std::filesystem::path> signer_home(Api& api)
{
  return api.options.signer ? api.options.signer->verify_home() : std::nullopt;
}

} // namespace

namespace handlers {

void verify(Api& api, const Call& call)
{
  auto threshold = threshold_from(call.param("threshold"), api.options.risk_threshold);
  if (!threshold) {
    return call.fail(threshold.error());
  }
  const auto profile = api.profile_param(call);
  const auto report = orch::verify(api.coordinator, profile, *threshold, signer_home(api));
  auto out = report.to_json();
  if (!report.pass && api.observability) {
    api.observability->on_verify_failed(profile, out);
  }
  call.reply(out);
}

void finalize(Api& api, const Call& call)
{
  const auto request = call.read<net::FinalizeRequest>();
  const auto input = gather(api.coordinator, request.profile, signer_home(api));
  const auto report = score_risk(input, request.threshold.value_or(api.options.risk_threshold));
  if (!report.pass && !request.force) {
    auto out = report.to_json();
    out["error"] = fmt::format("risk score {} is above the threshold {}: see the findings, or finalize with --force",
                               report.score, report.threshold);
    out["kind"] = "conflict";
    out["reason"] = "risk";
    if (api.observability) {
      api.observability->on_verify_failed(request.profile, out);
    }
    return call.reply(409, out);
  }
  const auto packages = staged_packages(input, api.coordinator.staging_dir(request.profile));
  if (packages.empty()) {
    return call.reply(409, json{{"error", "nothing is received: no built package to release"},
                                {"kind", "conflict"},
                                {"reason", "nothing_received"}});
  }
  auto release = api.releases(request.profile).publish(packages);
  if (!release) {
    if (release.error().kind == ErrorKind::conflict) {
      return call.reply(409, json{{"error", release.error().message}, {"kind", "conflict"}, {"reason", "nothing_new"}});
    }
    return call.fail(release.error());
  }
  auto out = release->to_json();
  out["release"] = release->id;
  out["url"] = production_url(api.options, request.profile);
  out["profile"] = request.profile;
  out["score"] = report.score;
  out["threshold"] = report.threshold;
  out["forced"] = !report.pass;
  if (api.observability) {
    api.observability->on_release(request.profile, json{{"release", release->id},
                                                        {"packages", release->packages},
                                                        {"added", release->added.size()},
                                                        {"removed", release->removed.size()},
                                                        {"rebuilt", release->rebuilt.size()},
                                                        {"url", out["url"]},
                                                        {"forced", !report.pass}});
  }
  call.reply(out);
}

void releases(Api& api, const Call& call)
{
  const auto profile = api.profile_param(call);
  auto& store = api.releases(profile);
  json list = json::array();
  for (const auto& release : store.list()) {
    list.push_back(release.to_json());
  }
  const auto current = store.current();
  call.reply(json{{"releases", list},
                  {"current", current ? json(*current) : json(nullptr)},
                  {"unreleased", unreleased_count(api, profile)},
                  {"keep", api.options.keep_releases},
                  {"profile", profile},
                  {"url", production_url(api.options, profile)}});
}

void rollback(Api& api, const Call& call)
{
  const auto request = call.read<net::RollbackRequest>();
  auto release = api.releases(request.profile).rollback(request.release);
  if (!release) {
    return call.fail(release.error());
  }
  auto out = release->to_json();
  out["release"] = release->id;
  out["url"] = production_url(api.options, request.profile);
  out["profile"] = request.profile;
  call.reply(out);
}

} // namespace handlers

} // namespace swarm::roles::orch
