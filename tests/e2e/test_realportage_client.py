#!/usr/bin/env python3
"""`swarm client update` and `swarm client check` with the real Portage (../shared/realportage).

A builder prefix computes the plan with `swarm fresh` (emerge and portageq of the prefix: the
build profile is captured by the real portageq) and builds real GPKGs of its @world (cat/lib-b and
cat/opt-u, IUSE="+extra", with the dependency cat/lib-a); its PKGDIR is served as a binhost. Then:
- a client prefix with the same configuration: `client check` finds no difference, `client
  update` installs every package from binaries and emerge -pvuDN --getbinpkgonly @world says
  `Total: 0 packages`;
- a binhost lacking cat/opt-u: `client update` exits non-zero naming it and installs nothing;
- a client whose package.use turns opt-u's `extra` off (the binary is USE-mismatched): `client
  check` names the difference, `client update` exits non-zero naming cat/opt-u and installs
  nothing.
Skips when ../shared/realportage (or $SWARM_REALPORTAGE) is absent or when not run as root."""

import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HERE, SWARM, Swarm, http  # noqa: E402

KIT = os.environ.get("SWARM_REALPORTAGE") or os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared",
                                                                          "realportage"))
OPT_U = """EAPI=8
DESCRIPTION="a package with a default-on USE flag"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
IUSE="+extra"

src_compile() {
	echo "${CATEGORY}/${PF} USE=${USE}" > "${T}/${PN}.txt" || die
}

src_install() {
	insinto /usr/share/${PN}
	doins "${T}/${PN}.txt"
}
"""


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(0)


def run(argv, timeout=900, env=None):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def vdb(prefix):
    root = os.path.join(prefix, "var", "db", "pkg")
    if not os.path.isdir(root):
        return []
    return sorted(f"{c}/{p}" for c in os.listdir(root) for p in os.listdir(os.path.join(root, c))
                  if not p.startswith((".", "-")))


def main():
    if not os.path.isfile(os.path.join(KIT, "realportage-prefix")):
        skip(f"the real Portage kit is not at {KIT} (set SWARM_REALPORTAGE)")
    if os.geteuid() != 0:
        skip("the real Portage kit runs as root")
    sw = Swarm("realportage-client")
    t = sw.dir
    env = dict(os.environ, REALPORTAGE_CACHE=os.environ.get("REALPORTAGE_CACHE", "/var/tmp/realportage"))

    repo = os.path.join(t, "repo")
    made = run([os.path.join(KIT, "realportage-repo"), repo], env=env)
    sw.check(made.returncode == 0, f"realportage-repo ({made.stderr[-300:]})")
    os.makedirs(os.path.join(repo, "cat", "opt-u"))
    with open(os.path.join(repo, "cat", "opt-u", "opt-u-1.ebuild"), "w") as f:
        f.write(OPT_U)

    def prefix(name, *options):
        path = os.path.join(t, name)
        made = run([os.path.join(KIT, "realportage-prefix"), path, "--repo", repo, "--world", "cat/lib-b",
                    "cat/opt-u", *options], env=env)
        if made.returncode != 0:
            sw.check(False, f"realportage-prefix {name}: {made.stdout[-300:]} {made.stderr[-500:]}")
            sw.finish()
        return path

    builder = prefix("builder")
    orch = sw.start_orch("orch")
    conn = ["--url", orch.url, "--token-file", orch.admin_token_file]

    # swarm fresh with the real emerge and portageq: the plan and the captured build profile.
    fresh = run([SWARM, "fresh", *conn, "--emerge", os.path.join(builder, "bin", "emerge"), "--portageq",
                 os.path.join(builder, "bin", "portageq"), "--repo-dir", repo, "--profile", "rp", "--yes", "--json"],
                env=env)
    reply = json.loads(fresh.stdout) if fresh.returncode == 0 else {}
    sw.check(reply.get("packages") == 3 and len(reply.get("build_profile", "")) == 64,
             f"swarm fresh plans lib-a, lib-b and opt-u with a build profile ({reply} {fresh.stderr[-500:]})")
    stored = orch.api("GET", "/api/v1/profiles/" + reply.get("build_profile", "x")).json()
    sw.check(stored.get("repositories") == [{"name": "test_repo", "timestamp": ""}] and
             stored.get("make_profile") == {"repository": "test_repo", "path": "test_profile"} and
             stored.get("settings", {}).get("CHOST") == "x86_64-pc-linux-gnu" and
             "extra" not in stored.get("settings", {}).get("USE", ""),
             f"the real portageq's settings, make.profile and repository ({stored})")

    # Real GPKGs of the builder's @world, served as a binhost (and one without cat/opt-u).
    built = run([os.path.join(builder, "bin", "emerge"), "--buildpkg", "--update", "--deep", "--newuse", "@world"],
                env=env)
    sw.check(built.returncode == 0, f"the builder built @world ({built.stdout[-500:]})")
    pkgdir = os.path.join(builder, "var", "cache", "binpkgs")
    served = os.path.join(t, "served")
    shutil.copytree(pkgdir, os.path.join(served, "complete"))
    shutil.copytree(pkgdir, os.path.join(served, "lacking"), ignore=shutil.ignore_patterns("opt-u", "Packages*"))
    fixed = run([os.path.join(builder, "bin", "emaint"), "binhost", "--fix"],
                env=dict(env, REALPORTAGE_PKGDIR=os.path.join(served, "lacking")))
    sw.check(fixed.returncode == 0 and os.path.exists(os.path.join(served, "lacking", "Packages")),
             "the binhost lacking opt-u has its own index")
    server = sw.spawn("binhost", [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                                  served, "0"])
    port = int(server.wait_for_line(r"port (\d+)").group(1))
    binhost = f"http://127.0.0.1:{port}"
    sw.wait_until(lambda: http("GET", binhost + "/complete/Packages").status == 200, 30, "the binhost answers")

    def swarm_client(client, *args):
        return run([SWARM, "client", *args, "--emerge", os.path.join(client, "bin", "emerge"), "--portageq",
                    os.path.join(client, "bin", "portageq")], env=env)

    # 1. The same configuration, a complete binhost.
    good = prefix("client-good", "--binhost", binhost + "/complete")
    check = run([SWARM, "client", "check", *conn, "--profile", "rp", "--portageq",
                 os.path.join(good, "bin", "portageq"), "--json"], env=env)
    report = json.loads(check.stdout) if check.stdout.startswith("{") else {}
    sw.check(check.returncode == 0 and report.get("same"),
             f"client check: this client has the profile's configuration ({report} {check.stderr[-300:]})")
    update = swarm_client(good, "update")
    sw.check(update.returncode == 0 and "updated from binaries only" in update.stdout,
             f"client update installs from the binhost ({update.stdout[-600:]} {update.stderr[-400:]})")
    sw.check(vdb(good) == ["cat/lib-a-1", "cat/lib-b-1", "cat/opt-u-1"], f"every package is installed: {vdb(good)}")
    again = run([os.path.join(good, "bin", "emerge"), "--pretend", "--verbose", "--update", "--deep", "--newuse",
                 "--getbinpkgonly", "@world"], env=env)
    sw.check(again.returncode == 0 and "Total: 0 packages" in again.stdout,
             f"nothing is left to do ({again.stdout[-300:]})")
    with open(os.path.join(good, "usr", "share", "opt-u", "opt-u.txt")) as f:
        sw.check("extra" in f.read(), "opt-u is the binary built with USE=extra")
    idle = swarm_client(good, "update", "--json")
    result = json.loads(idle.stdout) if idle.stdout.startswith("{") else {}
    sw.check(idle.returncode == 0 and result.get("result") == "updated" and not result.get("installed"),
             f"client update with nothing to do installs nothing ({result})")

    # 2. A binhost without one world package: refused, named, nothing installed.
    lacking = prefix("client-lacking", "--binhost", binhost + "/lacking")
    update = swarm_client(lacking, "update")
    errors = [line for line in update.stderr.splitlines() if line.startswith("swarm: error:")]
    sw.check(update.returncode == 1 and len(errors) == 1 and "cat/opt-u" in errors[0],
             f"client update refuses a binhost lacking opt-u, naming it ({update.stderr[-400:]})")
    sw.check(vdb(lacking) == [], f"and installs nothing: {vdb(lacking)}")

    # 3. A client whose configuration differs: USE-mismatched binary.
    other = prefix("client-other", "--binhost", binhost + "/complete", "--package-use", "cat/opt-u -extra")
    check = run([SWARM, "client", "check", *conn, "--profile", "rp", "--portageq",
                 os.path.join(other, "bin", "portageq")], env=env)
    sw.check(check.returncode == 1 and "package.use/realportage: only in B" in check.stdout and
             "+ cat/opt-u -extra" in check.stdout, f"client check names the difference ({check.stdout[-400:]})")
    update = swarm_client(other, "update", "--json")
    result = json.loads(update.stdout) if update.stdout.startswith("{") else {}
    sw.check(update.returncode != 0 and result.get("result") == "refused" and "cat/opt-u" in result.get("unsatisfied", [])
             and "cat/opt-u" in update.stderr, f"client update refuses the USE-mismatched binary ({result})")
    sw.check(vdb(other) == [], f"and installs nothing: {vdb(other)}")
    sw.finish()


if __name__ == "__main__":
    main()
