#include <doctest/doctest.h>

#include "portage/plan.hpp"
#include "roles/orch/coordinator_fixture.hpp"
#include "roles/orch/plan_state.hpp"

using namespace swarm;
using namespace swarm::roles::orch;
using swarm::test::chain_plan;
using swarm::test::plan_package;

namespace {

// The rows and edges a plan gives once stored (ids 1…n in plan order).
struct Stored {
  PlanInfo info;
  std::vector<PackageRow> rows;
  std::vector<EdgeRow> edges;
};

Stored store(const portage::Plan& plan)
{
  auto change = diff_plan({}, {}, {}, plan, net::PlanMode::replace, false, 100);
  Stored out;
  out.info = change.info;
  std::unordered_map<std::string, int64_t> ids;
  for (auto& row : change.rows) {
    row.id = static_cast<int64_t>(out.rows.size() + 1);
    ids[row.cpv] = row.id;
    out.rows.push_back(row);
  }
  for (const auto& edge : change.edges) {
    out.edges.push_back({ids[edge.package], ids[edge.needs], edge.kind});
  }
  return out;
}

const PackageRow& row_of(const PlanChange& change, const std::string& cpv)
{
  for (const auto& row : change.rows) {
    if (row.cpv == cpv) {
      return row;
    }
  }
  FAIL("no row ", cpv);
  throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("diff_plan: a new plan adds every package and edge; the same plan again changes nothing")
{
  const auto plan = chain_plan();
  auto first = diff_plan({}, {}, {}, plan, net::PlanMode::replace, false, 100);
  CHECK(first.reply.added == 4);
  CHECK(first.reply.changed);
  CHECK(first.edges.size() == 3);
  CHECK(first.info.submitted_at == 100);
  const auto stored = store(plan);
  auto again = diff_plan(stored.info, stored.rows, stored.edges, plan, net::PlanMode::replace, false, 200);
  CHECK_FALSE(again.reply.changed);
  CHECK_FALSE(again.edges_changed);
  CHECK(again.reply.kept == 4);
  CHECK(again.info.submitted_at == 100); // unchanged plans keep their time
  CHECK(again.stop_builds.empty());
}

TEST_CASE("diff_plan: USE, slot, repository and tree changes reset a package and drop its artifact")
{
  auto plan = chain_plan();
  plan.tree_timestamp = "T1";
  auto stored = store(plan);
  for (auto& row : stored.rows) {
    row.state = PkgState::received;
    row.artifact_path = row.cpv + ".gpkg.tar";
    row.built_tree_timestamp = "T1";
  }
  auto changed = plan;
  changed.packages[0].use = {"b", "a"};
  auto use = diff_plan(stored.info, stored.rows, stored.edges, changed, net::PlanMode::replace, false, 200);
  CHECK(use.reply.reset == 1);
  CHECK(use.remove_files == std::vector<std::string>{"dev-libs/a-1.gpkg.tar"});
  CHECK(use.stop_builds == std::vector<int64_t>{1});
  CHECK(row_of(use, "dev-libs/a-1").state == PkgState::needed);
  CHECK(row_of(use, "dev-libs/a-1").artifact_path.empty());
  CHECK(row_of(use, "dev-libs/a-1").use == std::vector<std::string>{"a", "b"});
  // USE in another order is the same USE.
  stored.rows[0].use = {"a", "b"};
  CHECK(diff_plan(stored.info, stored.rows, stored.edges, changed, net::PlanMode::replace, false, 200).reply.reset ==
        0);

  stored.rows[0].use.clear();
  auto tree = plan;
  tree.tree_timestamp = "T2";
  auto moved = diff_plan(stored.info, stored.rows, stored.edges, tree, net::PlanMode::replace, false, 200);
  CHECK(moved.reply.reset == 4);
  CHECK(moved.info.tree_timestamp == "T2");
  // Adding to a plan keeps the plan's tree: the added packages are judged by it.
  auto added = diff_plan(stored.info, stored.rows, stored.edges, tree, net::PlanMode::add, false, 200);
  CHECK(added.reply.reset == 0);
  CHECK(added.info.tree_timestamp == "T1");
}

TEST_CASE("diff_plan: replace drops what the plan no longer holds; add keeps it")
{
  const auto stored = store(chain_plan());
  auto rows = stored.rows;
  rows[3].state = PkgState::received; // r was built
  rows[3].artifact_path = "dev-libs/r/r-1-1.gpkg.tar";
  portage::Plan smaller;
  smaller.source = "test";
  smaller.packages = {plan_package("dev-libs/a-1"), plan_package("dev-libs/b-1")};
  smaller.edges = {{"dev-libs/b-1", "dev-libs/a-1", portage::EdgeKind::depend}};

  auto kept = diff_plan(stored.info, rows, stored.edges, smaller, net::PlanMode::replace, false, 200);
  CHECK(kept.deleted == std::vector<int64_t>{3}); // c: never built
  CHECK(kept.reply.removed == 1);
  CHECK_FALSE(row_of(kept, "dev-libs/r-1").in_plan); // built: kept out of the plan
  CHECK(kept.remove_files.empty());
  CHECK(kept.edges.size() == 1);
  CHECK(kept.edges_changed);

  auto cleared = diff_plan(stored.info, rows, stored.edges, smaller, net::PlanMode::replace, true, 200);
  CHECK(cleared.deleted.size() == 2);
  CHECK(cleared.remove_files == std::vector<std::string>{"dev-libs/r/r-1-1.gpkg.tar"});

  auto merged = diff_plan(stored.info, rows, stored.edges, smaller, net::PlanMode::add, false, 200);
  CHECK(merged.deleted.empty());
  CHECK(merged.rows.size() == 4);
  CHECK(merged.edges.size() == 3);
  CHECK_FALSE(merged.reply.changed);
}

TEST_CASE("plan state: blocking cascades to dependants and unblocking restores them")
{
  const auto stored = store(chain_plan());
  PlanState state;
  CHECK(state.assign({stored.info}, stored.rows, stored.edges).empty());
  auto* a = state.find("default", "dev-libs/a-1");
  REQUIRE(a);
  const auto blocked = state.set_state(*a, PkgState::blocked);
  CHECK(blocked.size() == 2); // b and c
  CHECK(state.find("default", "app-misc/c-1")->state == PkgState::dep_failed);
  const auto restored = state.set_state(*a, PkgState::needed);
  CHECK(restored.size() == 2);
  CHECK(state.find("default", "app-misc/c-1")->state == PkgState::needed);
  CHECK(state.is_ready(*a));
  CHECK(state.waiting_count() == 2);
}
