"""`swarm release` runs the very sync-verify step of `swarm sync-verify`: in each state below the
verb's verdict and whether the pipeline gets past its first step are the same, and both are the
rule's (roles/operator/release_steps.cpp): online drones on another tree fail; an offline drone
(its tree on record is stale, it builds nothing) and a local build identity (`swarm build-local`)
do not count. A failing sync-verify stops release before the plan is touched."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TREE, Swarm, http  # noqa: E402
from release_helpers import cli, cli_json, flat_plan  # noqa: E402

OTHER_TREE = "Mon, 30 Nov 2026 00:00:00 +0000"

sw = Swarm("release-sync-verify")
orch = sw.start_orch("orch")
cpvs = [f"app-test/pkg{i}-1" for i in range(3)]
plan = flat_plan(cpvs)
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
sw.start_drone(orch.url, "d1", sw.enroll(orch, "d1"), plan_file, slots=2, time_scale=0.001)
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(cpvs), 60, "the plan built")


def drone(name):
    return next((d for d in sw.status(orch)["drones"] if d["name"] == name), {})


def both(what, expect_ok):
    """sync-verify --json and release on the current state: they must agree, and agree with the rule."""
    code, report = cli_json(orch, "sync-verify")
    plan_before = sw.status(orch)["plan"]["submitted_at"]
    release_code, out, err = cli(orch, "release", "--plan", plan_file, "--wait-timeout", "60")
    passed = "sync-verify ok:" in out
    sw.check(report["ok"] == passed and (code == 0) == passed and (release_code != 10) == passed,
             f"{what}: sync-verify (ok {report['ok']}, exit {code}) and release (exit {release_code}) agree")
    sw.check(report["ok"] == expect_ok, f"{what}: sync-verify says {'ok' if expect_ok else 'mismatch'}")
    if not expect_ok:
        sw.check(release_code == 10 and "STOPPED sync-verify" in out, f"{what}: release stops at sync-verify ({out[-300:]})")
        sw.check(sw.status(orch)["plan"]["submitted_at"] == plan_before, f"{what}: release left the plan alone")
    return report, release_code, out


# Every drone on the plan's tree.
report, code, out = both("all drones on the plan's tree", True)
sw.check(code == 0 and "DONE release" in out, f"release publishes ({code}) {out[-200:]}")
sw.check([(d["name"], d["online"], d["matches"]) for d in report["drones"]] == [("d1", True, True)],
         f"sync-verify lists d1, online and matching ({report['drones']})")

# A local build identity (swarm build-local on an operator's box) heartbeating with its own tree.
token = sw.enroll(orch, "local-box")
hello = {"name": "local-box", "protocol": 1, "version": "e2e", "cores": 1, "slots": 1, "ram_bytes": 1 << 30,
         "disk_free_bytes": 1 << 30, "tree_timestamp": OTHER_TREE}
registered = http("POST", orch.url + "/api/v1/drones/register", hello, token=token)
sw.check(registered.status == 200, f"local-box registers ({registered.status} {registered.body[:200]})")
stop = threading.Event()


def heartbeats():
    beat = {"cpu_percent": 0, "mem_percent": 0, "load1": 0, "disk_free_bytes": 1 << 30, "tree_timestamp": OTHER_TREE,
            "leases": []}
    while not stop.wait(0.3):
        http("POST", orch.url + "/api/v1/drones/heartbeat", beat, token=token)


thread = threading.Thread(target=heartbeats, daemon=True)
thread.start()
sw.wait_until(lambda: drone("local-box").get("online") and drone("local-box").get("tree_timestamp") == OTHER_TREE,
              20, "local-box online on another tree")
report, code, out = both("a local build identity on another tree", True)
sw.check(code == 15, f"release goes on and has nothing new to publish ({code})")
sw.check("local-box" not in [d["name"] for d in report["drones"]], "sync-verify leaves the local identity out")
sw.check(drone("local-box").get("online"), "local-box was online throughout")
stop.set()
thread.join(10)

# An online drone on another tree.
d2 = sw.start_drone(orch.url, "d2", sw.enroll(orch, "d2"), plan_file, tree=OTHER_TREE)
sw.wait_until(lambda: drone("d2").get("online"), 20, "d2 online")
report, code, out = both("an online drone on another tree", False)
sw.check("d2" in out, "release names d2")
sw.check({d["name"]: (d["online"], d["matches"]) for d in report["drones"]}["d2"] == (True, False),
         "sync-verify marks d2 online and not matching")

# The same drone offline: its tree on record is stale, and it builds nothing.
d2.kill()
sw.wait_until(lambda: drone("d2") and not drone("d2")["online"], 30, "d2 offline")
report, code, out = both("an offline drone on another tree", True)
sw.check(code == 15, f"release goes on and has nothing new to publish ({code})")
sw.check({d["name"]: (d["online"], d["matches"]) for d in report["drones"]}.get("d2") == (False, False),
         "sync-verify still lists d2, offline, with its old tree")

sw.finish()
