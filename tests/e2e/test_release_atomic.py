"""finalize and rollback publish atomically: a concurrent reader that reads production/Packages and
then fetches every file it lists always finds all of them with the SIZE/MD5/SHA1 of that index,
while releases are published and rolled back under it. The Packages written by finalize is read
back with Portage's reader rules and every file matches it."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Swarm, http  # noqa: E402
from release_helpers import check_binhost, cli, cli_json, flat_plan  # noqa: E402

sw = Swarm("release-atomic")
orch = sw.start_orch("orch", extra=["--keep-releases", "3"])
token = sw.enroll(orch, "d1")

first = [f"app-test/pkg{i:02d}-1.0" for i in range(8)]
plan1 = flat_plan(first, edges=[(first[i], first[0]) for i in range(1, 4)])
second = ["app-test/pkg00-1.1"] + first[1:] + [f"app-test/new{i:02d}-1" for i in range(4)]
plan_file = sw.write_plan(flat_plan(first + second[:1] + second[len(first):]), "known.json")  # what the fake builder knows
sw.submit(orch, plan1)
sw.start_drone(orch.url, "d1", token, plan_file, slots=4, time_scale=0.001)
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(first), 60, "plan 1 built")

code, out, err = cli(orch, "finalize")
sw.check(code != 0 and "--yes" in err, f"finalize without --yes and no terminal refuses ({code}, {err.strip()})")
code, rel1 = cli_json(orch, "finalize", "--yes")
sw.check(code == 0 and rel1["packages"] == len(first), f"finalize published release {rel1.get('release')}")
sw.check(rel1["url"] == orch.url + "/production", "finalize answers the production URL")

production = orch.url + "/production"
header, packages, problems = check_binhost(production)
sw.check(not problems and len(packages) == len(first), f"production Packages matches every file it lists {problems[:3]}")
sw.check(header.get("VERSION") == "0" and header.get("PACKAGES") == str(len(first)) and header.get("TIMESTAMP"),
         "Packages header has VERSION 0, PACKAGES and TIMESTAMP")
gz = http("GET", production + "/Packages.gz")
sw.check(gz.status == 200 and gz.body[:2] == b"\x1f\x8b", "Packages.gz is served")

# Portage's client: If-Modified-Since on Packages, Range on a GPKG.
last_modified = http("GET", production + "/Packages").headers.get("Last-Modified")
sw.check(http("GET", production + "/Packages", headers={"If-Modified-Since": last_modified}).status == 304,
         "If-Modified-Since with the current Last-Modified → 304")
ranged = http("GET", production + "/" + packages[0]["PATH"], headers={"Range": "bytes=0-99"})
sw.check(ranged.status == 206 and len(ranged.body) == 100, "Range → 206 with the bytes asked for")

# The reader: snapshots must always be complete and consistent.
stop = threading.Event()
stats = {"snapshots": 0, "problems": []}


def reader():
    while not stop.is_set():
        _, listed, problems = check_binhost(production)
        stats["snapshots"] += 1
        if problems:
            stats["problems"].extend(problems)


thread = threading.Thread(target=reader, daemon=True)
thread.start()

# Release 2: an upgrade in a slot (pkg00 1.0 → 1.1, so 1.0 leaves the listing) and new packages.
plan2 = flat_plan(second)
sw.submit(orch, plan2)
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(second), 60, "plan 2 built")
ids = [rel1["release"]]
code, rel = cli_json(orch, "finalize", "--yes")
sw.check(code == 0 and "app-test/pkg00-1.0" in rel["removed"] and "app-test/pkg00-1.1" in rel["added"],
         f"release 2: pkg00 upgraded in its slot (added {rel.get('added')}, removed {rel.get('removed')})")
ids.append(rel["release"])
for _ in range(4):
    code, rel = cli_json(orch, "rollback", "--yes")
    sw.check(code == 0 and rel["release"] == ids[0], f"rollback to the previous release {rel.get('release')}")
    time.sleep(0.2)
    code, rel = cli_json(orch, "rollback", ids[-1], "--yes")
    sw.check(code == 0 and rel["release"] == ids[-1], f"rollback forward to {ids[-1]}")
    time.sleep(0.2)
stop.set()
thread.join(30)
sw.check(stats["snapshots"] >= 5 and not stats["problems"],
         f"{stats['snapshots']} concurrent snapshots, none mixed releases {stats['problems'][:3]}")

# Releases view and pruning (keep 3).
code, listing = cli_json(orch, "releases")
current = [r for r in listing["releases"] if r["current"]]
sw.check(code == 0 and len(current) == 1 and current[0]["id"] == ids[-1] and listing["unreleased"] == 0,
         "releases lists the current release and nothing unreleased")
code, out, _ = cli(orch, "releases")
sw.check(code == 0 and "* " + ids[-1] in out, "releases marks production with *")
code, out, err = cli(orch, "finalize", "--yes")
after = orch.api("GET", "/api/v1/releases").json()
sw.check(code == 1 and "nothing new" in err and after["current"] == ids[-1] and after["releases"] == listing["releases"],
         f"finalize with nothing new refuses and publishes nothing ({err.strip()})")
code, out, err = cli(orch, "rollback", "nope", "--yes")
sw.check(code != 0 and "swarm: error:" in err and orch.api("GET", "/api/v1/releases").json()["current"] == ids[-1],
         "rollback to an unknown release is an error and leaves production alone")
_, _, problems = check_binhost(production)
sw.check(not problems, "production is consistent at the end")
sw.finish()
