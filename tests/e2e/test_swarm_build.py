#!/usr/bin/env python3
"""End-to-end: three drones build a 60-package plan with dependency edges.

Every package is built exactly once and never handed out before its build dependencies were
received (the fake emerge fails with "missing build dependency" when one is not installed);
staging holds exactly the 60 GPKGs, each valid for its CAT/PF and the one the orchestrator
recorded; the staging binhost's Packages (drone token) lists all 60. Authentication: no token
is 401, a drone token on an admin endpoint is 403, a drone acting on another drone's lease is
403.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import TREE, Swarm, http, make_plan  # noqa: E402


def check_auth(sw, orch, plan, tokens):
    sw.check(http("POST", orch.url + "/api/v1/claim?wait=0", {}).status == 401, "claim without a token: 401")
    sw.check(http("POST", orch.url + "/api/v1/plan", {"plan": plan}).status == 401, "plan without a token: 401")
    sw.check(http("POST", orch.url + "/api/v1/claim?wait=0", {}, token="swd_not-a-token").status == 401,
             "claim with an unknown token: 401")
    sw.check(http("POST", orch.url + "/api/v1/plan", {"plan": plan}, token=tokens["d1"]).status == 403,
             "a drone token on /api/v1/plan: 403")

    # A drone ("manual", driven from here) holds a lease; d1 must not act on it.
    manual = tokens["manual"]
    hello = {"name": "manual", "protocol": 1, "version": "e2e", "cores": 1, "slots": 1, "ram_bytes": 1 << 30,
             "disk_free_bytes": 1 << 34, "tree_timestamp": TREE}
    sw.check(http("POST", orch.url + "/api/v1/drones/register", hello, token=manual).status == 200,
             "a drone registers by hand")
    reply = http("POST", orch.url + "/api/v1/claim?wait=5", {}, token=manual).json()
    lease = reply["lease"]
    sw.check(lease is not None and lease["deps"] == [], f"it gets a lease on a package without deps: {reply}")
    lease_url = f"{orch.url}/api/v1/leases/{lease['id']}"
    other = tokens["d1"]
    sw.check(http("POST", lease_url + "/report", {"result": "failure", "reason": "x"}, token=other).status == 403,
             "another drone reporting on the lease: 403")
    upload = http("PUT", lease_url + "/artifact", b"not a gpkg", token=other,
                  headers={"Content-Type": "application/octet-stream", "X-Swarm-Sha256": "0" * 64,
                           "X-Swarm-Xxh3-128": "0" * 32})
    sw.check(upload.status == 403, f"another drone uploading for the lease: 403 (got {upload.status})")
    sw.check(http("POST", lease_url + "/return", {}, token=other).status == 403,
             "another drone returning the lease: 403")
    sw.check(http("POST", lease_url + "/report", {"result": "success"}, token=None).status == 401,
             "a report without a token: 401")
    sw.check(http("POST", lease_url + "/return", {}, token=manual).status == 200, "its owner hands it back")
    return lease["cpv"]


def main():
    sw = Swarm("build")
    orch = sw.start_orch("orch")
    plan = make_plan(60)
    plan_file = sw.write_plan(plan)
    tokens = {name: sw.enroll(orch, name) for name in ("d1", "d2", "d3", "manual")}
    sw.submit(orch, plan)
    returned_cpv = check_auth(sw, orch, plan, tokens)

    drones = {name: sw.start_drone(orch.url, name, tokens[name], plan_file, slots=2) for name in ("d1", "d2", "d3")}
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 60, timeout=90, what="60 packages received")
    # The last success reports follow the uploads.
    sw.wait_until(lambda: sum(b["result"] == "success" for b in harness.builds(orch)) >= 60, timeout=20,
                  what="60 successful builds reported")
    counts = sw.status(orch)["counts"]
    sw.check(counts["received"] == 60 and counts["blocked"] == 0 and counts["dep-failed"] == 0,
             f"all 60 received, none blocked: {counts}")

    # Each package built exactly once, by one of the three drones, and no build failed.
    all_builds = harness.builds(orch)
    success = collections.Counter(b["package"] for b in all_builds if b["result"] == "success")
    cpvs = sorted(p["cpv"] for p in plan["packages"])
    sw.check(sorted(success) == cpvs and set(success.values()) == {1},
             f"one successful build per package ({len(success)} packages, most {max(success.values())})")
    failed = [b for b in all_builds if b["result"] not in ("success", "returned")]
    sw.check(not failed, f"no build failed, expired or was cancelled: {failed[:3]}")
    sw.check([b["package"] for b in all_builds if b["result"] == "returned"] == [returned_cpv],
             "the only other build is the lease handed back by hand")
    sw.check({b["drone"] for b in all_builds if b["result"] == "success"} == {"d1", "d2", "d3"},
             "all three drones built something")
    for name, proc in drones.items():
        missing = [line for line in proc.output() if "missing build dependency" in line]
        sw.check(not missing, f"drone {name}: no missing build dependency {missing[:2]}")

    # Never handed out before its dependencies were received (event ids are ordered).
    events = harness.all_events(orch)
    received = collections.defaultdict(list)
    delegated = collections.defaultdict(list)
    for event in events:
        if event["kind"] == "received":
            received[event["package"]].append(event["id"])
        elif event["kind"] == "delegated":
            delegated[event["package"]].append(event["id"])
    sw.check(all(len(received[cpv]) == 1 for cpv in cpvs), "one 'received' event per package")
    needs = collections.defaultdict(set)
    for edge in plan["edges"]:
        needs[edge["package"]].add(edge["needs"])
    early = [(cpv, dep) for cpv in cpvs for dep in needs[cpv] for lease_event in delegated[cpv]
             if not received[dep] or received[dep][0] > lease_event]
    sw.check(all(delegated[cpv] for cpv in cpvs) and not early,
             f"no package delegated before its dependencies were received {early[:3]}")
    in_edges = sum(1 for cpv in cpvs if needs[cpv])
    sw.check(in_edges >= 50, f"the plan has dependencies worth checking ({in_edges} packages with deps)")

    # Staging: exactly the 60 artifacts, valid, as recorded; the binhost index lists them.
    harness.check_staging(sw, orch, plan)
    staging = f"{orch.url}/staging/{harness.orch_id(orch)}/Packages"
    sw.check(http("GET", staging).status == 401, "the staging binhost without a token: 401")
    index = http("GET", staging, token=tokens["d2"])
    sw.check(index.status == 200, f"staging Packages with a drone token: {index.status}")
    listed = harness.packages_index_cpvs(index.body.decode())
    sw.check(sorted(listed) == cpvs, f"staging Packages lists all 60 ({len(listed)} listed)")
    sw.finish()


if __name__ == "__main__":
    main()
