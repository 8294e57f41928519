#!/usr/bin/env python3
"""End-to-end: the full-screen `swarm monitor` in an 80x24 tmux pane against a swarm that is
building. The screen shows the drones, the counts and a building package; the keys reach the
admin API (p pauses and resumes, b balances, u unblocks, R asks before it resets); it redraws on
resize; `q` quits with exit code 0."""

import atexit
import os
import re
import shutil
import subprocess
import sys

from harness import SWARM, Swarm, make_plan

if not shutil.which("tmux"):
    print("skip: tmux is not installed (tools/setup.sh installs it)")
    sys.exit(0)

sw = Swarm("monitor-tui")
orch = sw.start_orch()
# Slow enough that builds are running while the screen is read: 10-30 s a package.
plan = make_plan(12, width=4, build_seconds=(100, 300))
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
for name in ("d1", "d2"):
    sw.start_drone(orch.url, name, sw.enroll(orch, name), plan_file, slots=2, time_scale=0.1)
cpvs = {package["cpv"] for package in plan["packages"]}

SOCKET = f"swarm-e2e-{os.getpid()}"
SESSION = "monitor"
exit_file = os.path.join(sw.dir, "monitor.exit")
env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")


def tmux(*args, check=True):
    return subprocess.run(["tmux", "-L", SOCKET, "-f", "/dev/null", *args], capture_output=True, text=True,
                          env=env, timeout=30, check=check)


atexit.register(lambda: subprocess.run(["tmux", "-L", SOCKET, "kill-server"], capture_output=True, timeout=30))

command = (f"'{SWARM}' monitor --url {orch.url} --orch-data-dir '{orch.data_dir}'"
           f" 2>'{sw.dir}/monitor.stderr'; echo $? >'{exit_file}'")
tmux("new-session", "-d", "-x", "80", "-y", "24", "-s", SESSION, "sh", "-c", command)


def screen():
    return tmux("capture-pane", "-p", "-t", SESSION).stdout


def wait_screen(predicate, what, timeout=60):
    """The screen once `predicate` holds for it (polling the capture)."""
    return sw.wait_until(lambda: (lambda text: text if predicate(text) else None)(screen()), timeout, what)


building_line = re.compile(r"^\S+\s+\d+\s+\d+/\d+ building\s+(\S+)", re.M)


def ready(text):
    match = building_line.search(text)
    return ("d1" in text and "d2" in text and re.search(r"\d+/12 complete", text) and match
            and match.group(1).rstrip("…") and "q quit" in text)


shot = wait_screen(ready, "the monitor shows drones, counts and a building package")
print(shot)
lines = shot.split("\n")
sw.check(all(len(line) <= 80 for line in lines), "nothing is wider than the 80-column pane")
sw.check(re.search(r"needed \d+\s+ready \d+\s+building \d+\s+complete \d+", shot), "the queue counts are shown")
sw.check("ETA " in shot and "rate " in shot and "[" in shot, "rate, ETA and the progress bar are shown")
sw.check("orchestrator ok" in shot, "the orchestrator's health is shown")
package = building_line.search(shot).group(1)
sw.check(any(cpv.startswith(package.rstrip("…")) for cpv in cpvs), f"the building package {package} is in the plan")
sw.check("LATEST EVENTS" in shot and "delegated" in shot, "the latest events are shown")

# p: pause, through the admin API; again: resume.
tmux("send-keys", "-t", SESSION, "p")
sw.wait_until(lambda: sw.status(orch)["paused"], 30, "p pauses the queue")
wait_screen(lambda text: "PAUSED" in text and "paused: drones get no new work" in text, "the screen says PAUSED")
tmux("send-keys", "-t", SESSION, "p")
sw.wait_until(lambda: not sw.status(orch)["paused"], 30, "p again resumes")
wait_screen(lambda text: "resumed" in text and "PAUSED" not in text, "the screen says resumed")

tmux("send-keys", "-t", SESSION, "b")
wait_screen(lambda text: "balance: " in text, "b answers with what balance moved")
tmux("send-keys", "-t", SESSION, "u")
wait_screen(lambda text: "unblock: no package was blocked" in text, "u answers that nothing was blocked")

# R asks first; n cancels and nothing is reset.
resets_before = sum(1 for event in sw.events(orch) if event["kind"] == "reset")
tmux("send-keys", "-t", SESSION, "R")
wait_screen(lambda text: "y/n" in text, "R asks to confirm")
tmux("send-keys", "-t", SESSION, "n")
wait_screen(lambda text: "reset cancelled" in text, "n cancels the reset")
sw.check(sum(1 for event in sw.events(orch) if event["kind"] == "reset") == resets_before, "a cancelled reset resets nothing")

# A resize redraws at the new size.
tmux("resize-window", "-t", SESSION, "-x", "120", "-y", "30")
wide = wait_screen(lambda text: len(text.rstrip("\n").split("\n")) == 30 and "q quit" in text.rstrip("\n").split("\n")[-1],
                   "the screen is redrawn at 120x30")
sw.check(any(len(line) > 80 for line in wide.split("\n")), "the redrawn screen uses the wider window")

tmux("send-keys", "-t", SESSION, "q")
sw.wait_until(lambda: os.path.exists(exit_file) and open(exit_file).read().strip(), 30, "the monitor exits after q")
code = open(exit_file).read().strip()
stderr = open(os.path.join(sw.dir, "monitor.stderr")).read()
sw.check(code == "0", f"q quits with exit code 0 ({code}, {stderr.strip()!r})")
sw.finish()
