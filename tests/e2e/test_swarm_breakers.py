#!/usr/bin/env python3
"""End-to-end: circuit breakers and sync-verify.

1. A drone whose every build fails is grounded after --drone-failure-limit consecutive
   failures; the leases it still holds are reclaimed at once and the healthy drones build the
   whole plan.
2. A package that fails on every drone is blocked once it failed on two different drones
   (--package-failure-drones 2); its transitive dependants become dep-failed and are never
   built; everything else is received.
3. A drone whose Portage tree timestamp differs from the plan's gets no work, and
   /api/v1/drones says why.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Swarm, dependants_closure, make_plan  # noqa: E402

STALE_TREE = "Mon, 30 Nov 2026 00:00:00 +0000"


def broken_drone_grounded(sw):
    orch = sw.start_orch("orch-ground", extra=["--drone-failure-limit", "2", "--ground-cooldown", "120s"])
    # Four independent roots, two of them short: the broken drone takes all four at once; the
    # two short builds fail first and ground it while the two long ones are still running.
    plan = make_plan(24, seed=3, build_seconds=(20, 80), width=4)
    for package, seconds in zip(plan["packages"][:4], (150, 150, 600, 600)):
        package["build_seconds"] = seconds
    plan_file = sw.write_plan(plan, "plan-ground.json")
    sw.submit(orch, plan)
    roots = {p["cpv"] for p in plan["packages"][:4]}
    broken = sw.start_drone(orch.url, "broken", sw.enroll(orch, "broken"), plan_file, slots=4, fail="*",
                            time_scale=0.01)
    sw.wait_until(lambda: {e["package"] for e in harness.all_events(orch)
                           if e["kind"] == "delegated" and e["drone"] == "broken"} == roots, 20,
                  "the broken drone holding the four roots")
    healthy_tokens = {name: sw.enroll(orch, name) for name in ("good1", "good2")}

    def drone_view(name):
        return {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}[name]

    sw.wait_until(lambda: drone_view("broken")["state"] == "grounded", 20, "the broken drone grounded")
    view = drone_view("broken")
    sw.check("grounded until" in view["reason"] and view["consecutive_failures"] == 2,
             f"/api/v1/drones says why it is grounded: {view['reason']!r} ({view['consecutive_failures']} failures)")
    sw.check(view["running"] == 0 and not [l for l in view["leases"] if l["state"] == "active"],
             f"a grounded drone holds no lease: {view['leases']}")
    events = harness.all_events(orch)
    reclaimed = [e["package"] for e in events if e["kind"] == "reclaimed" and e["drone"] == "broken"]
    # The two long builds at least (a slot freed by the first failure may have taken another).
    long_roots = {p["cpv"] for p in plan["packages"][2:4]}
    sw.check(long_roots <= set(reclaimed) and set(reclaimed) <= roots,
             f"its running leases were reclaimed at once: {reclaimed}")

    for name, token in healthy_tokens.items():
        sw.start_drone(orch.url, name, token, plan_file, slots=2)
    total = len(plan["packages"])
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == total, 40, "the healthy drones finishing the plan")
    sw.wait_until(lambda: all(b["result"] != "running" for b in harness.builds(orch)), 15, "all builds ended")
    broken_builds = collections.Counter(b["result"] for b in harness.builds(orch, drone="broken"))
    sw.check(broken_builds == {"failure": 2, "cancelled": len(reclaimed)},
             f"the broken drone: two failures, the rest cancelled by the grounding: {dict(broken_builds)}")
    packages = sw.packages(orch)
    sw.check(all(p["artifact"]["built_by"] in healthy_tokens for p in packages), "everything built by healthy drones")
    sw.check(not [p for p in packages if p["state"] != "received"], "nothing blocked by one broken drone")
    sw.check(drone_view("broken")["state"] == "grounded", "the broken drone stays grounded during its cool-down")
    sw.check(any("cancelled by the orchestrator" in line for line in broken.output()),
             "the broken drone was told to drop its reclaimed leases")
    harness.check_staging(sw, orch, plan)


def failing_package_blocked(sw):
    orch = sw.start_orch("orch-block", extra=["--package-failure-drones", "2"])
    plan = make_plan(30, seed=9, build_seconds=(20, 200))
    # A package of the second layer with dependants: it fails everywhere.
    culprit = next(p["cpv"] for p in plan["packages"][6:12] if len(dependants_closure(plan, [p["cpv"]])) >= 3)
    doomed = dependants_closure(plan, [culprit])
    expected_received = sorted(p["cpv"] for p in plan["packages"] if p["cpv"] != culprit and p["cpv"] not in doomed)
    plan_file = sw.write_plan(plan, "plan-block.json")
    sw.submit(orch, plan)
    for name in ("f1", "f2", "f3"):
        sw.start_drone(orch.url, name, sw.enroll(orch, name), plan_file, slots=2, fail=culprit)
    stale = sw.start_drone(orch.url, "stale", sw.enroll(orch, "stale"), plan_file, slots=2, tree=STALE_TREE)

    def settled():
        counts = sw.status(orch)["counts"]
        return (counts["received"] == len(expected_received) and counts["blocked"] == 1
                and counts["dep-failed"] == len(doomed))
    sw.wait_until(settled, 40, "the plan settled: one blocked, its dependants dep-failed, the rest received")
    sw.wait_until(lambda: all(b["result"] != "running" for b in harness.builds(orch)), 15, "all builds ended")

    package = orch.api("GET", f"/api/v1/packages/{culprit}").json()
    sw.check(package["state"] == "blocked" and len(package["failed_on"]) == 2,
             f"{culprit} blocked after failing on two drones: {package['state']} on {package['failed_on']}")
    culprit_builds = [b for b in harness.builds(orch, package=culprit)]
    sw.check(len(culprit_builds) == 2 and {b["result"] for b in culprit_builds} == {"failure"}
             and {b["drone"] for b in culprit_builds} == set(package["failed_on"]),
             f"it was tried exactly twice, on two different drones: {[(b['drone'], b['result']) for b in culprit_builds]}")
    states = {p["cpv"]: p["state"] for p in sw.packages(orch)}
    sw.check(all(states[cpv] == "dep-failed" for cpv in doomed),
             f"its {len(doomed)} transitive dependants are dep-failed")
    built = {b["package"] for b in harness.builds(orch)}
    sw.check(not (built & doomed), f"no dependant of it was ever handed out: {sorted(built & doomed)[:3]}")
    sw.check(sorted(cpv for cpv, state in states.items() if state == "received") == expected_received,
             f"the other {len(expected_received)} packages were received")
    harness.check_staging(sw, orch, plan, expected_received)

    # The drone with another tree: no work, and the drones view says why.
    drones = {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}
    view = drones["stale"]
    sw.check(view["online"] and view["tree_matches"] is False and view["running"] == 0,
             f"the stale drone is online, flagged, idle: {view['state']} tree_matches={view['tree_matches']}")
    sw.check(STALE_TREE in view["reason"] and "differs from the plan's" in view["reason"],
             f"/api/v1/drones says why it gets no work: {view['reason']!r}")
    sw.check(not harness.builds(orch, drone="stale"), "the stale drone never got a lease")
    sw.check(stale.alive(), "the stale drone keeps running (it may be synced later)")


def main():
    sw = Swarm("breakers")
    broken_drone_grounded(sw)
    failing_package_blocked(sw)
    sw.finish()


if __name__ == "__main__":
    main()
