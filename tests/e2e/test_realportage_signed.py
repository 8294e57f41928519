#!/usr/bin/env python3
"""A signed binhost with the REAL Portage (../shared/realportage), kept tiny (two packages):

- the orchestrator has a throw-away ed25519 key (`swarm key create`); a real `swarm drone` builds
  sw/tls-1 and sw/spell-1 with the real emerge; the orchestrator signs each upload; verify and
  finalize publish them;
- a fresh client prefix set up by `swarm client setup` (the binhost's key in its Portage gnupg
  home, `verify-signature = true` in binrepos.conf) installs both from production, Portage
  verifying every signature (as `nobody`, as it does when root);
- a binhost serving the same packages changed after signing, with an index consistent with the
  changed files, is refused by Portage: spell re-packed with other content and re-signed with a
  foreign key, tls with one byte of its image changed under the original signatures. Nothing of
  either is installed.

Needs root, gpg and ../shared/realportage (or SWARM_REALPORTAGE); without them it says why and
passes."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realportage as rp  # noqa: E402

KIT = rp.kit_or_skip()
if shutil.which("gpg") is None or shutil.which("zstd") is None:
    print("skip: gpg and zstd are needed")
    sys.exit(0)

from harness import SWARM, Swarm, http  # noqa: E402
from release_helpers import parse_packages  # noqa: E402

WORLD = ["sw/tls", "sw/spell"]
EXPECTED = ["sw/spell-1", "sw/tls-1"]

sw = Swarm("rp-signed")
T = sw.dir
os.chmod(T, 0o755)  # Portage runs gpg as nobody: it must reach the prefixes' gnupg homes
repo = rp.copy_repo(T)


def run(*argv, env=None, timeout=900):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


# --- the plan of a client's @world, and the binhost's key -----------------------------------------
client = rp.prefix(KIT, os.path.join(T, "client"), repo, "--world", *WORLD)
pretend_file = os.path.join(T, "pretend.txt")
rp.write(pretend_file, rp.emerge(client, "--pretend", "--verbose", "--update", "--deep", "--newuse", "@world"))
plan = json.loads(rp.run([SWARM, "portage", "plan", "--emerge-output", pretend_file, "--repo", repo]))
sw.check(sorted(p["cpv"] for p in plan["packages"]) == EXPECTED, f"the plan is tls and spell ({plan['packages']})")
build_profile = rp.capture_build_profile(client)

data_dir = os.path.join(T, "orch")
created = run(SWARM, "key", "create", "--name", "Test Binhost", "--email", "binhost@example.invalid",
              "--data-dir", data_dir, "--json")
sw.check(created.returncode == 0, f"swarm key create ({created.stderr[-300:]})")
fingerprint = json.loads(created.stdout)["fingerprint"] if created.returncode == 0 else ""
orch = sw.start_orch("orch", data_dir=data_dir)
submitted = orch.api("POST", "/api/v1/plan", {"plan": plan, "mode": "replace", "build_profile": build_profile})
sw.check(submitted.status == 200, f"plan submitted ({submitted.body[:300]})")

# --- a real drone builds; the orchestrator signs -------------------------------------------------
drone_prefix = rp.prefix(KIT, os.path.join(T, "d1"), repo)
drone = sw.spawn("drone-d1", [SWARM, "drone", "--url", orch.url, "--name", "d1", "--token-file",
                              sw.token_file(sw.enroll(orch, "d1")),
                              "--slots", "1", "--spool", os.path.join(T, "spool-d1"), "--emerge",
                              os.path.join(drone_prefix, "bin", "emerge"), "--portage-configroot", drone_prefix,
                              "--repo-dir", repo, "--min-free-disk", "1M"])
sw.wait_until(lambda: sw.status(orch)["counts"].get("received", 0) == 2, timeout=1800, what="both packages received",
              interval=1)
verify = run(SWARM, "verify", "--url", orch.url, "--token-file", orch.admin_token_file, "--json")
sw.check(verify.returncode == 0, f"verify passes: every package's signatures verify ({verify.stdout[-400:]})")
final = run(SWARM, "finalize", "--url", orch.url, "--token-file", orch.admin_token_file, "--yes", "--json")
sw.check(final.returncode == 0, f"finalize publishes ({final.stdout[-300:]}{final.stderr[-300:]})")


def setup_client(name, binhost=None):
    """A prefix set up by `swarm client setup` (key + binrepos.conf); binhost replaces the sync-uri."""
    prefix_dir = rp.prefix(KIT, os.path.join(T, name), repo, "--world", *WORLD)
    conf = os.path.join(prefix_dir, "etc", "portage", "binrepos.conf", "swarm.conf")
    setup = run(SWARM, "client", "setup", "--gateway", orch.url, "--binrepos-conf", conf, "--gnupg-home",
                os.path.join(prefix_dir, "etc", "portage", "gnupg"), "--json")
    reply = json.loads(setup.stdout) if setup.returncode == 0 else {}
    sw.check(reply.get("verify_signature") and reply.get("keys") == [fingerprint],
             f"{name}: client setup installs the binhost key ({setup.stderr[-300:]})")
    if binhost:
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write("\n".join(f"sync-uri = {binhost}" if line.startswith("sync-uri") else line
                              for line in text.split("\n")))
    with open(conf) as f:
        sw.check("verify-signature = true" in f.read(), f"{name}: binrepos.conf verifies signatures")
    return prefix_dir


# --- a client with verification on installs the signed release ------------------------------------
good = setup_client("good")
install = rp.emerge(good, "--getbinpkgonly", "--update", "--deep", "--newuse", "@world", check=False)
sw.check(install.returncode == 0 and rp.vdb_cpvs(good) == EXPECTED,
         f"a verifying client installs the signed packages ({rp.vdb_cpvs(good)} {install.stdout[-1500:]}"
         f"{install.stderr[-800:]})")

# --- packages changed after signing, served with a consistent index ------------------------------
production = os.path.join(data_dir, "production")
evil = os.path.join(T, "evil")
shutil.copytree(production, evil, symlinks=False)
header, packages = parse_packages(open(os.path.join(evil, "Packages")).read())
foreign_home = os.path.join(T, "foreign")
os.makedirs(foreign_home, mode=0o700)
made = run("gpg", "--homedir", foreign_home, "--batch", "--passphrase", "", "--quick-gen-key",
           "Mallory <mallory@example.invalid>", "ed25519", "sign", "never")
sw.check(made.returncode == 0, f"a foreign key ({made.stderr[-200:]})")


def gpg_sign(data, clear):
    mode = "--clear-sign" if clear else "--detach-sign"
    result = subprocess.run(["gpg", "--homedir", foreign_home, "--batch", "--armor", "--digest-algo", "SHA512", mode],
                            input=data, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def manifest_line(name, data):
    return (f"DATA {name} {len(data)} BLAKE2B {hashlib.blake2b(data).hexdigest()} "
            f"SHA512 {hashlib.sha512(data).hexdigest()}\n")


def rewrite(path, change):
    with tarfile.open(path) as tar:
        items = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]
    items = change(items)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def new_content(items):
    """spell: another file content in its image, every signature made anew by the foreign key."""
    by = dict(items)
    directory = items[0][0].split("/")[0]
    image_name = next(n for n, _ in items if n.endswith("image.tar.zst"))
    raw = subprocess.run(["zstd", "-d", "-c"], input=by[image_name], capture_output=True, check=True).stdout
    src, dst = io.BytesIO(raw), io.BytesIO()
    with tarfile.open(fileobj=src) as tin, tarfile.open(fileobj=dst, mode="w", format=tarfile.USTAR_FORMAT) as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read() if member.isfile() else None
            if data is not None:
                data = b"changed after signing\n"
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)
    image = subprocess.run(["zstd", "-q", "-c"], input=dst.getvalue(), capture_output=True, check=True).stdout
    metadata_name = next(n for n, _ in items if n.endswith("metadata.tar.zst"))
    out, manifest = [], ""
    for name, data in ((f"{directory}/gpkg-1", b""), (metadata_name, by[metadata_name]), (image_name, image)):
        out.append((name, data))
        manifest += manifest_line(name.split("/")[1], data)
        if not name.endswith("gpkg-1"):
            sig = gpg_sign(data, False)
            out.append((name + ".sig", sig))
            manifest += manifest_line(name.split("/")[1] + ".sig", sig)
    out.append((f"{directory}/Manifest", gpg_sign(manifest.encode(), True)))
    return out


def flip_image_byte(items):
    """tls: one byte of the image changed; the original signatures and Manifest kept."""
    out = []
    for name, data in items:
        if name.endswith("image.tar.zst"):
            data = data[:40] + bytes([data[40] ^ 0x01]) + data[41:]
        out.append((name, data))
    return out


def index_entry_consistent(text, path):
    """Packages with the block of `path` describing the file as it is now."""
    with open(os.path.join(evil, path), "rb") as f:
        data = f.read()
    digests = {"SIZE": str(len(data)), "MD5": hashlib.md5(data).hexdigest(), "SHA1": hashlib.sha1(data).hexdigest(),
               "SHA256": hashlib.sha256(data).hexdigest(), "BLAKE2B": hashlib.blake2b(data).hexdigest(),
               "SHA512": hashlib.sha512(data).hexdigest()}
    blocks = text.split("\n\n")
    for i, block in enumerate(blocks):
        lines = block.split("\n")
        if f"PATH: {path}" in lines:
            blocks[i] = "\n".join(f"{k}: {digests[k]}" if (k := line.split(":", 1)[0]) in digests else line
                                  for line in lines)
    return "\n\n".join(blocks)


paths = {p["CPV"]: p["PATH"] for p in packages}
index_text = open(os.path.join(evil, "Packages")).read()
for cpv, change in (("sw/spell-1", new_content), ("sw/tls-1", flip_image_byte)):
    target = os.path.join(evil, paths[cpv])
    os.unlink(target)  # production files are hard links into the release: never write through them
    shutil.copyfile(os.path.join(production, paths[cpv]), target)
    rewrite(target, change)
    index_text = index_entry_consistent(index_text, paths[cpv])
with open(os.path.join(evil, "Packages"), "w") as f:
    f.write(index_text)
for name in ("Packages.gz",):
    if os.path.exists(os.path.join(evil, name)):
        os.unlink(os.path.join(evil, name))
server = sw.spawn("evil-binhost", [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                                   evil, "0"])
port = int(server.wait_for_line(r"port (\d+)").group(1))
evil_url = f"http://127.0.0.1:{port}"
sw.wait_until(lambda: http("GET", evil_url + "/Packages").status == 200, 30, "the changed binhost answers")

for cpv, why, expect in (("sw/spell-1", "re-signed with a foreign key", "GnuPG verification failed"),
                         ("sw/tls-1", "image changed under its signatures", "GnuPG verification failed")):
    victim = setup_client("victim-" + cpv.split("/")[1].split("-")[0], evil_url)
    attempt = rp.emerge(victim, "--getbinpkgonly", "--oneshot", "=" + cpv, check=False)
    said = attempt.stdout + attempt.stderr
    sw.check(attempt.returncode != 0 and rp.vdb_cpvs(victim) == [] and expect in said,
             f"Portage refuses {cpv} {why} ({said[-1500:]})")
orch.proc.signal(signal.SIGTERM)  # it stops the gpg-agent its signing started
orch.proc.wait(60)
sw.finish()
