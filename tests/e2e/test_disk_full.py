#!/usr/bin/env python3
"""A full staging disk: uploads are answered 507 with a JSON error, the orchestrator logs it,
`swarm status` shows it as the NEXT ACTION, and once space returns the drones' retries get every
package built without anyone stepping in.

The staging dir is a 4 MiB tmpfs mounted in a private mount namespace of the orchestrator alone
(`unshare -m`, root only): it goes away with the process. The test fills it through
/proc/PID/root, which sees that namespace."""

import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, Orch, Swarm, http  # noqa: E402
from release_helpers import cli, cli_json, flat_plan  # noqa: E402

if os.geteuid() != 0 or shutil.which("unshare") is None:
    print("SKIP: needs root and unshare(1) to mount a small tmpfs in a private mount namespace")
    sys.exit(0)
probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
if probe.returncode != 0:
    print(f"SKIP: unshare -m is not permitted here ({probe.stderr.decode().strip()})")
    sys.exit(0)

sw = Swarm("disk-full")
data_dir = os.path.join(sw.dir, "orch")
staging = os.path.join(data_dir, "staging")
os.makedirs(staging)
args = ["--data-dir", data_dir, "--lease-ttl", "30s", "--heartbeat-interval", "0.5s", "--claim-wait", "2s",
        "--maintenance-interval", "1s", "--drone-timeout", "30s"]
mount = 'mount -t tmpfs -o size=4m swarm-test-staging "$0" && exec "$@"'
proc = sw.spawn("orch", ["unshare", "-m", "--propagation", "private", "sh", "-c", mount, staging,
                         SWARM, "orch", "--listen", "127.0.0.1:0", *args])
port = int(proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1))
orch = Orch(proc, data_dir, port, args)
sw.wait_until(lambda: http("GET", orch.url + "/healthz").status == 200, 10, "orch /healthz")
sw.secrets.append(orch.admin_token)

# The orchestrator's view of its staging dir (its own mount namespace).
inside = f"/proc/{proc.popen.pid}/root{staging}"
with open("/proc/self/mountinfo") as f:
    sw.check(not any(f" {staging} " in line for line in f), "the tmpfs is not mounted outside the orchestrator")
filler = os.path.join(inside, "filler")
with open(filler, "wb") as f:
    try:
        while True:
            f.write(b"\0" * (64 << 10))
            f.flush()
    except OSError:
        pass
free = shutil.disk_usage(inside).free
sw.check(free < (64 << 10), f"the staging tmpfs is full ({free} bytes free)")

cpvs = [f"app-test/full{i}-1" for i in range(3)]
plan = flat_plan(cpvs, seconds=1)
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
token = sw.enroll(orch, "d1")
drone = sw.start_drone(orch.url, "d1", token, plan_file, slots=1, time_scale=0.001)

sw.wait_until(lambda: sw.status(orch).get("disk_full"), 60, "the orchestrator records the full disk")
status = sw.status(orch)
sw.check(status["counts"]["received"] == 0, "nothing was received meanwhile")
sw.check(staging in status["disk_full"]["paths"], f"status names the staging dir: {status['disk_full']}")
sw.wait_until(lambda: any("no space left" in line for line in proc.output()), 10, "the orchestrator logs it")
sw.wait_until(lambda: any("507" in line or "no space left" in line for line in drone.output()), 30,
              "the drone was answered 507")

code, body = cli_json(orch, "status")
action = body.get("next_action", {})
sw.check(action.get("state") == "disk-full" and code == 1 and "no space left" in action.get("message", ""),
         f"swarm status: NEXT ACTION disk-full, exit 1 ({action}, exit {code})")
code, out, _ = cli(orch, "status")
sw.check("NEXT ACTION" in out and "no space left" in out, "swarm status prints it")

# Space returns: builds resume by themselves (the drone retries with backoff).
os.remove(filler)
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == len(cpvs), 180, "every package built after space returned")
sw.wait_until(lambda: sw.status(orch).get("disk_full") is None, 30, "status no longer reports a full disk")
code, body = cli_json(orch, "status")
sw.check(body.get("next_action", {}).get("state") != "disk-full", "NEXT ACTION moves on")

drone.kill()

# The gateway's spool, full: an authenticated upload it must spool is answered 507 and logged.
spool = os.path.join(sw.dir, "gateway-tmp")
os.makedirs(spool)
gateway = sw.spawn("gateway", ["unshare", "-m", "--propagation", "private", "sh", "-c",
                               'mount -t tmpfs -o size=1m swarm-test-spool "$0" && exec "$@"', spool,
                               SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", orch.url,
                               "--health-interval", "0.3s"], env=dict(os.environ, TMPDIR=spool))
gateway_url = "http://127.0.0.1:" + gateway.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1)
sw.wait_until(lambda: http("GET", gateway_url + "/healthz").json()["active"], 10, "the gateway sees the orchestrator")
answer = http("PUT", gateway_url + "/api/v1/leases/0123abcd/artifact", b"x" * (4 << 20), token=token,
              headers={"X-Swarm-Sha256": "0" * 64, "X-Swarm-Xxh3-128": "0" * 32})
body = answer.json() or {}
sw.check(answer.status == 507 and body.get("kind") == "no_space" and "spool" in body.get("error", ""),
         f"an upload the gateway cannot spool: 507 ({answer.status} {body})")
sw.wait_until(lambda: any("no space left in the gateway's spool" in line for line in gateway.output()), 10,
              "the gateway logs it")
sw.finish()
