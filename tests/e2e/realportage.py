"""Helpers of the end-to-end tests that run the REAL Portage (../shared/realportage, see its
README): locating the kit (or skipping), prefixes, snapshots of a VDB, the swarm test
repository (tests/data/realportage-repo) and a client's build profile as `portageq` reports it.

    kit = realportage.kit_or_skip()           # exits 0 with "skip: …" without the kit or root
    repo = realportage.copy_repo(T)           # tests/data/realportage-repo, copied (egencache writes into it)
    realportage.prefix(kit, dir, repo, "--use", "ssl")
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
TEST_REPO = os.path.join(REPO_ROOT, "tests", "data", "realportage-repo")

# What portage/build_profile.cpp captures (profile_variables, binary_features, profile_files).
PROFILE_VARIABLES = ["USE", "USE_EXPAND", "CFLAGS", "CXXFLAGS", "FCFLAGS", "FFLAGS", "LDFLAGS", "RUSTFLAGS", "CHOST",
                     "CBUILD", "ACCEPT_KEYWORDS", "ACCEPT_LICENSE", "FEATURES", "INSTALL_MASK", "PKG_INSTALL_MASK",
                     "ARCH", "ELIBC", "KERNEL"]
BINARY_FEATURES = ["binpkg-docompress", "binpkg-dostrip", "compressdebug", "installsources", "nodoc", "noinfo",
                   "noman", "nostrip", "splitdebug"]
PROFILE_FILES = ["package.use", "package.accept_keywords", "package.keywords", "package.env", "env",
                 "package.license", "package.mask", "package.unmask"]


def kit_or_skip(need_root=True):
    """The realportage kit's directory: SWARM_REALPORTAGE, else <repo>/../shared/realportage.
    Without it (or without root when `need_root`), prints why and exits 0."""
    kit = os.environ.get("SWARM_REALPORTAGE") or os.path.join(REPO_ROOT, "..", "shared", "realportage")
    if not os.path.isfile(os.path.join(kit, "realportage-prefix")):
        print(f"skip: the real Portage kit is not at {os.path.abspath(kit)} (set SWARM_REALPORTAGE)")
        sys.exit(0)
    if need_root and os.geteuid() != 0:
        print("skip: isolated build roots and the real Portage need root")
        sys.exit(0)
    return os.path.abspath(kit)


def run(argv, env=None, check=True, timeout=900):
    """Runs argv; returns its stdout (raises with the output's end when it fails and `check`)."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv[:4])} … failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result if not check else result.stdout


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def copy_repo(dest_parent, name="repo"):
    """A private copy of tests/data/realportage-repo (realportage-prefix writes its md5-cache)."""
    dest = os.path.join(dest_parent, name)
    shutil.copytree(TEST_REPO, dest)
    return dest


def prefix(kit, directory, repo, *options):
    """realportage-prefix DIRECTORY --repo REPO OPTIONS…"""
    run([os.path.join(kit, "realportage-prefix"), directory, "--repo", repo, *options])
    return directory


def emerge(prefix_dir, *args, env=None, check=True):
    return run([os.path.join(prefix_dir, "bin", "emerge"), *args], env=env, check=check)


def tree_snapshot(root):
    """Every file below root with its bytes, and every directory: what a VDB holds."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            out[os.path.relpath(os.path.join(dirpath, name), root) + "/"] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def vdb_cpvs(prefix_dir):
    """The CAT/PF installed in a prefix (its var/db/pkg)."""
    vdb = os.path.join(prefix_dir, "var", "db", "pkg")
    out = []
    if os.path.isdir(vdb):
        for category in sorted(os.listdir(vdb)):
            for pf in sorted(os.listdir(os.path.join(vdb, category))):
                if not pf.startswith("-MERGING-"):
                    out.append(f"{category}/{pf}")
    return out


def _envvars(prefix_dir, names):
    """`portageq envvar -v NAMES` of the prefix: name → value (shell quotes removed)."""
    import shlex
    # portageq exits 1 when one of the variables is empty, and still prints every one.
    result = run([os.path.join(prefix_dir, "bin", "portageq"), "envvar", "-v", *names], check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise AssertionError(f"portageq envvar failed ({result.returncode}): {result.stderr[-2000:]}")
    text = result.stdout
    out = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name:
            words = shlex.split(value) if value else [""]
            out[name] = " ".join(words) if len(words) != 1 else words[0]
    return out


def _read_entry(etc, entry, files):
    path = os.path.join(etc, entry)
    if os.path.isfile(path):
        with open(path) as f:
            files[entry] = f.read()
        return
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if not (name.startswith(".") or name.endswith("~") or name.endswith(".bak")):
                found.append(os.path.join(dirpath, name))
    for file in sorted(found):
        with open(file) as f:
            files[entry + "/" + os.path.relpath(file, path)] = f.read()


def capture_build_profile(prefix_dir):
    """The prefix's build profile in the JSON form the orchestrator stores
    (portage/build_profile.cpp build_profile_to_json), read the way capture_build_profile reads
    it: `portageq envvar` for the settings, the make.profile target, the package.* files and the
    repositories with their tree timestamps."""
    settings = _envvars(prefix_dir, PROFILE_VARIABLES)
    expand = settings.get("USE_EXPAND", "").split()
    if expand:
        settings.update(_envvars(prefix_dir, expand))
    settings["FEATURES"] = " ".join(sorted(f for f in settings.get("FEATURES", "").split() if f in BINARY_FEATURES))
    settings = {k: v for k, v in settings.items() if v}
    portageq = os.path.join(prefix_dir, "bin", "portageq")
    repositories, locations = [], {}
    eroot = _envvars(prefix_dir, ["EROOT"])["EROOT"]  # a prefix's portageq takes its own EROOT, not "/"
    for name in run([portageq, "get_repos", eroot]).split():
        location = run([portageq, "get_repo_path", eroot, name]).strip()
        locations[name] = location
        stamp = ""
        try:
            with open(os.path.join(location, "metadata", "timestamp.chk")) as f:
                stamp = f.readline().strip()
        except OSError:
            pass
        repositories.append({"name": name, "timestamp": stamp})
    repositories.sort(key=lambda r: r["name"])
    etc = os.path.join(prefix_dir, "etc", "portage")
    target = os.path.realpath(os.path.join(etc, "make.profile"))
    make_profile = None
    for name, location in locations.items():
        profiles = os.path.realpath(os.path.join(location, "profiles"))
        if target.startswith(profiles + os.sep):
            make_profile = {"repository": name, "path": os.path.relpath(target, profiles)}
            break
    if make_profile is None:
        raise AssertionError(f"make.profile {target} is in no repository's profiles/")
    files = {}
    for entry in PROFILE_FILES:
        _read_entry(etc, entry, files)
    return {"settings": settings, "make_profile": make_profile, "files": files, "repositories": repositories}
