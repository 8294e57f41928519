#!/usr/bin/env python3
"""End-to-end: `swarm monitor --json` follows a plan to the end (exit 0) and `--lines` stops on a
stuck plan (exit 1); without a terminal it prints one plain snapshot (drones, counts, events, the
next step); an unreachable orchestrator is exit 3 with a one-line error. The full screen is
tested in test_monitor_tui.py."""

import json
import os
import subprocess

from harness import SWARM, Swarm, make_plan

sw = Swarm("monitor")
orch = sw.start_orch(extra=["--package-failure-drones", "1"])
plan = make_plan(12, width=4, build_seconds=(100, 300))
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
token = sw.enroll(orch, "d1")
sw.start_drone(orch.url, "d1", token, plan_file, slots=2, time_scale=0.002)

run = subprocess.run([SWARM, "monitor", "--url", orch.url, "--token-file", orch.admin_token_file, "--interval", "0.2", "--json"],
                     capture_output=True, text=True, timeout=60)
lines = [json.loads(line) for line in run.stdout.splitlines()]
sw.check(run.returncode == 0, f"monitor exits 0 when the plan completes ({run.returncode}, {run.stderr.strip()})")
sw.check(lines and lines[-1]["done"] and lines[-1]["complete"] == 12, "the last update says 12/12 complete")
sw.check(all(line["total"] == 12 for line in lines), "every update has the plan's total")
sw.check(all(a["complete"] <= b["complete"] for a, b in zip(lines, lines[1:])), "progress never goes backwards")

human = subprocess.run([SWARM, "monitor", "--url", orch.url, "--token-file", orch.admin_token_file, "--once"],
                       capture_output=True, text=True, timeout=30)
sw.check(human.returncode == 0 and "12/12 complete" in human.stdout and "swarm verify" in human.stdout,
         f"a human-readable update names the next step: {human.stdout.strip()!r}")
# Without a terminal (and without --once) the same: one snapshot, and the command ends.
snapshot = subprocess.run([SWARM, "monitor", "--url", orch.url, "--token-file", orch.admin_token_file],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
sw.check(snapshot.returncode == 0 and "12/12 complete" in snapshot.stdout and "swarm verify" in snapshot.stdout,
         f"without a terminal monitor prints one snapshot and ends ({snapshot.returncode}, {snapshot.stderr!r})")
for needle in ("d1", "idle", "complete 12", "LATEST EVENTS", "received", "plan complete"):
    sw.check(needle in snapshot.stdout, f"the snapshot shows {needle!r}")
sw.check("\x1b" not in snapshot.stdout and "q quit" not in snapshot.stdout,
         "the snapshot is plain text: no escape sequences, no key help")

# A plan whose root fails everywhere: everything else is dep-failed, monitor stops with 1.
stuck = make_plan(5, width=1, build_seconds=(100, 100), category="app-stuck")
stuck_file = sw.write_plan(stuck, "stuck.json")
sw.submit(orch, stuck)
root = stuck["packages"][0]["cpv"]
token2 = sw.enroll(orch, "d2")
sw.start_drone(orch.url, "d2", token2, stuck_file, slots=1, time_scale=0.002, fail=root)
run = subprocess.run([SWARM, "monitor", "--url", orch.url, "--token-file", orch.admin_token_file, "--interval", "0.2",
                      "--lines"], capture_output=True, text=True, timeout=60)
counts = sw.status(orch)["counts"]
sw.check(run.returncode == 1 and counts["blocked"] == 1 and counts["dep-failed"] == 4,
         f"monitor exits 1 on a stuck plan ({run.returncode}, {counts})")
sw.check("swarm fix-blocked" in run.stdout, "and says to run `swarm fix-blocked`")
sw.check(run.stdout.count("complete (") >= 1, "--lines prints progress lines")

bad = subprocess.run([SWARM, "monitor", "--url", orch.url, "--token-file", orch.admin_token_file, "--profile", "no/such"],
                     capture_output=True, text=True, timeout=30)
sw.check(bad.returncode != 0 and bad.stderr.startswith("swarm:") and bad.stderr.count("\n") == 1,
         f"a bad --profile is one error line ({bad.returncode}, {bad.stderr!r})")

down = subprocess.run([SWARM, "monitor", "--url", "http://127.0.0.1:9", "--once"],
                      capture_output=True, text=True, timeout=30, env={**os.environ, "SWARM_TOKEN": "x"})
sw.check(down.returncode == 3 and down.stderr.startswith("swarm: error:") and down.stderr.count("\n") == 1,
         f"unreachable: exit 3 and one error line ({down.returncode}, {down.stderr!r})")
sw.finish()
