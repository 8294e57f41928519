#!/usr/bin/env python3
"""Two swarm profiles build at once on the same drones, each into its own staging and production
binhost (the default at /staging and /production, `desktop` under /p/desktop/); a drone that
builds something else than its lease asks is refused at upload (422 with the differences,
counted against the drone, never reaching staging), and the package is built right elsewhere."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Swarm, http  # noqa: E402
from release_helpers import flat_plan, parse_packages  # noqa: E402

sw = Swarm("profiles")
orch = sw.start_orch("orch")

cpvs = ["app-misc/lib-1", "app-misc/viewer-1", "app-misc/editor-2"]
plan = flat_plan(cpvs, edges=[("app-misc/viewer-1", "app-misc/lib-1")], seconds=1)
plan["packages"][1]["use"] = ["ssl", "X"]
desktop = flat_plan(cpvs[:2], edges=[("app-misc/viewer-1", "app-misc/lib-1")], seconds=1)
desktop["packages"][1]["use"] = ["ssl", "X"]  # the fake builder takes USE from its own plan file
plan_file = sw.write_plan(plan)

result = orch.api("POST", "/api/v1/plan", {"plan": plan, "mode": "replace"})
sw.check(result.status == 200, f"the default plan is accepted: {result.status}")
result = orch.api("POST", "/api/v1/plan", {"plan": desktop, "mode": "replace", "profile": "desktop"})
sw.check(result.status == 200, f"the desktop plan is accepted: {result.status} {result.body[:200]}")
profiles = {p["name"]: p for p in orch.api("GET", "/api/v1/profiles").json()["profiles"]}
sw.check(sorted(profiles) == ["default", "desktop"], f"two profiles: {sorted(profiles)}")
sw.check(profiles["desktop"]["staging_url"].endswith("/p/desktop/staging/" + harness.orch_id(orch)),
         f"desktop's staging URL: {profiles['desktop']['staging_url']}")

# A drone whose builds of viewer are not what the plans ask for.
careless_token = sw.enroll(orch, "careless")
careless = sw.start_drone(orch.url, "careless", careless_token, sw.write_plan(plan, "careless-plan.json"),
                          slots=1, time_scale=0.001, extra_env={"SWARM_FAKE_MISBUILD": "app-misc/viewer-1"})
sw.wait_until(lambda: any(e["kind"] == "misbuilt" for e in harness.all_events(orch)), 60,
              "a mis-built viewer refused")
careless.kill()
misbuilt = [e for e in harness.all_events(orch) if e["kind"] == "misbuilt"]
sw.check(misbuilt[0]["package"] == "app-misc/viewer-1" and "ssl" in misbuilt[0]["detail"],
         f"the refusal names the package and the difference: {misbuilt[0]}")
sw.check(any("422" in line for line in careless.output()), "the drone was answered 422")
for profile in ("default", "desktop"):
    viewer = orch.api("GET", f"/api/v1/packages/app-misc/viewer-1?profile={profile}").json()
    sw.check(viewer["state"] != "received" and viewer["failures"] == 0,
             f"{profile}: viewer is not received and no failure counts against it ({viewer['state']}, "
             f"{viewer['failures']})")
drones = orch.api("GET", "/api/v1/drones").json()["drones"]
sw.check(drones[0]["name"] == "careless" and drones[0]["consecutive_failures"] >= 1,
         f"the refusal counts against the drone: {drones[0]['consecutive_failures']}")
for root in ("staging", os.path.join("profiles", "desktop", "staging")):
    found = [f for _, _, files in os.walk(os.path.join(orch.data_dir, root)) for f in files if f.startswith("viewer")]
    sw.check(not found, f"no viewer in {root}: {found}")

# A good drone builds both profiles.
good_token = sw.enroll(orch, "good")
sw.start_drone(orch.url, "good", good_token, sw.write_plan(plan, "good-plan.json"), slots=2, time_scale=0.001)
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 3, 60, "the default plan built")
sw.wait_until(lambda: orch.api("GET", "/api/v1/status?profile=desktop").json()["counts"]["received"] == 2, 60,
              "the desktop plan built")

# Each staging binhost lists its own builds, with the USE its plan asked for.
for prefix, expected in (("", plan), ("/p/desktop", desktop)):
    index = http("GET", f"{orch.url}{prefix}/staging/{harness.orch_id(orch)}/Packages", token=good_token)
    sw.check(index.status == 200, f"{prefix or 'default'} staging index: {index.status}")
    _, listed = parse_packages(index.body.decode())
    uses = {p["CPV"]: sorted(p.get("USE", "").split()) for p in listed}
    want = {p["cpv"]: sorted(p["use"]) for p in expected["packages"]}
    sw.check(uses == want, f"{prefix or 'default'} staging holds its plan's builds: {uses}")

for profile, count in (("desktop", 2), ("default", 3)):
    verify = orch.api("GET", f"/api/v1/verify?profile={profile}").json()
    sw.check(verify["pass"] and not verify["findings"], f"{profile}: verify passes: {verify['findings'][:3]}")
    final = orch.api("POST", "/api/v1/releases/finalize", {"profile": profile})
    sw.check(final.status == 200 and final.json()["packages"] == count,
             f"{profile}: finalized with {count} packages: {final.status} {final.body[:200]}")
production = http("GET", f"{orch.url}/p/desktop/production/Packages")
_, listed = parse_packages(production.body.decode())
sw.check(sorted(p["CPV"] for p in listed) == sorted(cpvs[:2]), "/p/desktop/production lists the desktop release")
production = http("GET", f"{orch.url}/production/Packages")
_, listed = parse_packages(production.body.decode())
sw.check(sorted(p["CPV"] for p in listed) == sorted(cpvs), "/production lists the default release")
releases = orch.api("GET", "/api/v1/releases?profile=desktop").json()
sw.check(releases["url"].endswith("/p/desktop/production") and len(releases["releases"]) == 1,
         f"desktop's releases: {releases['url']} {len(releases['releases'])}")
sw.check(orch.api("GET", "/api/v1/status?profile=../x").status == 400, "a bad profile name is 400")

sw.finish()
