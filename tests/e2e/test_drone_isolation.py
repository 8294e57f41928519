"""A drone building with the REAL Portage in isolated build roots (issue 9).

The drone's "system" is a realportage prefix; it builds a small plan computed by the real
`emerge --pretend` of a client prefix, and:

- every package is built, valid and in staging;
- the drone's own VDB is exactly what it was: build dependencies went into build roots only;
- the drone's own package.use (`cat/viewer -ssl`) does not change what is built: the plan says
  USE="ssl" and the GPKG's USE metadata says so too;
- its binrepos.conf is a plain file (as on many older installs) and that stops nothing;
- killed with SIGKILL while emerge builds, the restarted drone ends the leftover emerge before it
  builds anything (so one emerge of that package at a time), removes the half-written file
  the kill left in its PKGDIR, and its Packages lists only files that are there.

Needs root and ../shared/realportage; without them it says why and passes.
"""

import glob
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, TREE, Swarm, check_staging, gpkg_report, http  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REALPORTAGE = os.path.join(REPO_ROOT, "..", "shared", "realportage")

if not os.path.isfile(os.path.join(REALPORTAGE, "realportage-prefix")):
    print(f"skip: the real Portage kit is not at {REALPORTAGE}")
    sys.exit(0)
if os.geteuid() != 0:
    print("skip: isolated build roots and the real Portage need root")
    sys.exit(0)


def run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)
    if result.returncode != 0:
        raise AssertionError(f"{argv[0]} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def tree_snapshot(root):
    """Every file below root with its content: what a VDB holds."""
    out = {}
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def group_members(pgid):
    """Live processes of a process group (zombies are gone)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


sw = Swarm("drone-isolation")
T = sw.dir
gate = os.path.join(T, "hold-lib-a")

# --- the repository: the kit's example, plus a package with USE flags; lib-a's build waits while
# the gate file exists (it is there for the first build only: the one the drone is killed in).
repo = os.path.join(T, "repo")
run([os.path.join(REALPORTAGE, "realportage-repo"), repo])
write(os.path.join(repo, "metadata", "timestamp.chk"), TREE + "\n")
write(os.path.join(repo, "cat", "viewer", "viewer-1.ebuild"), """EAPI=8
DESCRIPTION="a viewer with USE flags"
HOMEPAGE="https://example.invalid/"
S=${WORKDIR}
LICENSE="MIT"
SLOT="0"
KEYWORDS="amd64"
IUSE="ssl doc"
DEPEND="ssl? ( cat/lib-a )"
RDEPEND="${DEPEND}"
src_compile() {
	if use ssl; then
		[[ -f ${ESYSROOT}/usr/share/lib-a/lib-a.txt ]] || die "cat/lib-a is not installed in ESYSROOT=${ESYSROOT}"
	fi
	echo "${CATEGORY}/${PF} USE=${USE}" > "${T}/${PN}.txt" || die
}
src_install() { insinto /usr/share/${PN}; doins "${T}/${PN}.txt"; }
""")
lib_a = os.path.join(repo, "cat", "lib-a", "lib-a-1.ebuild")
with open(lib_a) as f:
    text = f.read()
text = text.replace("src_compile() {", "src_compile() {\n\twhile [[ -e %s ]]; do sleep 0.2; done" % gate, 1)
if gate not in text:  # the kit's lib-a has no src_compile of its own
    text += "\nsrc_compile() {\n\twhile [[ -e %s ]]; do sleep 0.2; done\n\tdefault\n}\n" % gate
write(lib_a, text)

# --- the client computes the plan with the real emerge.
client = os.path.join(T, "client")
run([os.path.join(REALPORTAGE, "realportage-prefix"), client, "--repo", repo, "--world", "cat/viewer", "--use", "ssl"])
pretend = run([os.path.join(client, "bin", "emerge"), "--pretend", "--verbose", "--update", "--deep", "--newuse",
               "@world"])
write(os.path.join(T, "pretend.txt"), pretend)
plan = json.loads(run([SWARM, "portage", "plan", "--emerge-output", os.path.join(T, "pretend.txt"), "--repo", repo]))
cpvs = sorted(p["cpv"] for p in plan["packages"])
sw.check(cpvs == ["cat/lib-a-1", "cat/viewer-1"], f"the plan is lib-a and viewer, which needs it with USE=ssl ({cpvs})")
viewer = next(p for p in plan["packages"] if p["cpv"] == "cat/viewer-1")
sw.check("ssl" in viewer["use"], f"the plan builds viewer with USE=ssl ({viewer['use']})")

# --- the drone's own system: its package.use contradicts the plan, its binrepos.conf is a file.
drone_root = os.path.join(T, "drone")
run([os.path.join(REALPORTAGE, "realportage-prefix"), drone_root, "--repo", repo, "--package-use", "cat/viewer -ssl"])
write(os.path.join(drone_root, "etc", "portage", "binrepos.conf"),
      "[old-binhost]\nsync-uri = http://127.0.0.1:9/never\npriority = 1\n")
vdb = os.path.join(drone_root, "var", "db", "pkg")
os.makedirs(vdb, exist_ok=True)
vdb_before = tree_snapshot(vdb)
share_before = sorted(os.listdir(os.path.join(drone_root, "usr", "share")))

orch = sw.start_orch("orch")
token = sw.enroll(orch, "d1")
sw.submit(orch, plan)
spool = os.path.join(T, "spool")
drone_argv = [SWARM, "drone", "--url", orch.url, "--name", "d1", "--token-file", sw.token_file(token), "--slots", "1", "--spool", spool,
              "--emerge", os.path.join(drone_root, "bin", "emerge"), "--portage-configroot", drone_root,
              "--repo-dir", repo, "--min-free-disk", "1M"]

write(gate, "held\n")
drone = sw.spawn("drone-d1", drone_argv)
drone.wait_for_line(r"drone d1 ready \(1 slots, build root isolated\)", timeout=120)


def held_lease():
    """The lease dir of lib-a once its emerge is in src_compile (held by the gate)."""
    for state_path in glob.glob(os.path.join(spool, "leases", "*", "state.json")):
        lease_dir = os.path.dirname(state_path)
        with open(state_path) as f:
            if json.load(f)["lease"]["cpv"] != "cat/lib-a-1":
                continue
        record = os.path.join(lease_dir, "emerge.pgid")
        log = os.path.join(lease_dir, "build.log")
        if os.path.exists(record) and os.path.exists(log) and "Compiling source" in open(log, errors="replace").read():
            return lease_dir
    return None


lease_dir = sw.wait_until(held_lease, timeout=400, what="lib-a's emerge compiling in its build root")
with open(os.path.join(lease_dir, "emerge.pgid")) as f:
    pgid = int(f.read().split()[0])
sw.check(len(group_members(pgid)) > 0, f"lib-a's emerge runs (process group {pgid})")

# SIGKILL to the drone alone: its emerge, in a process group of its own, goes on.
os.kill(drone.popen.pid, signal.SIGKILL)
drone.popen.wait(timeout=30)
sw.check(len(group_members(pgid)) > 0, "the killed drone's emerge is still running")
# What a build killed in its package phase leaves: the empty file Portage allocates.
half_written = os.path.join(spool, "pkgdir", "cat", "lib-a", "lib-a-1-9.gpkg.tar")
write(half_written, "")

restarted = sw.spawn("drone-d1+", drone_argv)
restarted.wait_for_line(r"drone d1 ready", timeout=120)
sw.check(group_members(pgid) == [], "the restarted drone ended the leftover emerge before it was ready")
lines = restarted.output()
ended = [i for i, line in enumerate(lines) if "ended the emerge a previous run left running" in line]
sw.check(len(ended) == 1 and f"process group {pgid}" in lines[ended[0]], f"it says so ({lines[ended[0]] if ended else None})")
sw.check(not os.path.exists(half_written), "the half-written package file is gone")
os.remove(gate)

sw.wait_until(lambda: sw.status(orch)["counts"].get("received", 0) == 2, timeout=500, what="every package received",
              interval=0.5)
building = [i for i, line in enumerate(restarted.output()) if "building cat/lib-a-1" in line]
sw.check(building and ended and ended[0] < building[0],
         "lib-a was built again only after the leftover emerge had ended")

check_staging(sw, orch, plan)
staged = glob.glob(os.path.join(orch.data_dir, "staging", "cat", "viewer", "viewer-1-*.gpkg.tar"))
code, report = gpkg_report(staged[0], "cat/viewer-1") if staged else (1, None)
use = ((report or {}).get("metadata") or {}).get("USE", "").split()
sw.check(code == 0 and "ssl" in use, f"viewer was built with the plan's USE=ssl despite the drone's package.use ({use})")
sw.check(tree_snapshot(vdb) == vdb_before, "the drone's own VDB is exactly what it was")
sw.check(sorted(os.listdir(os.path.join(drone_root, "usr", "share"))) == share_before,
         "nothing was installed into the drone's own prefix")
with open(os.path.join(drone_root, "etc", "portage", "binrepos.conf")) as f:
    sw.check(f.read().startswith("[old-binhost]"), "the drone's binrepos.conf file is untouched")

packages_file = os.path.join(spool, "pkgdir", "Packages")
listed = []
if os.path.exists(packages_file):
    with open(packages_file) as f:
        listed = [line.split(":", 1)[1].strip() for line in f if line.startswith("PATH:")]
missing = [p for p in listed if not os.path.exists(os.path.join(spool, "pkgdir", p))]
sw.check(not missing, f"the spool's Packages lists only files that are there (missing: {missing})")
sw.check(not glob.glob(os.path.join(spool, "roots", "lease-*")), "no build root is left in the spool")
sw.check(http("GET", orch.url + "/healthz").status == 200, "the orchestrator is healthy")
sw.finish()
