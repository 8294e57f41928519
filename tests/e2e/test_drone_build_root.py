"""Where a drone builds: a drone that cannot set up isolated build roots refuses to start and names
the way out; `--build-root host` builds but warns in its log and in `swarm drones`; `swarm drone
reset-root` removes kept roots and checks its input. (The real builds in isolated roots are in
test_drone_isolation.py and test_realportage_drones.py.)
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, Swarm, make_plan  # noqa: E402


def swarm(*args):
    return subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=120)


sw = Swarm("drone-build-root")
orch = sw.start_orch("orch")
token = sw.enroll(orch, "d1")

# A build base that is not there: no isolated root can be set up, the drone says so and stops.
spool = os.path.join(sw.dir, "spool-bad")
bad = swarm("drone", "--url", orch.url, "--name", "d1", "--token-file", sw.token_file(token), "--spool", spool, "--emerge", "/bin/true",
            "--build-base", "/nonexistent-swarm-base", "--min-free-disk", "1M")
errors = [line for line in bad.stderr.splitlines() if line.startswith("swarm: error:")]
sw.check(bad.returncode != 0 and len(errors) == 1 and "--build-root host" in errors[0],
         f"a drone that cannot isolate its builds refuses to start in one line naming --build-root host "
         f"({bad.returncode}: {errors or bad.stderr[-300:]})")
bad_mode = swarm("drone", "--url", orch.url, "--token-file", sw.token_file(token), "--spool", spool, "--build-root", "chroot")
sw.check(bad_mode.returncode == 2 and "'isolated' or 'host'" in bad_mode.stderr,
         f"an unknown build root mode is a usage error ({bad_mode.returncode}: {bad_mode.stderr.strip()[-200:]})")
relative = swarm("drone", "--url", orch.url, "--token-file", sw.token_file(token), "--spool", spool, "--build-base", "stage3")
sw.check(relative.returncode == 2 and "absolute" in relative.stderr,
         f"a relative build base is a usage error ({relative.stderr.strip()[-200:]})")

# --build-root host: builds on the machine's own system, with a warning in the log and in `swarm drones`.
plan = make_plan(3, build_seconds=(1, 2))
sw.submit(orch, plan)
drone = sw.start_drone(orch.url, "d1", token, sw.write_plan(plan), time_scale=0.01, extra=["--build-root", "host"])
drone.wait_for_line(r"drone d1 ready \(1 slots, build root host\)", timeout=60)
sw.check(any("build root: host" in line and "WARN" in line for line in drone.output()),
         "the drone warns in its log that it builds on its own system")
sw.wait_until(lambda: sw.status(orch)["counts"].get("received", 0) == 3, timeout=120, what="every package received")
shown = swarm("drones", "--url", orch.url, "--token-file", orch.admin_token_file)
sw.check(shown.returncode == 0 and "host (!)" in shown.stdout
         and "warning: drone d1 builds in its host's root (build_root host)" in shown.stderr,
         f"`swarm drones` warns about it ({shown.stdout.strip()[-300:]}{shown.stderr.strip()[-200:]})")
listed = json.loads(swarm("drones", "--url", orch.url, "--token-file", orch.admin_token_file, "--json").stdout)
sw.check([d["build_root"] for d in listed] == ["host"], f"the registration says build_root host ({listed})")

# reset-root: kept roots of one profile, or all; bad input is a usage error.
cache = os.path.join(sw.dir, "spool-keep", "roots", "cache")
for key in ("desktop-own", "desktop-0123456789ab", "server-own"):
    os.makedirs(os.path.join(cache, key, "upper"))
spool_keep = os.path.join(sw.dir, "spool-keep")


def kept():
    return sorted(name for name in os.listdir(cache) if not name.endswith(".lock"))  # the locks may stay



one = swarm("drone", "reset-root", "--spool", spool_keep, "--profile", "desktop", "--json")
sw.check(one.returncode == 0 and json.loads(one.stdout) == {"removed": 2} and kept() == ["server-own"],
         f"reset-root --profile desktop removes desktop's kept roots only ({one.stdout}{one.stderr})")
every = swarm("drone", "reset-root", "--spool", spool_keep)
sw.check(every.returncode == 0 and "removed 1 kept build root" in every.stdout and kept() == [],
         f"reset-root removes every kept root ({every.stdout.strip()})")
wrong = swarm("drone", "reset-root", "--spool", spool_keep, "--profile", "../etc")
sw.check(wrong.returncode == 2 and wrong.stderr.startswith("swarm: error:"),
         f"a bad profile name is a usage error ({wrong.returncode}: {wrong.stderr.strip()})")
sw.finish()
