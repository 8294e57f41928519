#!/usr/bin/env python3
"""End-to-end: a drone's life beyond building.

1. SIGTERM while building (drain "finish", the default): the build completes, is uploaded and
   reported, and the drone exits 0.
2. SIGTERM with --drain return: the build is stopped, its lease handed back (the package is
   needed again at once and another drone builds it), and the drone exits 0.
3. A finished build that could not be uploaded survives a kill -9: the orchestrator is down
   when the build ends (so the artifact waits in the spool, deterministically), the drone is
   killed, both come back, and the restarted drone uploads the spooled artifact and reports.
4. A drone whose spool disk has less free space than --min-free-disk claims no work.
"""

import glob
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Swarm, make_plan  # noqa: E402

LONG_SECONDS = 3000  # × the fake emerge's default time scale 0.001 = 3 s


def one_package_plan(cpv, seconds):
    plan = make_plan(1)
    plan["packages"][0].update({"cpv": cpv, "build_seconds": seconds})
    return plan


def spool_dir(sw, name):
    return os.path.join(sw.dir, "drones", name, "spool")


def spool_states(sw, name):
    states = []
    for path in glob.glob(os.path.join(spool_dir(sw, name), "leases", "*", "state.json")):
        try:
            with open(path) as f:
                states.append(json.load(f))
        except (OSError, ValueError):
            pass
    return states


def building(sw, name, cpv):
    """The drone's emerge of `cpv` is running (its output is in the spool's build log)."""
    for path in glob.glob(os.path.join(spool_dir(sw, name), "leases", "*", "build.log")):
        try:
            with open(path, errors="replace") as f:
                if f"Emerging (1 of 1) {cpv}" in f.read():
                    return True
        except OSError:
            pass
    return False


def package(orch, cpv):
    return orch.api("GET", f"/api/v1/packages/{cpv}").json()


def sigterm_finishes(sw):
    orch = sw.start_orch("orch-term")
    cpv = "app-test/slow-1.0"
    plan = one_package_plan(cpv, LONG_SECONDS)
    plan_file = sw.write_plan(plan, "plan-term.json")
    sw.submit(orch, plan)
    drone = sw.start_drone(orch.url, "finisher", sw.enroll(orch, "finisher"), plan_file)
    sw.wait_until(lambda: building(sw, "finisher", cpv), 20, "the slow build running")
    drone.signal(signal.SIGTERM)
    code = drone.wait(timeout=30)
    sw.check(code == 0, f"SIGTERM while building: the drone exits 0 (got {code})")
    state = package(orch, cpv)
    sw.check(state["state"] == "received" and state["artifact"]["built_by"] == "finisher",
             f"the build was finished and uploaded before the exit: {state['state']}")
    results = [(b["drone"], b["result"]) for b in harness.builds(orch, package=cpv)]
    sw.check(results == [("finisher", "success")], f"and reported: {results}")
    sw.check(not os.listdir(os.path.join(spool_dir(sw, "finisher"), "leases")), "its spool is empty")


def sigterm_returns(sw):
    orch = sw.start_orch("orch-return")
    cpv = "app-test/slow-2.0"
    plan = one_package_plan(cpv, LONG_SECONDS * 3)
    plan_file = sw.write_plan(plan, "plan-return.json")
    sw.submit(orch, plan)
    drone = sw.start_drone(orch.url, "returner", sw.enroll(orch, "returner"), plan_file, extra=["--drain", "return"])
    sw.wait_until(lambda: building(sw, "returner", cpv), 20, "the slow build running")
    drone.signal(signal.SIGTERM)
    code = drone.wait(timeout=20)
    sw.check(code == 0, f"SIGTERM with --drain return: the drone exits 0 (got {code})")
    state = package(orch, cpv)
    sw.check(state["state"] == "needed", f"the package is needed again at once: {state['state']}")
    results = [(b["drone"], b["result"]) for b in harness.builds(orch, package=cpv)]
    sw.check(results == [("returner", "returned")], f"the lease was handed back, not expired: {results}")
    sw.check(any(e["kind"] == "returned" and e["drone"] == "returner" for e in harness.all_events(orch)),
             "the orchestrator recorded the return")
    sw.check(not os.listdir(os.path.join(spool_dir(sw, "returner"), "leases")), "its spool is empty")

    sw.start_drone(orch.url, "heir", sw.enroll(orch, "heir"), plan_file, extra_env={"SWARM_FAKE_TIME_SCALE": "0.0001"})
    sw.wait_until(lambda: package(orch, cpv)["state"] == "received", 20, "another drone building it")
    sw.check(package(orch, cpv)["artifact"]["built_by"] == "heir", "built by the other drone")


def spooled_artifact_survives(sw):
    orch = sw.start_orch("orch-spool")
    cpv = "app-test/phoenix-1.0"
    plan = one_package_plan(cpv, 1500)
    plan_file = sw.write_plan(plan, "plan-spool.json")
    sw.submit(orch, plan)
    token = sw.enroll(orch, "phoenix")
    drone = sw.start_drone(orch.url, "phoenix", token, plan_file)
    sw.wait_until(lambda: building(sw, "phoenix", cpv), 20, "the build running")
    events_before = len(harness.all_events(orch))
    orch.proc.kill()  # the build ends while the orchestrator is down: nowhere to upload
    down_since = time.monotonic()
    sw.wait_until(lambda: [s["phase"] for s in spool_states(sw, "phoenix")] == ["built"], 20,
                  "the built artifact waiting in the spool")
    drone.wait_for_line(r"upload failed .*retrying", timeout=20)
    drone.kill()
    artifacts = glob.glob(os.path.join(spool_dir(sw, "phoenix"), "leases", "*", "*.gpkg.tar"))
    sw.check(len(artifacts) == 1, f"the artifact is in the spool after kill -9: {artifacts}")

    # An outage longer than the drone timeout (3 s): the drones were silent because the
    # orchestrator was down, which must not cost them their leases once it is back.
    sw.wait_until(lambda: time.monotonic() - down_since > 3.5, 10, "an outage longer than --drone-timeout")
    sw.restart_orch(orch)
    drone = sw.start_drone(orch.url, "phoenix", token, plan_file)
    sw.wait_until(lambda: package(orch, cpv)["state"] == "received", 20, "the spooled artifact uploaded")
    drone.wait_for_line(r"resuming delivery", timeout=5)
    sw.wait_until(lambda: [b["result"] for b in harness.builds(orch, package=cpv)] == ["success"], 15,
                  "the success reported by the restarted drone")
    sw.check(package(orch, cpv)["artifact"]["built_by"] == "phoenix", "received from the spool of the first run")
    after = harness.all_events(orch)[events_before:]
    taken = [(e["kind"], e["drone"], e["package"]) for e in after if e["kind"] in ("offline", "reclaimed", "expired")]
    sw.check(not taken, f"the restarted orchestrator kept the lease for the returning drone: {taken}")
    sw.wait_until(lambda: not os.listdir(os.path.join(spool_dir(sw, "phoenix"), "leases")), 10,
                  "the spool emptied once acknowledged")
    harness.check_staging(sw, orch, plan)


def low_disk_claims_nothing(sw):
    orch = sw.start_orch("orch-disk")
    plan = make_plan(8, seed=2)
    plan_file = sw.write_plan(plan, "plan-disk.json")
    sw.submit(orch, plan)
    full = sw.start_drone(orch.url, "full", sw.enroll(orch, "full"), plan_file, min_free_disk="1000000T")
    full.wait_for_line(r"not claiming work: free disk .* below the minimum", timeout=20)
    sw.start_drone(orch.url, "roomy", sw.enroll(orch, "roomy"), plan_file, slots=2)
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(plan["packages"]), 40, "the plan built")
    sw.check(not harness.builds(orch, drone="full"), "the drone short of disk got no work")
    drones = {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}
    sw.check(drones["full"]["online"] and drones["full"]["disk_free_bytes"] > 0,
             f"it is online and reports its free disk: {drones['full']['disk_free_bytes']}")


def main():
    sw = Swarm("lifecycle")
    sigterm_finishes(sw)
    sigterm_returns(sw)
    spooled_artifact_survives(sw)
    low_disk_claims_nothing(sw)
    sw.finish()


if __name__ == "__main__":
    main()
