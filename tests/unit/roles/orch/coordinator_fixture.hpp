#pragma once
// A coordinator on a fresh database with a hand-driven clock, and the steps the coordinator
// tests drive it with (shared by coordinator_*_test.cpp).

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "core/fs.hpp"
#include "portage/plan.hpp"
#include "roles/orch/coordinator.hpp"

namespace swarm::test {

using roles::orch::Coordinator;

struct CoordinatorFixture {
  fs::TempDir dir{"coordinator"};
  double clock = 1'000'000;
  std::unique_ptr<roles::orch::Store> store;
  std::unique_ptr<Coordinator> coordinator;
  roles::orch::CoordinatorOptions options;

  CoordinatorFixture()
  {
    options.data_dir = dir.path();
    options.logs_dir = dir.path() / "logs";
    options.staging_url = "http://127.0.0.1:1/staging/test";
    options.lease_ttl = 60;
    options.drone_timeout = 90;
    options.heartbeat_interval = 10;
    options.claim_wait = 0;
    options.now = [this] { return clock; };
    open();
  }

  // A new coordinator on the same database (an orchestrator restart).
  void open()
  {
    coordinator.reset();
    store.reset();
    store = std::move(*roles::orch::Store::open((dir.path() / "state.db").string()));
    coordinator = std::make_unique<Coordinator>(*store, options);
    REQUIRE(coordinator->load().has_value());
  }

  // What a coordinator freshly loaded from the database holds (a second connection).
  nlohmann::json fresh_dump()
  {
    auto other_store = roles::orch::Store::open((dir.path() / "state.db").string());
    REQUIRE(other_store.has_value());
    auto other_options = options;
    Coordinator other(**other_store, other_options);
    REQUIRE(other.load(Coordinator::LoadMode::inspect).has_value());
    return other.state_dump();
  }

  std::string add_drone(const std::string& name, int slots = 1, int cores = 4, const std::string& tree = "")
  {
    auto token = coordinator->enroll(name);
    REQUIRE(token.has_value());
    net::RegisterRequest hello;
    hello.name = name;
    hello.cores = cores;
    hello.slots = slots;
    hello.tree_timestamp = tree;
    REQUIRE(coordinator->register_drone(name, hello).has_value());
    return *token;
  }

  net::Lease claim(const std::string& drone)
  {
    auto reply = coordinator->claim(drone, 0);
    REQUIRE(reply.has_value());
    REQUIRE_MESSAGE(reply->lease.has_value(), reply->reason);
    return *reply->lease;
  }

  net::ClaimReply no_claim(const std::string& drone)
  {
    auto reply = coordinator->claim(drone, 0);
    REQUIRE(reply.has_value());
    CHECK_FALSE(reply->lease.has_value());
    return *reply;
  }

  // A (fake) artifact for the lease, waiting in .incoming as the upload path leaves it.
  roles::orch::ArtifactInfo artifact_for(const net::Lease& lease, const std::string& content = "gpkg")
  {
    const auto slash = lease.cpv.find('/');
    const auto category = lease.cpv.substr(0, slash);
    const auto pf = lease.cpv.substr(slash + 1);
    const auto pn = pf.substr(0, pf.find('-'));
    auto incoming = dir.path() / "incoming";
    REQUIRE(fs::make_dirs(incoming).has_value());
    roles::orch::ArtifactInfo artifact;
    artifact.incoming_path = incoming / lease.id;
    std::ofstream(artifact.incoming_path) << content;
    artifact.relative_path = category + "/" + pn + "/" + pf + "-1.gpkg.tar";
    artifact.sha256 = "sha-" + lease.cpv + content;
    artifact.size = content.size();
    artifact.build_id = 1;
    artifact.index_entry = nlohmann::json{{"CPV", lease.cpv}, {"SIZE", std::to_string(content.size())}}.dump();
    return artifact;
  }

  void upload(const net::Lease& lease, const std::string& drone, const std::string& content = "gpkg")
  {
    REQUIRE(coordinator->begin_upload(lease.id, drone).has_value());
    auto accepted = coordinator->accept_artifact(lease.id, drone, artifact_for(lease, content));
    REQUIRE_MESSAGE(accepted.has_value(), accepted.error().message);
  }

  static net::ReportRequest success(double seconds = 10)
  {
    return net::ReportRequest{net::BuildResult::success, seconds, "ok", ""};
  }

  static net::ReportRequest failure(const std::string& log = "compile error")
  {
    return net::ReportRequest{net::BuildResult::failure, 5, log, "emerge exited 1"};
  }

  // Delivers a (fake) artifact for the lease and reports success.
  void build(const net::Lease& lease, const std::string& drone, const std::string& content = "gpkg")
  {
    upload(lease, drone, content);
    auto reported = coordinator->report(lease.id, drone, success());
    REQUIRE(reported.has_value());
  }

  void fail(const net::Lease& lease, const std::string& drone, const std::string& log = "compile error")
  {
    auto reported = coordinator->report(lease.id, drone, failure(log));
    REQUIRE(reported.has_value());
  }

  std::string state_of(const std::string& cpv)
  {
    auto view = coordinator->package_view("default", cpv);
    REQUIRE(view.has_value());
    return (*view)["state"].get<std::string>();
  }

  // The default profile's staging.
  std::filesystem::path staging() const { return dir.path() / "staging"; }

  void submit(const portage::Plan& plan, net::PlanMode mode = net::PlanMode::replace, bool clear_staging = false)
  {
    auto reply = coordinator->submit_plan(plan, mode, clear_staging);
    REQUIRE_MESSAGE(reply.has_value(), reply.error().message);
  }
};

inline portage::PlanPackage plan_package(const std::string& cpv, double seconds = 60)
{
  portage::PlanPackage package;
  package.cpv = cpv;
  package.slot = "0";
  package.repo = "gentoo";
  package.build_seconds = seconds;
  return package;
}

// c waits for b waits for a (build edges); b runs with r (runtime).
inline portage::Plan chain_plan()
{
  portage::Plan plan;
  plan.source = "test";
  for (const auto* cpv : {"dev-libs/a-1", "dev-libs/b-1", "app-misc/c-1", "dev-libs/r-1"}) {
    plan.packages.push_back(plan_package(cpv));
  }
  plan.edges.push_back({"dev-libs/b-1", "dev-libs/a-1", portage::EdgeKind::depend});
  plan.edges.push_back({"app-misc/c-1", "dev-libs/b-1", portage::EdgeKind::bdepend});
  plan.edges.push_back({"dev-libs/b-1", "dev-libs/r-1", portage::EdgeKind::rdepend});
  return plan;
}

// `count` independent packages app-misc/p0-1 … .
inline portage::Plan flat_plan(int count)
{
  portage::Plan plan;
  plan.source = "test";
  for (int i = 0; i < count; ++i) {
    plan.packages.push_back(plan_package("app-misc/p" + std::to_string(i) + "-1"));
  }
  return plan;
}

} // namespace swarm::test
