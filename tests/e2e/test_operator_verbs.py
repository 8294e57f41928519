"""The operator verbs on a live swarm: submit and queue add, fix-blocked's diagnosis and next
command, unblock / pause / resume / ground / unground / reset, drones, logs (and --follow),
history, sync-verify, and build-local of a kernel-specific package through the normal lease path;
then balance taking the work of a drone stopped with SIGSTOP back to the queue, where another
drone picks it up."""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAKE_EMERGE, SWARM, TREE, Orch, Swarm, all_events, http, make_plan, write_file  # noqa: E402

NVIDIA = "x11-drivers/nvidia-drivers-550.127.05"
BROKEN = "app-test/pkg007-1.2"
SLOW = "app-test/slow-1.0"

KERNEL_LOG = """ * Checking for suitable kernel configuration options ...
 * Could not find a usable .config in the kernel source directory.
 * Please ensure that /usr/src/linux points to a configured set of Linux sources.
 * ERROR: x11-drivers/nvidia-drivers-550.127.05::gentoo failed (setup phase):
"""
COMPILE_LOG = """x86_64-pc-linux-gnu-gcc -O2 -pipe -c pkg.c -o pkg.o
pkg.c:12:5: error: implicit declaration of function 'bar' [-Werror=implicit-function-declaration]
make: *** [Makefile:300: all] Error 2
 * ERROR: app-test/pkg007-1.2::gentoo failed (compile phase):
 *   emake failed
"""


def package(cpv, seconds=30, slot="0"):
    return {"cpv": cpv, "slot": slot, "repo": "gentoo", "use": [], "build_seconds": seconds, "duration_source": "test"}


def start_patient_orch(sw, name, heartbeat):
    """An orchestrator that takes no work back by itself for an hour (lease TTL and drone timeout),
    so that only `swarm balance` can move the work of a silent drone."""
    data_dir = os.path.join(sw.dir, name)
    args = ["--data-dir", data_dir, "--lease-ttl", "3600s", "--heartbeat-interval", f"{heartbeat}s",
            "--claim-wait", "2s", "--maintenance-interval", "1s", "--drone-timeout", "3600s"]
    proc = sw.spawn(name, [SWARM, "orch", "--listen", "127.0.0.1:0", *args])
    port = int(proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1))
    orch = Orch(proc, data_dir, port, args)
    sw.wait_until(lambda: http("GET", orch.url + "/healthz").status == 200, 10, f"{name} /healthz")
    sw.secrets.append(orch.admin_token)
    return orch


def active_leases(orch, drone_name):
    """The packages `drone_name` holds an active lease on, from GET /api/v1/drones."""
    drones = orch.api("GET", "/api/v1/drones", timeout=10).json()["drones"]
    drone = next((d for d in drones if d["name"] == drone_name), {})
    return [lease["cpv"] for lease in drone.get("leases", []) if lease["state"] == "active"]


def check_balance(sw):
    """balance takes the lease of a drone that stopped making progress (SIGSTOP: no heartbeat, no
    build) back to the queue, and an idle drone picks the package up. The orchestrator here would
    never reclaim the lease by itself, so what moves it is balance. Heartbeats every 2 s: a drone
    slowed down by a loaded machine is not taken for a silent one (2 heartbeats missed)."""
    heartbeat = 2
    orch = start_patient_orch(sw, "orch-balance", heartbeat)
    conn = ["--url", orch.url, "--token-file", orch.admin_token_file]

    def swarm(*args):
        return subprocess.run([SWARM, *args, *conn], capture_output=True, text=True, timeout=60)

    stuck = "app-test/stuck-1.0"
    plan = {"source": "balance", "tree_timestamp": TREE, "packages": [package(stuck, 1e7)], "edges": []}
    plan_file = sw.write_plan(plan, "balance-plan.json")
    sw.submit(orch, plan)
    b1 = sw.start_drone(orch.url, "b1", sw.enroll(orch, "b1"), plan_file, slots=1)
    sw.wait_until(lambda: active_leases(orch, "b1") == [stuck], 30, "b1 building the package")
    idle = swarm("balance", "--json")
    sw.check(idle.returncode == 0 and json.loads(idle.stdout)["moved"] == [] and active_leases(orch, "b1") == [stuck],
             f"balance leaves the work of a drone that makes progress ({idle.stdout.strip()} {idle.stderr.strip()})")

    b1.signal(signal.SIGSTOP)  # the drone and its build stop: no heartbeat, no progress
    sw.start_drone(orch.url, "b2", sw.enroll(orch, "b2"), plan_file, slots=1)
    drones = lambda: {d["name"]: d for d in orch.api("GET", "/api/v1/drones", timeout=10).json()["drones"]}  # noqa: E731
    sw.wait_until(lambda: drones()["b2"]["online"], 30, "b2 online")
    # Silent for more than two heartbeats (by the orchestrator's own record of b1's last heartbeat).
    sw.wait_until(lambda: time.time() - drones()["b1"]["last_seen"] > 3 * heartbeat, 30, "b1 silent")
    sw.check(orch.api("GET", f"/api/v1/packages/{stuck}").json()["state"] == "delegated"
             and active_leases(orch, "b1") == [stuck], "without balance, the silent drone keeps its lease")

    moved = swarm("balance", "--json")
    reply = json.loads(moved.stdout) if moved.returncode == 0 else {}
    sw.check(reply.get("moved") == [stuck], f"balance moves the silent drone's package ({reply} {moved.stderr.strip()})")
    sw.check(active_leases(orch, "b1") == [], "b1 no longer holds it")
    sw.check(any(e["kind"] == "rebalanced" and e["package"] == stuck for e in all_events(orch)),
             "the orchestrator records the move")
    sw.wait_until(lambda: active_leases(orch, "b2") == [stuck], 30, "b2 picks the package up")
    sw.check(orch.api("GET", f"/api/v1/packages/{stuck}").json()["state"] == "delegated",
             "the package is being built by b2")
    again = swarm("balance")
    sw.check(again.returncode == 0 and again.stdout.startswith("0 package(s) moved") and active_leases(orch, "b2") == [stuck],
             f"balance again moves nothing from b2, which makes progress ({again.stdout.strip()})")
    b1.signal(signal.SIGCONT)


def main():
    sw = Swarm("operator")
    orch = sw.start_orch("orch")
    conn = ["--url", orch.url, "--token-file", orch.admin_token_file]

    def swarm(*args, env=None, ok=True):
        result = subprocess.run([SWARM, *args, *conn], capture_output=True, text=True, timeout=60, env=env)
        if ok and result.returncode != 0:
            sw.check(False, f"swarm {' '.join(args)} exits 0 (got {result.returncode}: {result.stderr.strip()[:300]})")
        return result

    def js(*args):
        result = swarm(*args, "--json")
        return json.loads(result.stdout) if result.returncode == 0 else None

    def state(cpv):
        return orch.api("GET", f"/api/v1/packages/{cpv}").json()["state"]

    plan = make_plan(8, seed=5)
    plan["packages"].append(package(NVIDIA))
    everything = dict(plan, packages=plan["packages"] + [package(SLOW, 60000), package("app-test/extra-2.0"),
                                                         package("app-test/nocache-1.0")])
    drone_plan = sw.write_plan(everything, "drone-plan.json")
    plan_file = sw.write_plan(plan, "plan.json")
    repo = os.path.join(sw.dir, "repo")
    write_file(os.path.join(repo, "metadata", "md5-cache", "app-test", "extra-2.0"), "EAPI=8\nSLOT=2/2.0\n")
    write_file(os.path.join(repo, "metadata", "timestamp.chk"), TREE + "\n")
    fail_logs = os.path.join(sw.dir, "fail-logs")
    write_file(os.path.join(fail_logs, NVIDIA + ".log"), KERNEL_LOG)
    write_file(os.path.join(fail_logs, BROKEN + ".log"), COMPILE_LOG)

    reply = js("submit", plan_file)
    sw.check(reply and reply["added"] == 9, f"submit adds the plan's 9 packages ({reply})")

    fail = f"{NVIDIA},{BROKEN}"
    for name in ("d1", "d2"):
        token = sw.enroll(orch, name)
        sw.start_drone(orch.url, name, token, drone_plan, slots=2, fail=fail,
                       extra_env={"SWARM_FAKE_FAIL_LOG": fail_logs})
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 7 and sw.status(orch)["counts"]["blocked"] == 2,
                  60, "7 built and 2 blocked")

    # fix-blocked: class, drones, excerpt, next command.
    report = {entry["cpv"]: entry for entry in js("fix-blocked")["blocked"]}
    nvidia, broken = report.get(NVIDIA, {}), report.get(BROKEN, {})
    sw.check(nvidia.get("class") == "kernel_specific" and nvidia.get("command") == f"swarm build-local ={NVIDIA}",
             f"fix-blocked: nvidia-drivers is kernel-specific → build-local ({nvidia})")
    sw.check(sorted(nvidia.get("drones", [])) == ["d1", "d2"], "fix-blocked names both drones it failed on")
    sw.check("usable .config" in nvidia.get("excerpt", ""), "fix-blocked shows the log excerpt")
    sw.check(broken.get("class") == "compile_error" and broken.get("command") == f"swarm unblock {BROKEN}",
             f"fix-blocked: pkg007 is a compile error → unblock after fixing ({broken})")
    text = swarm("fix-blocked").stdout
    sw.check(f"then run:   swarm build-local ={NVIDIA}" in text and "[compile error]" in text,
             "fix-blocked's text report gives class and command")

    # Views.
    drones = js("drones")
    sw.check(sorted(d["name"] for d in drones) == ["d1", "d2"], "drones --json lists both")
    sw.check("NAME" in swarm("drones").stdout, "drones prints a table")
    history = js("history", "--limit", "100")
    results = {(b["package"], b["drone"], b["result"]) for b in history}
    sw.check((NVIDIA, "d1", "failure") in results and (NVIDIA, "d2", "failure") in results,
             "history has both failed builds of nvidia-drivers")
    sw.check(sum(1 for b in history if b["result"] == "success") == 7 and all(b["ended"] >= b["started"] for b in history),
             "history has the 7 successful builds with start and end")
    sw.check("DURATION" in swarm("history", "--drone", "d1").stdout, "history prints a table")
    log = swarm("logs", "=app-test/pkg000-1.0").stdout
    sw.check("Emerging" in log, "logs PKG prints the build log")
    sw.check("usable .config" in swarm("logs", NVIDIA).stdout, "logs shows a failure's log")
    sw.check(swarm("logs", "d1").stdout.strip() != "", "logs DRONE prints its latest build log")
    missing = swarm("logs", "nobody", ok=False)
    sw.check(missing.returncode != 0 and missing.stderr.startswith("swarm: error:"), "logs of an unknown drone fails")
    synced = js("sync-verify")
    sw.check(synced and synced["ok"] and sorted((d["name"], d["matches"]) for d in synced["drones"]) ==
             [("d1", True), ("d2", True)], f"sync-verify passes when every tree matches ({synced})")

    # Control.
    swarm("pause")
    sw.check(sw.status(orch)["paused"], "pause pauses")
    swarm("unblock", BROKEN)
    sw.check(state(BROKEN) == "needed" and state(NVIDIA) == "blocked", "unblock PKG unblocks only that package")
    swarm("ground", "d1", "--yes")
    d1 = next(d for d in js("drones") if d["name"] == "d1")
    sw.check(d1["state"] == "grounded" and d1["grounded_by_operator"], "ground grounds the drone")
    swarm("unground", "d1")
    d1 = next(d for d in js("drones") if d["name"] == "d1")
    sw.check(d1["state"] != "grounded", "unground returns it")
    bad = swarm("ground", "nobody", "--yes", ok=False)
    sw.check(bad.returncode != 0 and "swarm: error:" in bad.stderr, "ground of an unknown drone fails")

    reply = js("queue", "add", "=app-test/extra-2.0", "app-test/nocache-1.0", "--repo-dir", repo)
    sw.check(reply and reply["added"] == 2, f"queue add adds two packages ({reply})")
    extra = orch.api("GET", "/api/v1/packages/app-test/extra-2.0").json()
    nocache = orch.api("GET", "/api/v1/packages/app-test/nocache-1.0").json()
    sw.check(extra["slot"] == "2" and nocache["slot"] == "0", "queue add takes the slot from the md5-cache, else 0")
    sw.check(sw.status(orch)["counts"]["received"] == 7, "queue add keeps what was built")
    slow_plan = sw.write_plan({"source": "slow", "tree_timestamp": TREE, "packages": [package(SLOW, 60000)],
                               "edges": []}, "slow.json")
    reply = js("submit", slow_plan)
    sw.check(reply and reply["added"] == 1 and reply["packages"] == 12, f"submit adds without resetting ({reply})")

    swarm("resume")
    sw.wait_until(lambda: state(SLOW) == "delegated", 20, "the slow package is being built")
    follow = sw.spawn("logs-follow", [SWARM, "logs", SLOW, "--follow", *conn])
    emerging = "Emerging (1 of 1) app-test/slow-1.0"
    sw.wait_until(lambda: any(emerging in line for line in follow.output()) or not follow.alive(), 30,
                  "logs --follow to print the build log")
    sw.check(any(emerging in line for line in follow.output()) and follow.alive(),
             f"logs --follow prints the running build's log and keeps following ({follow.output()[-3:]})")
    follow.kill()
    swarm("pause")
    reply = js("reset", "--yes")
    sw.check(reply and reply["returned"] >= 1 and state(SLOW) == "needed",
             f"reset returns in-flight work to the queue ({reply})")
    sw.check(sw.status(orch)["counts"]["received"] >= 7, "reset keeps built packages")

    # build-local: the kernel-specific package built here, through the normal lease path.
    local_root = os.path.join(sw.dir, "local")
    os.makedirs(os.path.join(local_root, "configroot"), exist_ok=True)
    env = dict(os.environ, SWARM_BIN=SWARM, SWARM_FAKE_PLAN=drone_plan, ROOT=os.path.join(local_root, "root"))
    built = swarm("build-local", f"={NVIDIA}", "--emerge", os.path.abspath(FAKE_EMERGE), "--repo-dir", repo,
                  "--portage-configroot", os.path.join(local_root, "configroot"), "--json", env=env)
    result = json.loads(built.stdout) if built.returncode == 0 else {}
    sw.check(result.get("path", "").startswith("x11-drivers/nvidia-drivers/nvidia-drivers-550.127.05-"),
             f"build-local uploads the package to staging ({result})")
    detail = orch.api("GET", f"/api/v1/packages/{NVIDIA}").json()
    sw.check(detail["state"] == "received" and detail["artifact"]["built_by"].startswith("local-"),
             "the package is received from the local identity")
    again = swarm("build-local", f"={NVIDIA}", "--emerge", os.path.abspath(FAKE_EMERGE), env=env, ok=False)
    sw.check(again.returncode != 0 and "already built" in again.stderr, "build-local refuses a built package")
    synced = js("sync-verify")
    sw.check(synced and synced["ok"] and sorted(d["name"] for d in synced["drones"]) == ["d1", "d2"],
             f"the local identity does not count in sync-verify ({synced})")

    check_balance(sw)
    sw.finish()


if __name__ == "__main__":
    main()
