#!/usr/bin/env python3
"""The signed binhost (docs/signing.md) with fake drones and a throw-away ed25519 key:
- `swarm key create/show/export` on the orchestrator's data dir (no passphrase, short GnuPG home);
- every GPKG staged by the orchestrator carries Portage's signatures (an armoured .sig after each
  member, a clear-signed Manifest listing them), verified with plain `gpg --verify` against the
  exported key, and the Packages index describes the signed file (SIZE, SHA-256 of the record);
- GET /api/v1/key serves the public key; `swarm client setup` imports it, ultimately trusted, into
  the given gnupg home and writes `verify-signature = true`;
- a rotation: a new key signs, both are exported; once the old key is retired, the packages it
  signed no longer verify: `swarm verify` reports bad-signature and finalize refuses them;
- no gpg-agent is left running after the orchestrator and the verbs stop.
Skips when gpg is not installed."""

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
from harness import SWARM, Swarm, http  # noqa: E402
from release_helpers import check_binhost, cli_json, flat_plan  # noqa: E402


def run(*argv, timeout=120):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def agents_for(directory):
    """gpg-agent processes whose command line names a path under `directory`."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and any(directory.encode() in a for a in argv):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def gpg_verify(home, *files):
    result = run("gpg", "--homedir", home, "--batch", "--no-tty", "--status-fd", "1", "--verify", *files)
    return result.returncode == 0 and "[GNUPG:] GOODSIG " in result.stdout and "[GNUPG:] VALIDSIG " in result.stdout


def members(path):
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def main():
    if shutil.which("gpg") is None:
        print("SKIP: gpg is not installed")
        sys.exit(0)
    sw = Swarm("signing")
    data_dir = os.path.join(sw.dir, "orch")

    # The key, made before the orchestrator starts.
    created = run(SWARM, "key", "create", "--name", "Test Binhost", "--email", "binhost@example.invalid",
                  "--data-dir", data_dir, "--json")
    key = json.loads(created.stdout) if created.returncode == 0 else {}
    sw.check(created.returncode == 0 and key.get("algorithm") == "ed25519" and len(key.get("fingerprint", "")) == 40
             and key.get("active") and key.get("expires") is None and key.get("secret"),
             f"key create makes an ed25519 signing key without expiry ({created.stdout[:300]} {created.stderr[:300]})")
    fingerprint = key.get("fingerprint", "")
    home = os.path.join(data_dir, "gnupg")
    sw.check(os.stat(home).st_mode & 0o777 == 0o700, "the binhost's GnuPG home is 0700")
    again = run(SWARM, "key", "create", "--name", "X", "--email", "x@example.invalid", "--data-dir", data_dir)
    sw.check(again.returncode == 2 and again.stderr.startswith("swarm:") and "--rotate" in again.stderr,
             f"a second key needs --rotate ({again.stderr.strip()})")
    bad = run(SWARM, "key", "create", "--name", "X", "--email", "not-an-email", "--data-dir", data_dir, "--rotate")
    sw.check(bad.returncode != 0 and bad.stderr.startswith("swarm:"), f"a bad email is refused ({bad.stderr.strip()})")
    shown = run(SWARM, "key", "show", "--data-dir", data_dir)
    sw.check(shown.returncode == 0 and fingerprint in shown.stdout and "Test Binhost <binhost@example.invalid>"
             in shown.stdout and "expires:   never" in shown.stdout, f"key show ({shown.stdout[:400]})")
    exported = os.path.join(sw.dir, "binhost.asc")
    out = run(SWARM, "key", "export", "--data-dir", data_dir, "-o", exported)
    stdout_export = run(SWARM, "key", "export", "--data-dir", data_dir)
    with open(exported) as f:
        exported_text = f.read()
    sw.check(out.returncode == 0 and exported_text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----") and
             stdout_export.stdout == exported_text, "key export writes the armoured public key (file or stdout)")
    sw.check("PRIVATE" not in exported_text, "the export holds no secret key")
    sw.check(not agents_for(sw.dir), "no gpg-agent is left after the key verbs")

    # A verifying home that knows only the public key.
    verify_home = os.path.join(sw.dir, "v")
    os.makedirs(verify_home, mode=0o700)
    run("gpg", "--homedir", verify_home, "--batch", "--import", exported)
    run("gpgconf", "--homedir", verify_home, "--kill", "gpg-agent")  # gpg starts one for a new keyring

    # Build three packages with a fake drone: every staged GPKG is signed by the orchestrator.
    orch = sw.start_orch("orch", data_dir=data_dir)
    cpvs = ["dev-libs/lib-1", "app-misc/a-1", "app-misc/b-1"]
    plan = flat_plan(cpvs, edges=[("app-misc/a-1", "dev-libs/lib-1")])
    plan_file = sw.write_plan(plan)
    sw.submit(orch, plan)
    sw.start_drone(orch.url, "d1", sw.enroll(orch, "d1"), plan_file, slots=2, time_scale=0.001)
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 3, 60, "three packages received")

    index = http("GET", f"{orch.url}/api/v1/packages", token=orch.admin_token).json()["packages"]
    for package in index:
        path = os.path.join(data_dir, "staging", package["artifact"]["path"])
        names = [name.split("/", 1)[1] for name, _ in members(path)]
        comp = names[1][len("metadata.tar"):]
        sw.check(names == ["gpkg-1", "metadata.tar" + comp, "metadata.tar" + comp + ".sig", "image.tar" + comp,
                           "image.tar" + comp + ".sig", "Manifest"], f"{package['cpv']}: Portage's signed layout {names}")
        unpacked = os.path.join(sw.dir, "unpacked", package["cpv"].replace("/", "_"))
        os.makedirs(unpacked)
        for name, data in members(path):
            with open(os.path.join(unpacked, name.split("/", 1)[1]), "wb") as f:
                f.write(data)
        ok = all(gpg_verify(verify_home, os.path.join(unpacked, m + ".sig"), os.path.join(unpacked, m))
                 for m in ("metadata.tar" + comp, "image.tar" + comp))
        with open(os.path.join(unpacked, "Manifest")) as f:
            manifest = f.read()
        sw.check(ok and manifest.startswith("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n") and
                 gpg_verify(verify_home, os.path.join(unpacked, "Manifest")) and ".sig " in manifest,
                 f"{package['cpv']}: plain gpg --verify accepts every signature and the clear-signed Manifest")
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        sw.check(package["artifact"].get("sha256") == digest, f"{package['cpv']}: the record is the signed file's")

    # Verify, release, and the public binhost matches the signed files.
    code, report = cli_json(orch, "verify")
    sw.check(code == 0 and report["pass"] and not report["findings"], f"verify passes ({report.get('findings')})")
    code, release = cli_json(orch, "finalize", "--yes")
    sw.check(code == 0, f"finalize ({release})")
    header, packages, problems = check_binhost(orch.url + "/production")
    sw.check(not problems and len(packages) == 3, f"production lists the signed files with their sizes ({problems})")

    # The key over HTTP, and client setup.
    served = http("GET", orch.url + "/api/v1/key")
    sw.check(served.status == 200 and served.body.decode() == exported_text, "GET /api/v1/key serves the public key")
    client_home = os.path.join(sw.dir, "client", "etc", "portage", "gnupg")
    conf = os.path.join(sw.dir, "client", "etc", "portage", "binrepos.conf", "swarm.conf")
    setup = run(SWARM, "client", "setup", "--gateway", orch.url, "--binrepos-conf", conf, "--gnupg-home", client_home,
                "--json")
    reply = json.loads(setup.stdout) if setup.returncode == 0 else {}
    with open(conf) if os.path.exists(conf) else io.StringIO("") as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    sw.check(setup.returncode == 0 and reply.get("verify_signature") and reply.get("keys") == [fingerprint] and
             "verify-signature = true" in lines, f"client setup turns verification on ({lines} {setup.stderr[:300]})")
    listed = run("gpg", "--homedir", client_home, "--batch", "--with-colons", "--list-keys")
    validity = [line.split(":")[1] for line in listed.stdout.splitlines() if line.startswith("pub:")]
    sw.check(validity == ["u"], f"the client's Portage home trusts the binhost key ultimately ({validity})")
    sw.check(os.stat(client_home).st_mode & 0o777 == 0o755 and
             os.stat(os.path.join(client_home, "pubring.kbx")).st_mode & 0o044 == 0o044,
             "Portage's home is readable by the user it verifies as (nobody)")

    # Rotation: a new key signs from now on; both are exported; the old one retired.
    rotated = run(SWARM, "key", "create", "--name", "Test Binhost 2", "--email", "binhost@example.invalid",
                  "--data-dir", data_dir, "--rotate", "--json")
    new_key = json.loads(rotated.stdout) if rotated.returncode == 0 else {}
    sw.check(new_key.get("active") and new_key.get("fingerprint") not in ("", None, fingerprint),
             f"key create --rotate adds an active key ({rotated.stderr[:200]})")
    shown = json.loads(run(SWARM, "key", "show", "--data-dir", data_dir, "--json").stdout)
    sw.check([k["active"] for k in shown["keys"] if k["fingerprint"] == fingerprint] == [False] and
             len(shown["keys"]) == 2, "key show --json lists both keys, the new one active")
    both = http("GET", orch.url + "/api/v1/key").body.decode()
    sw.check(both.count("-----BEGIN PGP PUBLIC KEY BLOCK-----") == 1 and len(both) > len(exported_text),
             "during the overlap the served key block holds both keys")
    refused = run(SWARM, "key", "retire", new_key.get("fingerprint", "x" * 40), "--data-dir", data_dir)
    sw.check(refused.returncode != 0 and "active" in refused.stderr, "the active key cannot be retired")
    retired = run(SWARM, "key", "retire", fingerprint, "--data-dir", data_dir)
    sw.check(retired.returncode == 0, f"the old key is retired ({retired.stderr.strip()})")
    code, report = cli_json(orch, "verify")
    kinds = sorted({(f["kind"], f["package"]) for f in report["findings"]})
    sw.check(code == 1 and not report["pass"] and kinds == sorted(("bad-signature", c) for c in cpvs),
             f"packages signed by the retired key fail verify as bad-signature ({kinds})")
    refused_release = orch.api("POST", "/api/v1/releases/finalize", {})
    sw.check(refused_release.status == 409 and refused_release.json().get("reason") == "risk",
             f"finalize refuses to publish packages whose signatures do not verify ({refused_release.body[:200]})")

    # Stopping the orchestrator ends its gpg-agent.
    orch.proc.signal(signal.SIGTERM)
    orch.proc.wait(30)
    sw.check(not agents_for(sw.dir), f"no gpg-agent outlives the orchestrator ({agents_for(sw.dir)})")
    sw.finish()


if __name__ == "__main__":
    main()
