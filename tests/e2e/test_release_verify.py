"""`swarm verify` on crafted states: a blocked library with many dependants scores higher than a
blocked leaf; a tampered staging file is a hash mismatch; a stray file is a finding; finalize
refuses above the threshold unless --force and never publishes a tampered file. Then `swarm
release` and its exit codes."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TIME_SCALE, Swarm  # noqa: E402
from release_helpers import check_binhost, cli, cli_json, flat_plan  # noqa: E402

# How long `swarm release` waits for a small plan to build (a sanitized build is slower).
WAIT = f"{60 * TIME_SCALE:g}"

sw = Swarm("release-verify")
LIB, LEAF = "dev-libs/lib-1", "app-misc/leaf-1"
users = [f"app-misc/user{i}-1" for i in range(10)]
plan = flat_plan([LIB, LEAF] + users, edges=[(u, LIB) for u in users])
plan_file = sw.write_plan(plan)

# Two orchestrators on the same plan: one where the library fails, one where the leaf fails.
runs = {}
for name, failing in (("lib", LIB), ("leaf", LEAF)):
    orch = sw.start_orch(name, extra=["--package-failure-drones", "1"])
    sw.submit(orch, plan)
    sw.start_drone(orch.url, f"d-{name}", sw.enroll(orch, f"d-{name}"), plan_file, slots=3, time_scale=0.001,
                   fail=failing)
    runs[name] = orch
for name, orch in runs.items():
    sw.wait_until(lambda: (lambda c: c["needed"] + c["delegated"] == 0)(sw.status(orch)["counts"]), 60, f"{name} settled")

code_lib, lib_report = cli_json(runs["lib"], "verify")
code_leaf, leaf_report = cli_json(runs["leaf"], "verify")
weight = {r: {(f["kind"], f["package"]): f["weight"] for f in rep["findings"]}
          for r, rep in (("lib", lib_report), ("leaf", leaf_report))}
sw.check(weight["lib"].get(("blocked", LIB), 0) > weight["leaf"].get(("blocked", LEAF), 0) > 0,
         f"blocked library weighs more than a blocked leaf ({weight['lib'].get(('blocked', LIB))} > "
         f"{weight['leaf'].get(('blocked', LEAF))})")
sw.check(lib_report["score"] > leaf_report["score"], f"score {lib_report['score']} > {leaf_report['score']}")
sw.check(sum(1 for k in weight["lib"] if k[0] == "dep-failed") == len(users), "every dep-failed dependant is a finding")
sw.check(code_lib == 1 and not lib_report["pass"], f"blocked library fails the default threshold (exit {code_lib})")
sw.check(code_leaf == 0 and leaf_report["pass"] and leaf_report["threshold"] == 15,
         f"blocked leaf passes threshold 15 (exit {code_leaf})")
code, report = cli_json(runs["leaf"], "verify", "--threshold", "0")
sw.check(code == 1 and report["threshold"] == 0, "--threshold 0 makes the leaf fail")
code, out, _ = cli(runs["lib"], "verify")
sw.check(code == 1 and "FAIL" in out and "blocked" in out and LIB in out, "verify prints the findings with weights")

# Tamper with one staged file, add a stray file.
orch = runs["leaf"]
victim = next(p for p in sw.packages(orch) if p["cpv"] == users[0])["artifact"]["path"]
with open(os.path.join(orch.data_dir, "staging", victim), "r+b") as f:
    f.seek(600)
    byte = f.read(1)
    f.seek(600)
    f.write(bytes([byte[0] ^ 0xFF]))
# Not a .gpkg.tar: maintenance removes those when no package names them (every second here), so
# one would race the verify below; any other file stays until someone looks.
os.makedirs(os.path.join(orch.data_dir, "staging", "junk"), exist_ok=True)
with open(os.path.join(orch.data_dir, "staging", "junk", "left-1.txt"), "wb") as f:
    f.write(b"not a package")
code, report = cli_json(orch, "verify")
kinds = {(f["kind"], f["package"]) for f in report["findings"]}
sw.check(("hash-mismatch", users[0]) in kinds, f"tampered file → hash-mismatch finding {sorted(kinds)[:4]}")
sw.check(("stray-file", "junk/left-1.txt") in kinds, "stray file → stray-file finding")
sw.check(code == 1 and report["score"] >= 5 + 10 + 2, f"score {report['score']} adds their weights, exit {code}")

code, out, err = cli(orch, "finalize", "--yes")
sw.check(code == 1 and "threshold" in err and "hash-mismatch" in out, f"finalize refuses above the threshold ({code})")
refused = orch.api("POST", "/api/v1/releases/finalize", {})
sw.check(refused.status == 409 and refused.json()["reason"] == "risk" and refused.json()["findings"],
         "POST finalize → 409 with the findings")
code, release = cli_json(orch, "finalize", "--force", "--yes")
sw.check(code == 0 and release["forced"] and users[0] not in release["added"] and LEAF not in release["added"],
         f"finalize --force publishes, without the tampered or blocked package ({release.get('packages')})")
header, packages, problems = check_binhost(orch.url + "/production")
sw.check(not problems and len(packages) == len(users), f"production lists {len(packages)} good packages, all matching")

# `swarm release` on a third orchestrator.
orch = sw.start_orch("cron", extra=["--package-failure-drones", "1"])
known = flat_plan([LIB, LEAF] + users + ["app-test/slow-1"], edges=[(u, LIB) for u in users])
known["packages"][-1]["build_seconds"] = 1e6  # what the fake builder knows: slow-1 takes ~1000 s at this scale
sw.start_drone(orch.url, "d1", sw.enroll(orch, "d1"), sw.write_plan(known, "known.json"), slots=3, time_scale=0.001,
               fail=LEAF)
ok_plan = sw.write_plan(flat_plan([LIB] + users, edges=[(u, LIB) for u in users]), "ok.json")


def releases():
    """(current release id, number of releases) of the cron orchestrator."""
    listing = orch.api("GET", "/api/v1/releases").json()
    return listing["current"], len(listing["releases"])


def plan_state():
    """When the orchestrator's plan was submitted and how many packages it has."""
    status = sw.status(orch)
    return status["plan"]["submitted_at"], status["counts"]["total"]


code, out, err = cli(orch, "release", "--plan", ok_plan, "--wait-timeout", WAIT)
sw.check(code == 0 and out.startswith("STARTED") and "DONE release" in out, f"release publishes (exit {code}) {err[-200:]}")
published = releases()
sw.check(published[0] is not None and published[1] == 1 and f"DONE release {published[0]}" in out,
         f"the release it printed is production ({published})")
header, packages, problems = check_binhost(orch.url + "/production")
sw.check(not problems and sorted(p["CPV"] for p in packages) == sorted([LIB] + users),
         f"production lists the plan's packages ({len(packages)}, {problems[:2]})")
code, out, _ = cli(orch, "release", "--plan", ok_plan, "--wait-timeout", WAIT)
sw.check(code == 15 and releases() == published, f"release again: nothing to do → 15, no new release ({code})")
slow_file = sw.write_plan(flat_plan(["app-test/slow-1"], seconds=1e6), "slow.json")
code, out, _ = cli(orch, "release", "--plan", slow_file, "--wait-timeout", "1")
sw.check(code == 12 and "STOPPED wait:" in out, f"build not done in time → 12 ({code})")
sw.check(plan_state()[1] == 1 and releases() == published, "the slow plan was submitted; nothing was published")
bad_file = sw.write_plan(flat_plan([LIB, LEAF] + users, edges=[(u, LIB) for u in users]), "bad.json")
code, out, _ = cli(orch, "release", "--plan", bad_file, "--wait-timeout", WAIT, "--threshold", "0")
sw.check(code == 13 and "risk score" in out, f"risk above the threshold → 13 ({code})")
sw.check(releases() == published, "the risky staging was not published")
before = plan_state()
code, out, _ = cli(orch, "release", "--emerge", "/bin/false")
sw.check(code == 11 and "STOPPED fresh:" in out and "/bin/false" in out, f"emerge --pretend fails → 11 ({code}) {out[-200:]}")
code, out, _ = cli(orch, "release", "--from", os.path.join(sw.dir, "no-such-emerge-output.txt"))
sw.check(code == 11 and "STOPPED fresh:" in out, f"saved emerge output unreadable → 11 ({code})")
sw.check(plan_state() == before and releases() == published, "a failed fresh leaves the plan and production alone")
sw.start_drone(orch.url, "d2", sw.enroll(orch, "d2"), plan_file, tree="Mon, 30 Nov 2026 00:00:00 +0000")
sw.wait_until(lambda: any(d["name"] == "d2" and d["online"] for d in sw.status(orch)["drones"]), 20, "d2 online")
code, out, _ = cli(orch, "release", "--plan", ok_plan)
sw.check(code == 10 and "d2" in out, f"a drone on another tree → 10 ({code})")
sw.check(plan_state() == before and releases() == published, "sync-verify stops release before the plan is touched")
code, out, _ = cli("http://127.0.0.1:1", "release")
sw.check(code == 3 and out.startswith("STARTED"), f"unreachable → 3 ({code})")
sw.finish()
