"""`swarm status`: the NEXT ACTION and the exit code for each state — no plan, no drone, building,
grounded drone, drone on another tree, offline drone, all built, released, blocked — and 3 when
the orchestrator cannot be reached; also through a gateway."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Swarm  # noqa: E402
from release_helpers import cli, cli_json, flat_plan  # noqa: E402

sw = Swarm("status")
orch = sw.start_orch("orch", extra=["--package-failure-drones", "1"])


def state(expected_state, expected_code, what, url=None):
    code, body = cli_json(url or orch, "status")
    action = body.get("next_action", {})
    sw.check(code == expected_code and action.get("state") == expected_state,
             f"{what}: NEXT ACTION {action.get('state')} ({action.get('message', '')[:90]!r}), exit {code}")
    return action


state("no-plan", 0, "no plan")
code, out, err = cli("http://127.0.0.1:1", "status")
sw.check(code == 3 and "swarm: error:" in err, f"unreachable orchestrator → exit 3 ({code})")

cpvs = [f"app-test/slow{i}-1" for i in range(4)]
plan = flat_plan(cpvs, seconds=250)
plan_file = sw.write_plan(flat_plan(cpvs + ["app-test/bad-1"], seconds=250))  # what the fake builder knows
sw.submit(orch, plan)
state("drones", 1, "a plan and no drone")

token = sw.enroll(orch, "d1")
d1 = sw.start_drone(orch.url, "d1", token, plan_file, slots=1, time_scale=0.01, fail="app-test/bad-1")
sw.wait_until(lambda: sw.status(orch)["counts"]["delegated"] >= 1, 30, "d1 building")
state("building", 0, "building with a healthy drone")
code, out, _ = cli(orch, "status")
sw.check("NEXT ACTION" in out and "packages" in out and "d1" in out, "status prints counts, drones and NEXT ACTION")

orch.api("POST", "/api/v1/control/ground", {"drone": "d1"})
action = state("drones", 1, "grounded drone")
sw.check("swarm unground d1" in action.get("commands", []), "grounded: says to unground d1")
orch.api("POST", "/api/v1/control/unground", {"drone": "d1"})

token2 = sw.enroll(orch, "d2")
d2 = sw.start_drone(orch.url, "d2", token2, plan_file, tree="Mon, 30 Nov 2026 00:00:00 +0000")
sw.wait_until(lambda: any(d["name"] == "d2" and d["online"] for d in sw.status(orch)["drones"]), 20, "d2 online")
action = state("tree-mismatch", 1, "a drone on another Portage tree")
sw.check(action.get("commands") == ["swarm sync-verify"], "tree mismatch: says swarm sync-verify")
d2.kill()
sw.wait_until(lambda: any(d["name"] == "d2" and not d["online"] for d in sw.status(orch)["drones"]), 20, "d2 offline")
if sw.status(orch)["counts"]["needed"] + sw.status(orch)["counts"]["delegated"] > 0:
    action = state("drones", 1, "an offline drone while work is left")
    sw.check("d2" in action.get("message", "") and "offline" in action.get("message", ""), "offline: names d2")

sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(cpvs), 60, "all built")
state("all-built", 1, "all built, not released")
code, release = cli_json(orch, "finalize", "--yes")
sw.check(code == 0 and release["packages"] == len(cpvs)
         and orch.api("GET", "/api/v1/releases").json()["current"] == release["release"],
         f"finalize publishes the {len(cpvs)} packages ({release.get('release')})")
state("released", 0, "all built and released")

gateway = sw.start_gateway([orch.url])
code, out, _ = cli(gateway, "status", token=orch.admin_token)
sw.check(code == 0 and "gateway" in out and orch.url in out, f"status through the gateway shows it ({code})")

sw.submit(orch, flat_plan(["app-test/bad-1"]), mode="add")
sw.wait_until(lambda: sw.status(orch)["counts"]["blocked"] == 1, 30, "bad-1 blocked")
action = state("blocked", 1, "a blocked package")
sw.check(action.get("commands") == ["swarm fix-blocked"], "blocked: says swarm fix-blocked")
sw.finish()
