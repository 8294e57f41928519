#!/usr/bin/env python3
"""The operator's side of profiles: `swarm fresh --profile NAME --config-root DIR` submits the
plan with the build profile captured from DIR (and warns about -march=native); `profile show`
and `profile diff` (names, hashes, directories); `client check` against a profile; `info` and the
gateway's `/binhost?profile=` give each profile's binhost; `client setup --profile` points Portage
at it; `client update --profile` refuses a binrepos.conf of another profile; the verbs that act
on one profile take --profile and a drone builds the profile, which verify, finalize and releases
then publish under /p/NAME/."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (FAKE_PORTAGEQ, SWARM, TREE, Swarm, http, write_config_root,  # noqa: E402
                     write_file)
from release_helpers import flat_plan, parse_packages  # noqa: E402

PROFILE_VERBS = ["status", "monitor", "verify", "finalize", "releases", "rollback", "release", "fresh", "submit",
                 "queue add", "unblock", "fix-blocked", "build-local", "logs", "history", "drones", "sync-verify",
                 "client setup", "client update", "client check"]


def swarm(*args, env=None):
    return subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


def as_json(sw, result, what):
    try:
        return json.loads(result.stdout)
    except ValueError:
        sw.check(False, f"{what} printed JSON (exit {result.returncode}): {result.stdout[:200]} {result.stderr[:300]}")
        sw.finish()


def write_repo(root, plan):
    for package in plan["packages"]:
        category, pf = package["cpv"].split("/")
        needs = " ".join("=" + e["needs"] for e in plan["edges"] if e["package"] == package["cpv"])
        write_file(os.path.join(root, "metadata", "md5-cache", category, pf),
                   f"EAPI=8\nSLOT=0\nKEYWORDS=amd64\nDEPEND={needs}\n")
    write_file(os.path.join(root, "metadata", "timestamp.chk"), TREE + "\n")
    write_file(os.path.join(root, "profiles", "repo_name"), "gentoo\n")


def pretend_output(sw, plan, name):
    plan_file = sw.write_plan(plan, name + ".json")
    result = subprocess.run([SWARM, "fake-emerge", "--pretend", "--verbose", "--update", "--deep", "--newuse",
                             "@world"], capture_output=True, text=True, timeout=30,
                            env=dict(os.environ, SWARM_FAKE_PLAN=plan_file))
    assert result.returncode == 0, result.stderr
    path = os.path.join(sw.dir, name + ".txt")
    write_file(path, result.stdout)
    return path


def main():
    sw = Swarm("profile-verbs")
    for verb in PROFILE_VERBS:
        result = swarm(*verb.split(), "--help")
        sw.check(result.returncode == 0 and "--profile" in result.stdout, f"swarm {verb} --help offers --profile")
    for verb in ("profile show", "profile diff"):
        result = swarm(*verb.split(), "--help")
        sw.check(result.returncode == 0 and "--json" in result.stdout, f"swarm {verb} --help")

    orch = sw.start_orch("orch")
    gateway = sw.start_gateway([orch.url])
    conn = ["--url", orch.url, "--token-file", orch.admin_token_file, "--portageq", FAKE_PORTAGEQ]

    cpvs = ["app-misc/lib-1", "app-misc/viewer-1"]
    plan = flat_plan(cpvs, edges=[("app-misc/viewer-1", "app-misc/lib-1")], seconds=1)
    repo = os.path.join(sw.dir, "repo")
    write_repo(repo, plan)
    saved = pretend_output(sw, plan, "world")

    desktop_root = write_config_root(os.path.join(sw.dir, "desktop"), repo,
                                     {"USE": "X amd64 ssl", "CFLAGS": "-O2 -march=native -pipe",
                                      "CXXFLAGS": "-O2 -pipe", "CHOST": "x86_64-pc-linux-gnu",
                                      "FEATURES": "sandbox nodoc"},
                                     {"package.use/desktop": "app-misc/viewer ssl\n"})
    server_root = write_config_root(os.path.join(sw.dir, "server"), repo,
                                    {"USE": "amd64 ssl", "CFLAGS": "-O3 -pipe", "CXXFLAGS": "-O2 -pipe",
                                     "CHOST": "x86_64-pc-linux-gnu"},
                                    {"package.use/desktop": "app-misc/viewer -ssl\n",
                                     "package.accept_keywords/x": "app-misc/lib ~amd64\n"})

    # fresh --profile --config-root: the build profile goes with the plan, -march=native is warned about.
    fresh = swarm("fresh", *conn, "--from", saved, "--repo-dir", repo, "--config-root", desktop_root,
                  "--profile", "desktop", "--yes", "--json")
    reply = as_json(sw, fresh, "fresh --profile desktop")
    sw.check(fresh.returncode == 0 and reply["profile"] == "desktop" and len(reply["build_profile"]) == 64,
             f"fresh --profile desktop --config-root submits with a build profile ({reply})")
    sw.check("warning: CFLAGS has -march=native" in fresh.stderr and "its own CPU" in fresh.stderr,
             f"fresh warns about -march=native ({fresh.stderr.strip()[:300]})")
    desktop_hash = reply["build_profile"]
    listed = {p["name"]: p for p in orch.api("GET", "/api/v1/profiles").json()["profiles"]}
    sw.check(listed.get("desktop", {}).get("build_profile") == desktop_hash,
             f"the orchestrator has profile desktop with that build profile ({listed})")

    server = swarm("fresh", *conn, "--from", saved, "--repo-dir", repo, "--config-root", server_root,
                   "--profile", "server", "--yes", "--json")
    server_hash = as_json(sw, server, "fresh --profile server").get("build_profile", "")
    sw.check(server.returncode == 0 and len(server_hash) == 64 and server_hash != desktop_hash,
             "fresh --profile server submits another build profile")
    sw.check("march=native" not in server.stderr, "no warning without -march=native")
    plain = swarm("fresh", *conn, "--from", saved, "--repo-dir", repo, "--yes", "--json")
    sw.check(plain.returncode == 0 and as_json(sw, plain, "fresh")["build_profile"] == "" and
             "no build profile" in plain.stderr,
             f"fresh --from without --config-root sends none and says so ({plain.stderr.strip()[:200]})")

    # profile show.
    show = swarm("profile", "show", "desktop", *conn, "--json")
    shown = as_json(sw, show, "profile show desktop")
    bp = shown.get("build_profile") or {}
    sw.check(show.returncode == 0 and shown["build_profile_hash"] == desktop_hash and
             bp.get("settings", {}).get("USE") == "X amd64 ssl" and
             bp.get("settings", {}).get("FEATURES") == "nodoc" and
             bp.get("files") == {"package.use/desktop": "app-misc/viewer ssl\n"} and
             bp.get("make_profile") == {"repository": "gentoo", "path": "default/linux/amd64/23.0"} and
             bp.get("repositories") == [{"name": "gentoo", "timestamp": TREE}],
             f"profile show --json: settings, files, make.profile, repositories ({shown})")
    sw.check(any("-march=native" in w for w in shown.get("warnings", [])), "profile show warns about -march=native")
    sw.check(shown.get("production_url", "").endswith("/p/desktop/production"), "profile show names its binhost")
    text = swarm("profile", "show", "desktop", *conn)
    sw.check(text.returncode == 0 and "package.use/desktop" in text.stdout and "app-misc/viewer ssl" in text.stdout
             and "CFLAGS" in text.stdout, f"profile show prints the profile ({text.stdout[:300]})")
    none = swarm("profile", "show", *conn)
    sw.check(none.returncode == 0 and "build profile none" in none.stdout,
             f"profile show (default) says its plan came without a build profile ({none.stdout.strip()[:200]})")
    missing = swarm("profile", "show", "nosuch", *conn)
    sw.check(missing.returncode != 0 and missing.stderr.startswith("swarm: error:") and "desktop" in missing.stderr,
             f"an unknown profile is an error naming those there are ({missing.stderr.strip()[:200]})")
    local = swarm("profile", "show", server_root, *conn, "--json")
    sw.check(local.returncode == 0 and as_json(sw, local, "profile show DIR")["build_profile_hash"] == server_hash,
             "profile show DIR captures this machine's configuration (the same hash fresh sent)")
    by_hash = swarm("profile", "show", desktop_hash, *conn, "--json")
    sw.check(by_hash.returncode == 0 and as_json(sw, by_hash, "profile show HASH")["build_profile_hash"] == desktop_hash,
             "profile show HASH shows a stored build profile")

    # profile diff: names, hashes and directories.
    diff = swarm("profile", "diff", "desktop", "server", *conn, "--json")
    report = as_json(sw, diff, "profile diff")
    what = [d["what"] for d in report.get("differences", [])]
    sw.check(diff.returncode == 1 and report["binaries_differ"], f"profile diff exits 1 on differences ({what})")
    sw.check('CFLAGS: "-O2 -march=native -pipe" → "-O3 -pipe"' in what and "FEATURES: only in A (\"nodoc\")" in what
             and "package.accept_keywords/x: only in B" in what, f"profile diff names the differences ({what})")
    use = next((d for d in report["differences"] if d["what"].startswith("USE")), {})
    sw.check(use.get("only_in_a") == ["X"] and use.get("only_in_b") == [], f"USE differs by X ({use})")
    viewer = next((d for d in report["differences"] if d["what"].startswith("package.use/desktop")), {})
    sw.check(viewer.get("only_in_a") == ["app-misc/viewer ssl"] and viewer.get("only_in_b") == ["app-misc/viewer -ssl"],
             f"a package file's lines that differ ({viewer})")
    same = swarm("profile", "diff", "desktop", desktop_root, *conn)
    sw.check(same.returncode == 0 and "the same build configuration" in same.stdout,
             f"a profile and the directory it came from are the same ({same.stdout.strip()[:300]})")
    same = swarm("profile", "diff", desktop_hash, "desktop", *conn)
    sw.check(same.returncode == 0, "a hash and its profile are the same")
    bad = swarm("profile", "diff", "desktop", "no such thing", *conn)
    sw.check(bad.returncode != 0 and bad.stderr.startswith("swarm: error:"), "a bad argument is a one-line error")

    # client check: this machine (a config root) against a profile.
    check = swarm("client", "check", "--profile", "desktop", "--config-root", desktop_root, *conn)
    sw.check(check.returncode == 0 and "has the configuration of profile desktop" in check.stdout,
             f"client check: the same configuration ({check.stdout.strip()[:200]} {check.stderr.strip()[:200]})")
    check = swarm("client", "check", "--profile", "desktop", "--config-root", server_root, *conn)
    sw.check(check.returncode == 1 and "CFLAGS" in check.stdout and "- app-misc/viewer ssl" in check.stdout and
             "+ app-misc/viewer -ssl" in check.stdout, f"client check lists what differs ({check.stdout[:400]})")
    checked = as_json(sw, swarm("client", "check", "--profile", "server", "--config-root", server_root, *conn,
                                "--json"), "client check --json")
    sw.check(checked["same"] and not checked["binaries_differ"] and checked["build_profile"] == server_hash,
             f"client check --json ({checked})")
    # Another tree alone changes no binary.
    newer_repo = os.path.join(sw.dir, "repo-newer")
    write_repo(newer_repo, plan)
    write_file(os.path.join(newer_repo, "metadata", "timestamp.chk"), "Wed, 02 Dec 2026 00:00:00 +0000\n")
    newer_root = write_config_root(os.path.join(sw.dir, "server-newer"), newer_repo,
                                   {"USE": "amd64 ssl", "CFLAGS": "-O3 -pipe", "CXXFLAGS": "-O2 -pipe",
                                    "CHOST": "x86_64-pc-linux-gnu"},
                                   {"package.use/desktop": "app-misc/viewer -ssl\n",
                                    "package.accept_keywords/x": "app-misc/lib ~amd64\n"})
    newer = swarm("client", "check", "--profile", "server", "--config-root", newer_root, *conn)
    sw.check(newer.returncode == 0 and "repository gentoo: tree" in newer.stdout and "none of which" in newer.stdout,
             f"client check: another tree is listed, exit 0 ({newer.stdout.strip()[:300]})")
    nobp = swarm("client", "check", "--config-root", desktop_root, *conn)
    sw.check(nobp.returncode != 0 and "no build profile" in nobp.stderr,
             f"client check against a profile without a build profile ({nobp.stderr.strip()[:200]})")

    # The gateway and info give each profile's binhost.
    sw.check(http("GET", gateway + "/binhost").json()["url"] == orch.url + "/production", "gateway /binhost: default")
    sw.check(http("GET", gateway + "/binhost?profile=desktop").json()["url"] == orch.url + "/p/desktop/production",
             "gateway /binhost?profile=desktop")
    sw.check(http("GET", gateway + "/binhost?profile=..").status == 400, "gateway /binhost?profile=.. is 400")
    info = as_json(sw, swarm("info", "--url", gateway, "--token-file", orch.admin_token_file, "--json"), "info --json")
    urls = {p["name"]: p["binhost_url"] for p in info.get("profiles", [])}
    sw.check(urls == {"default": orch.url + "/production", "desktop": orch.url + "/p/desktop/production",
                      "server": orch.url + "/p/server/production"}, f"info --json lists the profiles' binhosts ({urls})")

    # client setup --profile, client update --profile.
    conf = os.path.join(sw.dir, "etc", "portage", "binrepos.conf", "swarm.conf")
    setup = swarm("client", "setup", "--gateway", gateway, "--profile", "desktop", "--binrepos-conf", conf)
    sw.check(setup.returncode == 0 and "profile desktop has no release" in setup.stderr,
             f"client setup --profile desktop warns that it has no release yet ({setup.stderr.strip()[:300]})")
    with open(conf) as f:
        lines = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    sw.check(lines == ["[swarm-desktop]", "priority = 10", f"sync-uri = {orch.url}/p/desktop/production",
                       "verify-signature = false"], f"binrepos.conf names desktop's binhost ({lines})")
    fake_emerge = os.path.join(sw.dir, "emerge-never")
    write_file(fake_emerge, "#!/bin/sh\necho ran >> \"$0.log\"\nexit 0\n")
    os.chmod(fake_emerge, 0o755)
    other = swarm("client", "update", "--profile", "server", "--binrepos-conf", conf, "--emerge", fake_emerge,
                  "--portageq", FAKE_PORTAGEQ)
    sw.check(other.returncode != 0 and "profile desktop" in other.stderr and
             "swarm client setup --profile server" in other.stderr and not os.path.exists(fake_emerge + ".log"),
             f"client update --profile server refuses desktop's binrepos.conf, runs no emerge "
             f"({other.stderr.strip()[:300]})")

    # The verbs act on the profile: a drone builds desktop, verify/finalize/releases publish it.
    status = as_json(sw, swarm("status", *conn[:4], "--profile", "desktop", "--json"), "status --profile")
    sw.check(status.get("profile") == "desktop" and status["counts"].get("needed") == 2,
             f"status --profile desktop ({status.get('profile')}, {status.get('counts')})")
    token = sw.enroll(orch, "d1")
    sw.drone_portage("d1", repo, {"USE": "amd64"})
    sw.start_drone(orch.url, "d1", token, sw.write_plan(plan, "drone-plan.json"), slots=2, time_scale=0.001)
    try:
        sw.wait_until(lambda: orch.api("GET", "/api/v1/status?profile=desktop").json()["counts"]["received"] == 2,
                      90, "desktop built")
    except AssertionError as error:
        sw.check(False, f"{error}: {orch.api('GET', '/api/v1/status?profile=desktop').json()['counts']} "
                        f"{orch.api('GET', '/api/v1/drones').json()['drones']}")
        sw.finish()
    drones = as_json(sw, swarm("drones", *conn[:4], "--profile", "server", "--json"), "drones --profile")
    sw.check([d["name"] for d in drones] == ["d1"], f"drones --profile server: d1 serves every profile ({drones})")
    verify = swarm("verify", *conn[:4], "--profile", "desktop", "--json")
    sw.check(verify.returncode == 0 and as_json(sw, verify, "verify")["pass"], "verify --profile desktop passes")
    final = swarm("finalize", *conn[:4], "--profile", "desktop", "--yes", "--json")
    sw.check(final.returncode == 0 and as_json(sw, final, "finalize")["packages"] == 2,
             f"finalize --profile desktop publishes 2 packages ({final.stderr.strip()[:200]})")
    releases = as_json(sw, swarm("releases", *conn[:4], "--profile", "desktop", "--json"), "releases")
    sw.check(len(releases["releases"]) == 1 and releases["url"].endswith("/p/desktop/production"),
             "releases --profile desktop lists it")
    default_releases = as_json(sw, swarm("releases", *conn[:4], "--json"), "releases default")
    sw.check(default_releases["releases"] == [], "the default profile has no release")
    _, listed = parse_packages(http("GET", orch.url + "/p/desktop/production/Packages").body.decode())
    sw.check(sorted(p["CPV"] for p in listed) == sorted(cpvs), "/p/desktop/production lists desktop's packages")
    setup = swarm("client", "setup", "--gateway", gateway, "--profile", "desktop", "--binrepos-conf", conf)
    sw.check(setup.returncode == 0 and "warning" not in setup.stderr, "client setup: desktop has a release now")
    history = as_json(sw, swarm("history", *conn[:4], "--profile", "desktop", "--json"), "history")
    sw.check(sorted({b["package"] for b in history}) == sorted(cpvs), f"history --profile desktop ({history})")
    sync = swarm("sync-verify", *conn[:4], "--profile", "desktop", "--json")
    sw.check(sync.returncode == 0 and as_json(sw, sync, "sync-verify")["profile"] == "desktop",
             "sync-verify --profile desktop")
    bad = swarm("status", *conn[:4], "--profile", "../x")
    sw.check(bad.returncode != 0 and "profile name" in bad.stderr, f"a bad --profile is refused ({bad.stderr[:200]})")
    sw.finish()


if __name__ == "__main__":
    main()
