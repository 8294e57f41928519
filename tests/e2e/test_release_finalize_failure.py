#!/usr/bin/env python3
"""End-to-end: `swarm release` stops with exit 14 when finalize itself fails (here: the
releases directory cannot be written), publishes nothing half-made, and succeeds when run again
once the cause is fixed."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Swarm  # noqa: E402
from release_helpers import cli, flat_plan  # noqa: E402

sw = Swarm("release-finalize-failure")
orch = sw.start_orch()
plan = flat_plan(["app-misc/one-1", "app-misc/two-1"])
plan_file = sw.write_plan(plan)
sw.start_drone(orch.url, "d1", sw.enroll(orch, "d1"), plan_file, slots=2, time_scale=0.001)

releases = os.path.join(orch.data_dir, "releases")
shutil.rmtree(releases)
with open(releases, "w") as f:  # a file where the releases directory should be
    f.write("not a directory\n")
code, out, err = cli(orch, "release", "--plan", plan_file, "--wait-timeout", "60")
sw.check(code == 14 and out.startswith("STARTED") and "STOPPED finalize" in out,
         f"finalize failing → 14 ({code}) {out[-300:]} {err[-200:]}")
sw.check(not os.path.lexists(os.path.join(orch.data_dir, "production")), "nothing was published")

os.remove(releases)
os.makedirs(releases)
code, out, err = cli(orch, "release", "--plan", plan_file, "--wait-timeout", "60")
sw.check(code == 0 and "DONE release" in out, f"run again after the fix → 0 ({code}) {out[-300:]} {err[-200:]}")
sw.check(os.path.exists(os.path.join(orch.data_dir, "production", "Packages")), "production now has a Packages index")
sw.finish()
