"""The operator verbs on a live swarm: submit and queue add, fix-blocked's diagnosis and next
command, unblock / pause / resume / ground / unground / reset / balance, drones, logs (and
--follow), history, sync-verify, and build-local of a kernel-specific package through the normal
lease path."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAKE_EMERGE, SWARM, TREE, Swarm, make_plan, write_file  # noqa: E402

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


def main():
    sw = Swarm("operator")
    orch = sw.start_orch("orch")
    conn = ["--url", orch.url, "--token", orch.admin_token]

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
    sw.check(swarm("sync-verify").returncode == 0, "sync-verify passes when every tree matches")

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
    follow.wait_for_line(r"Emerging \(1 of 1\) app-test/slow-1.0", 20)
    follow.kill()
    sw.check(True, "logs --follow prints the running build's log")
    swarm("pause")
    reply = js("reset", "--yes")
    sw.check(reply and reply["returned"] >= 1 and state(SLOW) == "needed",
             f"reset returns in-flight work to the queue ({reply})")
    sw.check(sw.status(orch)["counts"]["received"] >= 7, "reset keeps built packages")
    sw.check(swarm("balance").returncode == 0, "balance runs")

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
    sw.check(swarm("sync-verify").returncode == 0, "the local identity does not count in sync-verify")
    sw.finish()


if __name__ == "__main__":
    main()
