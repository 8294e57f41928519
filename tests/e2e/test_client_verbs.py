"""The client side and where-is-everything: `swarm client setup` writes binrepos.conf for the
binhost the gateway (or an orchestrator) hands out, `swarm client update` runs emerge with the
documented argv and passes its exit code through, `swarm info` finds gateway, orchestrators,
binhost and data dir; every operator verb has --help."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, Swarm  # noqa: E402

VERBS = ["fresh", "submit", "queue add", "fix-blocked", "unblock", "reset", "balance", "pause", "resume", "ground",
         "unground", "drones", "logs", "sync-verify", "info", "history", "build-local", "client setup",
         "client update"]


def run(*args, env=None):
    return subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=60, env=env)


def main():
    sw = Swarm("client")
    for verb in VERBS:
        result = run(*verb.split(), "--help")
        sw.check(result.returncode == 0 and "--" in result.stdout, f"swarm {verb} --help")

    orch = sw.start_orch("orch")
    gateway = sw.start_gateway([orch.url])

    conf = os.path.join(sw.dir, "etc", "portage", "binrepos.conf", "swarm.conf")
    setup = run("client", "setup", "--gateway", gateway, "--binrepos-conf", conf)
    sw.check(setup.returncode == 0, f"client setup through the gateway ({setup.stderr.strip()[:300]})")
    with open(conf) as f:
        text = f.read()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    sw.check(lines == ["[swarm]", "priority = 10", f"sync-uri = {orch.url}/production", "verify-signature = false"],
             f"binrepos.conf names the production binhost ({lines})")
    sw.check(oct(os.stat(conf).st_mode & 0o777) == "0o644", "binrepos.conf is world-readable")
    sw.check(not [n for n in os.listdir(os.path.dirname(conf)) if n != "swarm.conf"], "no temporary file left behind")

    direct = run("client", "setup", "--gateway", orch.url, "--binrepos-conf", conf + ".orch", "--json")
    reply = json.loads(direct.stdout) if direct.returncode == 0 else {}
    sw.check(reply.get("binhost_url") == f"{orch.url}/production", f"client setup against an orchestrator ({reply})")
    down = run("client", "setup", "--gateway", "http://127.0.0.1:1", "--binrepos-conf", conf + ".down")
    sw.check(down.returncode == 3 and down.stderr.startswith("swarm: error:"), "client setup with nobody there fails")
    sw.check(not os.path.exists(conf + ".down"), "and writes nothing")

    # client update: emerge's argv, exit code passed through.
    record = os.path.join(sw.dir, "argv.txt")
    fake = os.path.join(sw.dir, "emerge")
    with open(fake, "w") as f:
        f.write(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\necho "emerging from the binhost"\nexit 3\n')
    os.chmod(fake, 0o755)
    update = run("client", "update", "--emerge", fake)
    with open(record) as f:
        argv = f.read().split()
    sw.check(argv == ["--getbinpkg", "--update", "--deep", "--newuse", "@world"], f"client update's argv ({argv})")
    sw.check(update.returncode == 3 and "emerging from the binhost" in update.stdout,
             "client update passes emerge's output and exit code through")

    info = run("info", "--url", gateway, "--token", orch.admin_token, "--json")
    data = json.loads(info.stdout) if info.returncode == 0 else {}
    sw.check(data.get("role") == "gateway" and data.get("binhost_url") == f"{orch.url}/production",
             f"info finds the gateway and the binhost ({info.stderr.strip()[:200]})")
    sw.check(data.get("orchestrator", {}).get("data_dir") == orch.data_dir, "info names the orchestrator's data dir")
    sw.check(len(data.get("orchestrators", [])) == 1, "info lists the orchestrators")
    text = run("info", "--url", gateway, "--token", orch.admin_token).stdout
    sw.check("staging binhost:" in text and orch.data_dir in text, "info prints where everything is")
    sw.finish()


if __name__ == "__main__":
    main()
