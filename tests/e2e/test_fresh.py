"""`swarm fresh`: the plan from emerge --pretend output (saved with --from, or the fake emerge's
--pretend) and the md5-cache; a second run changes nothing; a smaller plan clears the artifacts
it no longer holds from staging; drones on another Portage tree are warned about, or the plan is
refused when no online drone could build it."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAKE_EMERGE, FAKE_PORTAGEQ, SWARM, TREE, Swarm, make_plan,  # noqa: E402
                     write_config_root, write_file)


def write_repo(root, plan, tree):
    """An ebuild repository with an md5-cache entry per plan package (its edges as exact atoms)."""
    for package in plan["packages"]:
        category, pf = package["cpv"].split("/")
        deps = {}
        for edge in plan["edges"]:
            if edge["package"] == package["cpv"]:
                deps.setdefault(edge["kind"], []).append("=" + edge["needs"])
        lines = ["EAPI=8", f"SLOT={package['slot']}", "KEYWORDS=amd64"]
        lines += [f"{kind}={' '.join(atoms)}" for kind, atoms in sorted(deps.items())]
        write_file(os.path.join(root, "metadata", "md5-cache", category, pf), "\n".join(lines) + "\n")
    write_file(os.path.join(root, "metadata", "timestamp.chk"), tree + "\n")
    write_file(os.path.join(root, "profiles", "repo_name"), "gentoo\n")


def pretend_output(sw, plan, name):
    """What `emerge --pretend --verbose --update --deep --newuse @world` prints for `plan`."""
    plan_file = sw.write_plan(plan, name + ".json")
    env = dict(os.environ, SWARM_FAKE_PLAN=plan_file)
    result = subprocess.run([SWARM, "fake-emerge", "--pretend", "--verbose", "--update", "--deep", "--newuse",
                             "@world"], capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 0, result.stderr
    path = os.path.join(sw.dir, name + ".txt")
    write_file(path, result.stdout)
    return path, result.stdout


def swarm(*args, env=None):
    return subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=60, env=env)


def staged_files(orch):
    out = []
    for base, _, files in os.walk(os.path.join(orch.data_dir, "staging")):
        out += [os.path.join(base, f) for f in files if f.endswith(".gpkg.tar")]
    return out


def main():
    sw = Swarm("fresh")
    orch = sw.start_orch("orch")
    conn = ["--url", orch.url, "--token-file", orch.admin_token_file]
    plan = make_plan(10, seed=3)
    repo = os.path.join(sw.dir, "repo")
    write_repo(repo, plan, TREE)
    # The client's configuration, captured with the plan (fake portageq: make.conf is the settings).
    croot = os.path.join(sw.dir, "client")
    write_config_root(croot, repo, {"USE": "amd64 ssl", "CFLAGS": "-O2 -pipe", "CHOST": "x86_64-pc-linux-gnu"},
                      {"package.use/client": "app-test/pkg001 -doc\n"})
    fresh_conn = conn + ["--portageq", FAKE_PORTAGEQ]
    saved, text = pretend_output(sw, plan, "world")
    sw.check(text.count("[ebuild  N     ] ") == 10, "the fake emerge prints a merge list of the plan's 10 packages")

    # No terminal, no --yes: a destructive verb refuses.
    refused = swarm("fresh", *fresh_conn, "--from", saved, "--repo-dir", repo)
    sw.check(refused.returncode != 0 and "swarm: error:" in refused.stderr and "--yes" in refused.stderr,
             f"fresh without --yes and without a terminal refuses ({refused.stderr.strip()[:200]})")

    first = swarm("fresh", *fresh_conn, "--from", saved, "--repo-dir", repo, "--config-root", croot, "--yes", "--json")
    sw.check(first.returncode == 0, f"fresh --from works ({first.stderr.strip()[:300]})")
    reply = json.loads(first.stdout)
    profiles = {p["name"]: p for p in orch.api("GET", "/api/v1/profiles").json()["profiles"]}
    sw.check(len(reply["build_profile"]) == 64 and profiles["default"]["build_profile"] == reply["build_profile"],
             f"the build profile of --config-root goes with the plan ({reply['build_profile']}, {profiles})")
    stored = orch.api("GET", "/api/v1/profiles/" + reply["build_profile"]).json()
    sw.check(stored["settings"].get("CFLAGS") == "-O2 -pipe" and
             stored["files"] == {"package.use/client": "app-test/pkg001 -doc\n"} and
             stored["repositories"] == [{"name": "gentoo", "timestamp": TREE}],
             f"it holds the settings, the package files and the repository's tree ({stored})")
    sw.check(reply["added"] == 10 and reply["changed"], f"the first fresh adds 10 packages ({reply})")
    sw.check(reply["tree_timestamp"] == TREE, "the plan's tree timestamp comes from metadata/timestamp.chk")
    edges = sw.status(orch)["plan"]["edges"]
    sw.check(edges == len(plan["edges"]), f"every md5-cache dependency became an edge ({edges} of {len(plan['edges'])})")

    token = sw.enroll(orch, "d1")
    superset = sw.write_plan(plan, "drone-plan.json")
    # The drone's own Portage: the client's CHOST and repository, other USE — it builds in the
    # plan's build profile, not in this.
    sw.drone_portage("d1", repo, {"USE": "amd64 -ssl"})
    sw.start_drone(orch.url, "d1", token, superset, slots=3)
    try:
        sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 10, 60, "all 10 built")
    except AssertionError as error:
        sw.check(False, f"{error}: {sw.status(orch)['counts']}")
        sw.finish()
    before = sorted(staged_files(orch))

    second = swarm("fresh", *fresh_conn, "--from", saved, "--repo-dir", repo, "--config-root", croot, "--yes", "--json")
    again = json.loads(second.stdout) if second.returncode == 0 else {}
    sw.check(second.returncode == 0 and again.get("changed") is False and again.get("kept") == 10,
             f"fresh again changes nothing ({again or second.stderr})")
    sw.check(sorted(staged_files(orch)) == before, "fresh again keeps every staged artifact")
    # emerge runs here: the build profile of "/" (the fake portageq's default root is the client's).
    text_run = swarm("fresh", *fresh_conn, "--repo-dir", repo, "--emerge", os.path.abspath(FAKE_EMERGE), "--yes",
                     env=dict(os.environ, SWARM_FAKE_PLAN=superset, SWARM_BIN=SWARM, FAKE_PORTAGEQ_ROOT=croot))
    sw.check(text_run.returncode == 0 and "nothing changed" in text_run.stdout,
             f"fresh running (fake) emerge --pretend itself says nothing changed ({text_run.stdout.strip()[-200:]}"
             f"{text_run.stderr.strip()[-300:]})")
    sw.check(sw.status(orch)["counts"]["received"] == 10, "all 10 are still built")

    # A smaller world: what left the plan leaves staging.
    leaf = plan["packages"][-1]["cpv"]
    smaller = dict(plan, packages=plan["packages"][:-1], edges=[e for e in plan["edges"] if e["package"] != leaf])
    saved_smaller, _ = pretend_output(sw, smaller, "smaller")
    third = swarm("fresh", *fresh_conn, "--from", saved_smaller, "--repo-dir", repo, "--config-root", croot, "--yes",
                  "--json")
    cleared = json.loads(third.stdout) if third.returncode == 0 else {}
    sw.check(cleared.get("removed") == 1 and cleared.get("changed"), f"the smaller plan removes {leaf} ({cleared})")
    leaf_name = leaf.split("/")[1]
    sw.check(not any(os.path.basename(p).startswith(leaf_name + "-") for p in staged_files(orch)),
             "its unreleased artifact is gone from staging")
    sw.check(len(staged_files(orch)) == 9, "the other 9 artifacts stay")

    # Drones on another tree.
    token2 = sw.enroll(orch, "d2")
    sw.start_drone(orch.url, "d2", token2, superset, tree="Mon, 30 Nov 2026 00:00:00 +0000")
    try:
        sw.wait_until(lambda: any(d["name"] == "d2" and d["online"] for d in sw.status(orch)["drones"]), 20, "d2 online")
    except AssertionError as error:
        sw.check(False, f"{error}: {sw.status(orch)['drones']}")
        sw.finish()
    warned = swarm("fresh", *fresh_conn, "--from", saved_smaller, "--repo-dir", repo, "--config-root", croot, "--yes")
    sw.check(warned.returncode == 0 and "warning:" in warned.stderr and "d2" in warned.stderr,
             f"fresh warns about the drone on another tree ({warned.stderr.strip()[:300]})")
    verify = swarm("sync-verify", *conn)
    sw.check(verify.returncode == 1 and "MISMATCH" in verify.stdout, "sync-verify exits 1 on the mismatch")
    report = json.loads(swarm("sync-verify", *conn, "--json").stdout)
    sw.check(not report["ok"] and {d["name"]: (d["online"], d["matches"]) for d in report["drones"]} ==
             {"d1": (True, True), "d2": (True, False)}, f"sync-verify names d2 as the mismatch ({report})")
    other_repo = os.path.join(sw.dir, "repo-other")
    write_repo(other_repo, smaller, "Wed, 02 Dec 2026 00:00:00 +0000")
    refused = swarm("fresh", *fresh_conn, "--from", saved_smaller, "--repo-dir", other_repo, "--yes")
    sw.check(refused.returncode != 0 and refused.stderr.startswith("swarm: error:") and "--force" in refused.stderr,
             f"fresh refuses a plan no online drone's tree matches ({refused.stderr.strip()[:300]})")
    sw.check(sw.status(orch)["plan"]["tree_timestamp"] == TREE, "the refused plan was not submitted")
    sw.finish()


if __name__ == "__main__":
    main()
