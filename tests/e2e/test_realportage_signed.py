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
  either is installed;
- over https (issue 10): a gateway serving TLS with a throw-away CA fronts the orchestrator; a
  client set up by `swarm client setup --gateway https://… --ca CA` (the CA installed into the
  system's trust store, in a private mount namespace over throw-away copies of it) installs the
  release with the real emerge through the gateway; one without the CA in its store is refused
  by Portage (certificate verify failed) and installs nothing. The host's store is left as it was.

Needs root, gpg and ../shared/realportage (or SWARM_REALPORTAGE); without them it says why and
passes. The https part also needs unshare, openssl and update-ca-certificates (else it says why and
is left out)."""

import hashlib
import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import realportage as rp  # noqa: E402

KIT = rp.kit_or_skip()
if shutil.which("gpg") is None or shutil.which("zstd") is None:
    print("skip: gpg and zstd are needed")
    sys.exit(0)

import harness  # noqa: E402
from harness import SWARM, Swarm, http  # noqa: E402
from tls_certs import make_ca, make_server_cert  # noqa: E402
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

# --- the same release over https, through a gateway with a throw-away CA (issue 10) --------------
TRUST_STORE = ["/etc/ssl/certs", "/usr/local/share/ca-certificates", "/etc/ca-certificates/update.d"]


def tls_skip_reason():
    for tool in ("unshare", "openssl", "update-ca-certificates"):
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None:
            return f"{tool} is missing"
    for directory in TRUST_STORE:
        if not os.path.isdir(directory):
            return f"{directory} does not exist (the client's trust store is mounted over it)"
    return None


def host_trust_state():
    """What this test must leave as it found it: the host's CA bundle and trust anchors."""
    state = {}
    for directory in TRUST_STORE[:2]:
        state[directory] = sorted(os.listdir(directory))
    with open("/etc/ssl/certs/ca-certificates.crt", "rb") as f:
        state["bundle"] = hashlib.sha256(f.read()).hexdigest()
    return state


def trust_view(name):
    """Throw-away copies of the trust store, bind-mounted over the real one in the client's
    private mount namespace: update-ca-certificates writes there (hooks: none)."""
    base = os.path.join(T, "trust-" + name)
    binds = []
    for i, directory in enumerate(TRUST_STORE):
        copy = os.path.join(base, str(i))
        if i < 2:
            shutil.copytree(directory, copy, symlinks=True)
        else:
            os.makedirs(copy)
        binds.append((copy, directory))
    return binds


def gateway_production_gets(url, context):
    """GETs of the gateway's binhost files answered 200, from its /metrics."""
    with urllib.request.urlopen(url + "/metrics", context=context, timeout=30) as response:
        text = response.read().decode()
    total = 0
    for line in text.splitlines():
        if (line.startswith("swarm_http_requests_total{") and 'route="/production/.*"' in line
                and 'method="GET"' in line and 'code="200"' in line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def tls_client(name, gateway_url, ca, binds, *extra):
    """A fresh prefix set up by `swarm client setup --gateway https://… --ca CA` in the private
    mount namespace of `binds`; returns it and the setup's --json answer."""
    prefix_dir = rp.prefix(KIT, os.path.join(T, name), repo, "--world", *WORLD)
    conf = os.path.join(prefix_dir, "etc", "portage", "binrepos.conf", "swarm.conf")
    setup = run(*harness.private_mounts_argv(binds, [
        SWARM, "client", "setup", "--gateway", gateway_url, "--ca", ca, "--binrepos-conf", conf, "--gnupg-home",
        os.path.join(prefix_dir, "etc", "portage", "gnupg"), "--json", *extra]))
    reply = json.loads(setup.stdout) if setup.returncode == 0 else {}
    sw.check(setup.returncode == 0 and reply.get("keys") == [fingerprint],
             f"{name}: client setup over https ({setup.returncode} {setup.stderr[-400:]})")
    with open(conf) as f:
        sync = [line for line in f.read().split("\n") if line.startswith("sync-uri")]
    sw.check(sync == [f"sync-uri = {gateway_url}/production"],
             f"{name}: binrepos.conf points Portage at the gateway over https ({sync})")
    return prefix_dir, reply


def emerge_in(binds, prefix_dir):
    return run(*harness.private_mounts_argv(binds, [os.path.join(prefix_dir, "bin", "emerge"), "--getbinpkgonly",
                                                     "--update", "--deep", "--newuse", "@world"]))


tls_skip = tls_skip_reason()
if tls_skip:
    print(f"skip (the https client part): {tls_skip}")
else:
    host_before = host_trust_state()
    pki = os.path.join(T, "pki")
    os.makedirs(pki)
    ca = make_ca(pki, "ca")
    cert, key = make_server_cert(pki, "ca")
    gateway_proc = sw.spawn("gateway", [SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", orch.url,
                                        "--health-interval", "0.3s", "--tls-cert", cert, "--tls-key", key])
    gateway_url = "https://127.0.0.1:{}".format(
        gateway_proc.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
    tls = ssl.create_default_context(cafile=ca)

    def gateway_ready():
        with urllib.request.urlopen(gateway_url + "/readyz", context=tls, timeout=10) as response:
            return response.status == 200
    sw.wait_until(gateway_ready, 30, "the https gateway is ready")

    # A client whose system store does not trust the CA (--ca-store-dir ''): the swarm verbs
    # verify the gateway with --ca, but Portage refuses its certificate.
    untrusted_binds = trust_view("untrusted")
    untrusted, reply = tls_client("tls-untrusted", gateway_url, ca, untrusted_binds, "--ca-store-dir", "")
    sw.check(reply.get("ca_anchor", "missing") is None, f"--ca-store-dir '' installs no CA ({reply.get('ca_anchor')})")
    before = gateway_production_gets(gateway_url, tls)
    refused = emerge_in(untrusted_binds, untrusted)
    said = refused.stdout + refused.stderr
    sw.check(rp.vdb_cpvs(untrusted) == [] and "CERTIFICATE_VERIFY_FAILED" in said
             and f"Error fetching binhost package info from '{gateway_url}/production'" in said,
             f"Portage refuses the gateway's certificate without the CA; nothing installed ({said[-1500:]})")
    sw.check(gateway_production_gets(gateway_url, tls) == before,
             "no binhost file was served to the client that refused the certificate")

    # A client set up with the CA: it goes into the (throw-away) system store, Portage trusts it.
    trusted_binds = trust_view("trusted")
    trusted, reply = tls_client("tls-trusted", gateway_url, ca, trusted_binds)
    anchor = reply.get("ca_anchor") or {}
    anchor_copy = os.path.join(trusted_binds[1][0], "swarm-127.0.0.1.crt")
    sw.check(anchor.get("path") == "/usr/local/share/ca-certificates/swarm-127.0.0.1.crt" and anchor.get("changed")
             and anchor.get("command", "").endswith("update-ca-certificates") and os.path.isfile(anchor_copy)
             and oct(os.stat(anchor_copy).st_mode & 0o777) == "0o644",
             f"client setup installs the CA as a trust anchor and runs update-ca-certificates ({anchor})")
    with open(ca) as f:
        ca_body = "".join(f.read().split("-----")[2].split())
    with open(os.path.join(trusted_binds[0][0], "ca-certificates.crt")) as f:
        sw.check(ca_body in "".join(f.read().split()), "the CA is in the (throw-away) system bundle")
    _, again = tls_client("tls-trusted-again", gateway_url, ca, trusted_binds)
    sw.check((again.get("ca_anchor") or {}).get("changed") is False,
             f"setting up again finds the CA installed ({again.get('ca_anchor')})")
    before = gateway_production_gets(gateway_url, tls)
    installed = emerge_in(trusted_binds, trusted)
    sw.check(installed.returncode == 0 and rp.vdb_cpvs(trusted) == EXPECTED,
             f"a client trusting the CA installs the signed release over https ({rp.vdb_cpvs(trusted)} "
             f"{installed.stdout[-1500:]}{installed.stderr[-800:]})")
    served = gateway_production_gets(gateway_url, tls) - before
    sw.check(served >= 1 + len(EXPECTED),
             f"the index and both packages came through the gateway over TLS ({served} GETs answered)")
    sw.check(host_trust_state() == host_before, "the host's trust store is as it was")
    gateway_proc.signal(signal.SIGTERM)
    gateway_proc.wait(60)

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
