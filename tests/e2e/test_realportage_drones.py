"""Two real drones build a client's @world with the REAL Portage, each in isolated build roots
and in the client's configuration, and a fresh client installs it all from production (issue 9).

- The client prefix (USE="ssl", package.use `sw/editor doc`) computes `emerge -pvuDN @world` over
  tests/data/realportage-repo (USE-conditional deps, two slots, a `:=` sub-slot, BDEPEND, PDEPEND,
  `|| ( )`; every src_compile dies when a build dependency is missing); the plan goes to the
  orchestrator with the client's build profile.
- A rogue drone whose emerge adds `-march=skylake` to CFLAGS uploads a mis-built GPKG: 422, the
  orchestrator records it as mis-built and it never reaches staging.
- Two real `swarm drone`s whose own configurations differ from the client's (d1: USE="-ssl",
  `sw/editor -spell -doc`; d2: `sw/viewer -ssl`, binrepos.conf as a file) build the whole plan;
  every GPKG's USE is the plan's; verify passes; finalize publishes.
- A fresh client prefix installs all of @world from production with --getbinpkgonly, and
  `emerge -pvuDN --getbinpkgonly @world` then says `Total: 0 packages`.
- Every drone's own VDB (its prefix's var/db/pkg) is byte for byte what it was before: build
  dependencies went into the build roots only.

Needs root and ../shared/realportage (or SWARM_REALPORTAGE); without them it says why and passes.
"""

import glob
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realportage as rp  # noqa: E402

KIT = rp.kit_or_skip()

from harness import SWARM, TREE, Swarm, check_staging, gpkg_report, http  # noqa: E402

WORLD = ["sw/editor", "sw/viewer"]
CLIENT_CONFIG = ["--use", "ssl", "--package-use", "sw/editor doc"]
EXPECTED = sorted(["sw/tls-1", "sw/compat-1.4", "sw/core-2", "sw/compat-2.1", "sw/spell-1", "sw/docgen-1",
                   "sw/backend-a-1", "sw/viewer-1", "sw/editor-3", "sw/editor-plugins-1"])

sw = Swarm("realportage-drones")
T = sw.dir
repo = rp.copy_repo(T)
with open(os.path.join(repo, "metadata", "timestamp.chk")) as f:
    sw.check(f.readline().strip() == TREE, "the test repository's tree timestamp is the harness's")

# --- the client: its plan and its build profile -------------------------------------------------
client = rp.prefix(KIT, os.path.join(T, "client"), repo, "--world", *WORLD, *CLIENT_CONFIG)
pretend = rp.emerge(client, "--pretend", "--verbose", "--update", "--deep", "--newuse", "@world")
pretend_file = os.path.join(T, "pretend.txt")
rp.write(pretend_file, pretend)
plan = json.loads(rp.run([SWARM, "portage", "plan", "--emerge-output", pretend_file, "--repo", repo]))
cpvs = sorted(p["cpv"] for p in plan["packages"])
sw.check(cpvs == EXPECTED, f"the client's plan is the 10 packages of @world ({cpvs})")
use_of = {p["cpv"]: sorted(p["use"]) for p in plan["packages"]}
sw.check(use_of.get("sw/viewer-1") == ["ssl"] and use_of.get("sw/editor-3") == ["doc", "spell"],
         f"the plan builds viewer with ssl and editor with doc and spell ({use_of})")
build_profile = rp.capture_build_profile(client)
sw.check(build_profile["files"].get("package.use/realportage") == "sw/editor doc\n",
         "the client's build profile holds its package.use")

# --- the drones' own systems differ from the client's --------------------------------------------
drone_prefixes = {
    "d1": rp.prefix(KIT, os.path.join(T, "d1"), repo, "--use=-ssl", "--package-use", "sw/editor -spell -doc"),
    "d2": rp.prefix(KIT, os.path.join(T, "d2"), repo, "--package-use", "sw/viewer -ssl",
                    "--package-use", "sw/editor -doc"),
}
# Many older installs have binrepos.conf as a file: that must stop nothing.
rp.write(os.path.join(drone_prefixes["d2"], "etc", "portage", "binrepos.conf"),
         "[old-binhost]\nsync-uri = http://127.0.0.1:9/never\npriority = 1\n")
before = {}
for name, prefix_dir in drone_prefixes.items():
    os.makedirs(os.path.join(prefix_dir, "var", "db", "pkg"), exist_ok=True)
    before[name] = (rp.tree_snapshot(os.path.join(prefix_dir, "var", "db", "pkg")),
                    sorted(os.listdir(os.path.join(prefix_dir, "usr", "share"))))

orch = sw.start_orch("orch")
submitted = orch.api("POST", "/api/v1/plan", {"plan": plan, "mode": "replace", "build_profile": build_profile})
sw.check(submitted.status == 200, f"the plan is submitted with the client's build profile ({submitted.body[:300]})")
profiles = {p["name"]: p for p in orch.api("GET", "/api/v1/profiles").json()["profiles"]}
profile_hash = profiles["default"].get("build_profile", "")
sw.check(len(profile_hash) == 64, f"the default profile names its build profile ({profile_hash!r})")


def drone_argv(name, token, prefix_dir, emerge=None, extra=(), repo_dir=repo):
    emerge = emerge or os.path.join(prefix_dir, "bin", "emerge")
    return [SWARM, "drone", "--url", orch.url, "--name", name, "--token-file", sw.token_file(token), "--slots", "1",
            "--spool", os.path.join(T, "spool-" + name), "--emerge", emerge,
            "--portage-configroot", prefix_dir, "--repo-dir", repo_dir, "--min-free-disk", "1M", *extra]


def events(kind=None):
    out = orch.api("GET", "/api/v1/events?since=0", timeout=10).json()["events"]
    return [e for e in out if kind is None or e["kind"] == kind]


# --- a drone without the profile's repository refuses its leases, and `swarm drones` says why ----
stranger_repo = rp.copy_repo(T, "stranger-repo")
rp.write(os.path.join(stranger_repo, "profiles", "repo_name"), "stranger_repo\n")
stranger_prefix = rp.prefix(KIT, os.path.join(T, "stranger"), stranger_repo)
stranger = sw.spawn("drone-stranger", drone_argv("stranger", sw.enroll(orch, "stranger"), stranger_prefix,
                                                 repo_dir=stranger_repo))
stranger.wait_for_line(r"drone stranger ready", timeout=300)
sw.wait_until(lambda: [e for e in events("refused") if e.get("drone") == "stranger"], timeout=300,
              what="the stranger's refusal", interval=0.5)
shown = subprocess.run([SWARM, "drones", "--url", orch.url, "--token-file", orch.admin_token_file], capture_output=True,
                       text=True, timeout=60)
sw.check(shown.returncode == 0 and "stranger refuses profile default: repository_missing" in shown.stdout
         and "swarm_test" in shown.stdout,
         f"`swarm drones` shows the refusal and why ({shown.returncode}: {shown.stdout.strip()[-400:]}"
         f"{shown.stderr.strip()[-300:]})")
stranger.signal(signal.SIGTERM)
stranger.wait(timeout=120)

# --- a rogue drone mis-builds: its emerge adds a target flag the profile does not have -----------
rogue_prefix = rp.prefix(KIT, os.path.join(T, "rogue"), repo)
rogue_emerge = os.path.join(T, "rogue-bin", "emerge")
rp.write(rogue_emerge, "#!/bin/sh\nexport CFLAGS=\"-O2 -pipe -march=skylake\"\nexec %s \"$@\"\n"
         % os.path.join(rogue_prefix, "bin", "emerge"))
os.chmod(rogue_emerge, 0o755)
# The drone asks the portageq beside its emerge about itself.
os.symlink(os.path.join(rogue_prefix, "bin", "portageq"), os.path.join(T, "rogue-bin", "portageq"))
rogue = sw.spawn("drone-rogue", drone_argv("rogue", sw.enroll(orch, "rogue"), rogue_prefix, rogue_emerge,
                                           ["--drain", "return"]))
rogue.wait_for_line(r"drone rogue ready .*build root isolated", timeout=300)
misbuilt = sw.wait_until(lambda: events("misbuilt"), timeout=900,
                         what="the rogue's upload refused as mis-built", interval=1)
sw.check(misbuilt[0]["drone"] == "rogue" and "march" in misbuilt[0]["detail"],
         f"the orchestrator refused the rogue's upload as mis-built, naming the target flag ({misbuilt[:1]})")
sw.check(any("422" in line for line in rogue.output()), "the rogue drone got 422 for its upload")
rogue.signal(signal.SIGTERM)
rogue.wait(timeout=300)
sw.check(not [f for f in glob.glob(os.path.join(orch.data_dir, "staging", "**", "*.gpkg.tar"), recursive=True)],
         "nothing mis-built reached staging")

# --- two real drones build the plan in the client's configuration --------------------------------
drones = {}
for name, prefix_dir in drone_prefixes.items():
    drones[name] = sw.spawn("drone-" + name, drone_argv(name, sw.enroll(orch, name), prefix_dir))
for name, proc in drones.items():
    proc.wait_for_line(rf"drone {name} ready .*build root isolated", timeout=300)
listed = {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}
for name in drones:
    sw.check(listed[name]["build_root"] == "isolated" and listed[name]["chost"] == "x86_64-pc-linux-gnu",
             f"{name} registered an isolated build root and its CHOST ({listed[name]['build_root']}, "
             f"{listed[name]['chost']})")

sw.wait_until(lambda: sw.status(orch)["counts"].get("received", 0) == len(EXPECTED), timeout=3000,
              what="every package received", interval=2)
check_staging(sw, orch, plan)
wrong_use = []
for cpv in EXPECTED:
    category, pf = cpv.split("/")
    pn = pf.rsplit("-", 1)[0]
    staged = glob.glob(os.path.join(orch.data_dir, "staging", category, pn, pf + "-*.gpkg.tar"))
    code, report = gpkg_report(staged[0], cpv) if staged else (1, None)
    use = set(((report or {}).get("metadata") or {}).get("USE", "").split())
    iuse = {flag.lstrip("+-") for flag in ((report or {}).get("metadata") or {}).get("IUSE", "").split()}
    if code != 0 or use & iuse != set(use_of[cpv]):
        wrong_use.append((cpv, sorted(use & iuse)))
sw.check(not wrong_use, f"every GPKG was built with the plan's USE despite the drones' own configs ({wrong_use})")
builders = {b.get("drone") for b in http("GET", orch.url + "/api/v1/builds?limit=1000",
                                         token=orch.admin_token).json()["builds"] if b.get("result") == "success"}
sw.check(not [e for e in events("misbuilt") if e["drone"] != "rogue"],
         f"no upload of d1 or d2 was refused as mis-built (successful builds by {sorted(b for b in builders if b)})")

# --- verify, finalize, and a fresh client installs @world from production only -------------------
conn = ["--url", orch.url, "--token-file", orch.admin_token_file]
verify = subprocess.run([SWARM, "verify", *conn, "--json"], capture_output=True, text=True, timeout=300)
sw.check(verify.returncode == 0, f"verify passes ({verify.stdout[-500:]}{verify.stderr[-300:]})")
final = subprocess.run([SWARM, "finalize", *conn, "--yes", "--json"], capture_output=True, text=True, timeout=300)
sw.check(final.returncode == 0, f"finalize publishes ({final.stdout[-300:]}{final.stderr[-300:]})")
production = orch.api("GET", "/api/v1/profiles").json()["profiles"][0]["production_url"]
fresh = rp.prefix(KIT, os.path.join(T, "fresh-client"), repo, "--world", *WORLD, *CLIENT_CONFIG,
                  "--binhost", production)
install = rp.emerge(fresh, "--getbinpkgonly", "--update", "--deep", "--newuse", "@world", check=False)
sw.check(install.returncode == 0, f"the fresh client installs @world from binaries ({install.stdout[-1500:]}"
         f"{install.stderr[-800:]})")
# Installing from binaries needs no build tool: docgen (editor's BDEPEND) is the one package of
# the plan a binary-only client does not install.
installed_expected = [cpv for cpv in EXPECTED if cpv != "sw/docgen-1"]
sw.check(rp.vdb_cpvs(fresh) == installed_expected,
         f"every package of @world and its runtime dependencies is installed ({rp.vdb_cpvs(fresh)})")
again = rp.emerge(fresh, "--pretend", "--verbose", "--update", "--deep", "--newuse", "--getbinpkgonly", "@world",
                  check=False)
sw.check("Total: 0 packages" in again.stdout, f"nothing is left to install ({again.stdout[-600:]})")

# --- the drones' own systems are untouched -------------------------------------------------------
for name, prefix_dir in drone_prefixes.items():
    vdb, share = before[name]
    sw.check(rp.tree_snapshot(os.path.join(prefix_dir, "var", "db", "pkg")) == vdb,
             f"{name}'s own VDB is byte for byte what it was")
    sw.check(sorted(os.listdir(os.path.join(prefix_dir, "usr", "share"))) == share,
             f"nothing was installed into {name}'s own prefix")
    sw.check(not glob.glob(os.path.join(T, "spool-" + name, "roots", "lease-*")), f"{name} left no build root")
with open(os.path.join(drone_prefixes["d2"], "etc", "portage", "binrepos.conf")) as f:
    sw.check(f.read().startswith("[old-binhost]"), "d2's binrepos.conf file is untouched")
sw.finish()
