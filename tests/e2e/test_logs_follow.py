#!/usr/bin/env python3
"""End-to-end: `swarm logs PKG --follow`, started before the package's build begins, prints the
build's whole log as it arrives (the server long-polls: no polling in the client) and ends by
itself when the build ends: exit 0 for a success, exit 1 with one `swarm:` line for a failure.
The orchestrator compresses a log once its build has ended and serves it decompressed."""

import os
import re
import subprocess

from harness import SWARM, Swarm, make_plan

sw = Swarm("logs-follow")
orch = sw.start_orch()
plan = make_plan(2, width=2, build_seconds=(30, 30))  # two independent packages, 3 s each below
good, bad = plan["packages"][0]["cpv"], plan["packages"][1]["cpv"]
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)

# A long failure log, so that it arrives in several chunks.
fail_logs = os.path.join(sw.dir, "fail-logs")
category, pf = bad.split("/")
os.makedirs(os.path.join(fail_logs, category))
failure_log = "".join(f"{bad}: compiling unit {i}.c ... error: expected ';' before '}}' token\n" for i in range(4000))
with open(os.path.join(fail_logs, category, pf + ".log"), "w") as f:
    f.write(failure_log)

conn = ["--url", orch.url, "--token-file", orch.admin_token_file]
followers = {}
for cpv in (good, bad):
    out = open(os.path.join(sw.dir, f"follow-{cpv.replace('/', '_')}.out"), "w+b")
    err = open(os.path.join(sw.dir, f"follow-{cpv.replace('/', '_')}.err"), "w+b")
    followers[cpv] = (subprocess.Popen([SWARM, "logs", cpv, "--follow", *conn], stdout=out, stderr=err), out, err)

# No build has begun: the followers wait (on the server) rather than fail.
sw.check(all(proc.poll() is None for proc, _, _ in followers.values()), "--follow waits for a build to begin")
sw.check(not any(event["kind"] == "delegated" for event in sw.events(orch)), "no build had begun when they started")

sw.start_drone(orch.url, "d1", sw.enroll(orch, "d1"), plan_file, slots=1, time_scale=0.1,
               extra_env={"SWARM_FAKE_FAIL": bad, "SWARM_FAKE_FAIL_LOG": fail_logs})


def finished(cpv):
    proc, out, err = followers[cpv]
    code = proc.wait(timeout=240)  # ends by itself when the build ends
    out.seek(0)
    err.seek(0)
    return code, out.read().decode(), err.read().decode()


code, printed, errors = finished(good)
sw.check(code == 0, f"--follow of a successful build exits 0 ({code}, {errors.strip()!r})")
server = orch.api("GET", f"/api/v1/logs?package={good}").json()
sw.check(server["complete"] and server["result"] == "success", f"the log reply says the build is complete ({server})")
sw.check(printed == server["text"] and ">>> Emerging" in printed, f"--follow printed the whole log ({printed[:200]!r})")

code, printed, errors = finished(bad)
sw.check(code == 1, f"--follow of a failed build exits 1 ({code})")
lines = errors.strip().split("\n")
sw.check(len(lines) == 1 and lines[0].startswith("swarm: ") and "failure" in lines[0] and bad in lines[0],
         f"one line says the build failed ({errors.strip()!r})")
# The package goes back to the queue and is built again: the log of the build that was followed.
followed = re.search(r"build (\d+) of ", lines[0])
build = int(followed.group(1)) if followed else 0
server = orch.api("GET", f"/api/v1/logs?package={bad}&build={build}").json()
sw.check(server["build"] == build and server["result"] == "failure" and server["complete"],
         f"build={build} reads that build's log ({server.get('build')}, {server.get('result')})")
sw.check(printed == server["text"], "--follow printed the failed build's whole log")
sw.check(failure_log.strip() in printed, "the log holds everything the build wrote")

# Ended builds' logs are compressed on disk and served decompressed.
logs_dir = os.path.join(orch.data_dir, "logs")
sw.check(os.path.exists(os.path.join(logs_dir, f"{build}.log.zst"))
         and not os.path.exists(os.path.join(logs_dir, f"{build}.log")), "the ended build's log is compressed")
sw.check(server["compressed"] and server["size"] == len(printed.encode()), "and served decompressed")
sw.check(os.path.getsize(os.path.join(logs_dir, f"{build}.log.zst")) < len(failure_log) // 4, "compression pays")
tail = orch.api("GET", f"/api/v1/logs?package={bad}&build={build}&tail=100").json()
sw.check(tail["text"] == printed.encode()[-100:].decode(errors="replace") and tail["complete"],
         "tail=N gives the log's last N bytes")

# Without --follow: the log so far, at once.
result = subprocess.run([SWARM, "logs", good, *conn], capture_output=True, text=True, timeout=60)
sw.check(result.returncode == 0 and ">>> Emerging" in result.stdout, "logs without --follow prints the log")
# A package that is not in the plan: one line, non-zero, at once even with --follow.
result = subprocess.run([SWARM, "logs", "app-test/nothing-1", "--follow", *conn], capture_output=True, text=True,
                        timeout=60)
sw.check(result.returncode != 0 and result.stderr.startswith("swarm: "), f"an unknown package fails ({result.stderr!r})")
bad_wait = orch.api("GET", f"/api/v1/logs?package={good}&wait=soon")
sw.check(bad_wait.status == 400, "a wait that is not a number is a 400")
sw.finish()
