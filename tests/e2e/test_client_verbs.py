"""The client side and where-is-everything: `swarm client setup` writes binrepos.conf for the
binhost the gateway (or an orchestrator) hands out, `swarm client update` runs emerge --pretend,
refuses when Portage would drop a world atom, installs from binaries only, passes a failing
install's exit code through and checks the VDB afterwards, `swarm info` finds gateway, orchestrators,
binhost and data dir; every operator verb has --help; through an HTTPS gateway `client setup --ca`
installs the CA for Portage."""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FAKE_PORTAGEQ, SWARM, Swarm, write_file  # noqa: E402
from tls_certs import make_ca, make_server_cert  # noqa: E402

VERBS = ["fresh", "submit", "queue add", "fix-blocked", "unblock", "reset", "balance", "pause", "resume", "ground",
         "unground", "drones", "logs", "sync-verify", "info", "history", "build-local", "client setup",
         "client update", "client check", "profile show", "profile diff"]


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

    # client update: --pretend first, then the install from binaries only, then the VDB.
    root = os.path.join(sw.dir, "client-root")
    write_file(os.path.join(root, "var", "lib", "portage", "world"), "cat/lib-a\n")
    record = os.path.join(sw.dir, "argv.txt")
    fake = os.path.join(sw.dir, "emerge")
    with open(fake, "w") as f:
        f.write(f"""#!/bin/sh
echo "$*" >> "{record}"
case " $* " in
*" --pretend "*)
  echo "[binary  N g   ] cat/lib-a-1-1::test_repo  10 KiB"
  echo "Total: 1 package (1 new, 1 binary), Size of downloads: 10 KiB"
  if [ -n "$FAKE_DROP" ]; then printf '\\n!!! Ebuilds for the following packages are either all\\n'
    printf "!!! masked or don't exist:\\n%s\\n" "$FAKE_DROP" >&2; fi
  exit 0;;
esac
mkdir -p "{root}/var/db/pkg/cat/lib-a-1"
echo "emerging from the binhost"
exit ${{FAKE_EXIT:-0}}
""")
    os.chmod(fake, 0o755)
    client_env = dict(os.environ, FAKE_PORTAGEQ_ROOT=root)
    update = run("client", "update", "--emerge", fake, "--portageq", FAKE_PORTAGEQ, env=client_env)
    with open(record) as f:
        calls = [line.split() for line in f.read().splitlines()]
    sw.check(calls == [["--pretend", "--verbose", "--update", "--deep", "--newuse", "--getbinpkgonly", "@world"],
                       ["--update", "--deep", "--newuse", "--getbinpkgonly", "@world"]],
             f"client update's emerge calls: --pretend first, then binaries only ({calls})")
    sw.check(update.returncode == 0 and "emerging from the binhost" in update.stdout and
             "updated from binaries only" in update.stdout,
             f"client update passes emerge's output through and checks the VDB ({update.stdout[-300:]} "
             f"{update.stderr[-300:]})")

    os.remove(record)
    dropped = run("client", "update", "--emerge", fake, "--portageq", FAKE_PORTAGEQ, "--json",
                  env=dict(client_env, FAKE_DROP="cat/leaf-d"))
    with open(record) as f:
        calls = f.read().splitlines()
    report = json.loads(dropped.stdout) if dropped.stdout.startswith("{") else {}
    sw.check(dropped.returncode == 1 and report.get("result") == "refused" and
             report.get("unsatisfied") == ["cat/leaf-d"] and "cat/leaf-d" in dropped.stderr,
             f"client update refuses when Portage would drop a world atom ({report} {dropped.stderr[-300:]})")
    sw.check(len(calls) == 1, f"and runs no install ({calls})")

    failing = run("client", "update", "--emerge", fake, "--portageq", FAKE_PORTAGEQ,
                  env=dict(client_env, FAKE_EXIT="3"))
    sw.check(failing.returncode == 3 and "emerge exited with status 3" in failing.stderr,
             f"a failing install's exit code is passed through ({failing.returncode} {failing.stderr[-200:]})")

    write_file(os.path.join(root, "var", "lib", "portage", "world"), "cat/lib-a\ncat/other\n")
    missing = run("client", "update", "--emerge", fake, "--portageq", FAKE_PORTAGEQ, env=client_env)
    sw.check(missing.returncode == 1 and "cat/other" in missing.stderr,
             f"a world atom missing from the VDB afterwards fails the update ({missing.stderr[-200:]})")

    info = run("info", "--url", gateway, "--token-file", orch.admin_token_file, "--json")
    data = json.loads(info.stdout) if info.returncode == 0 else {}
    sw.check(data.get("role") == "gateway" and data.get("binhost_url") == f"{orch.url}/production",
             f"info finds the gateway and the binhost ({info.stderr.strip()[:200]})")
    sw.check(data.get("orchestrator", {}).get("data_dir") == orch.data_dir, "info names the orchestrator's data dir")
    sw.check(len(data.get("orchestrators", [])) == 1, "info lists the orchestrators")
    text = run("info", "--url", gateway, "--token-file", orch.admin_token_file).stdout
    sw.check("staging binhost:" in text and orch.data_dir in text, "info prints where everything is")
    https_setup(sw, orch)
    sw.finish()


def https_setup(sw, orch):
    """`client setup --ca` through an HTTPS gateway: the binhost URL is the gateway's https one, and
    the CA goes into a (throw-away) trust-anchor directory for Portage, then the store-rebuilding
    command runs (a fake that records its calls); a file that is not a PEM certificate, or a
    missing command, stops setup before anything is written."""
    pki = os.path.join(sw.dir, "pki")
    os.makedirs(pki)
    ca = make_ca(pki, "ca")
    cert, key = make_server_cert(pki, "ca")
    proc = sw.spawn("gateway-tls", [SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", orch.url,
                                    "--health-interval", "0.3s", "--tls-cert", cert, "--tls-key", key])
    gateway = "https://127.0.0.1:{}".format(proc.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
    store = os.path.join(sw.dir, "ca-store")
    calls = os.path.join(sw.dir, "update-calls.txt")
    update = os.path.join(sw.dir, "update-ca-certificates")
    write_file(update, f'#!/bin/sh\necho "ran $*" >> "{calls}"\necho "1 added, 0 removed; done."\n')
    os.chmod(update, 0o755)
    conf = os.path.join(sw.dir, "tls", "binrepos.conf", "swarm.conf")
    common = ["client", "setup", "--gateway", gateway, "--binrepos-conf", conf, "--ca-store-dir", store,
              "--update-ca-certificates", update]

    for what, content in (("a private key", open(os.path.join(pki, "ca.key")).read()),
                          ("text", "hello\n"), ("a certificate and its key",
                                                open(ca).read() + open(os.path.join(pki, "ca.key")).read())):
        bad_ca = os.path.join(pki, "bad.pem")
        write_file(bad_ca, content)
        bad = run(*common, "--ca", bad_ca)
        lines = bad.stderr.strip().splitlines()
        sw.check(bad.returncode != 0 and len(lines) == 1 and lines[0].startswith("swarm:")
                 and "is not a PEM CA certificate" in lines[0], f"--ca with {what} is refused in one line ({lines})")
        sw.check(not os.path.exists(conf) and not os.path.exists(store) and not os.path.exists(calls),
                 f"and nothing is written ({what})")
    missing = run(*common[:-1], os.path.join(sw.dir, "no-such-update-ca-certificates"), "--ca", ca)
    lines = missing.stderr.strip().splitlines()
    sw.check(missing.returncode != 0 and len(lines) == 1 and "cannot find" in lines[0]
             and "--ca-store-dir ''" in lines[0], f"a missing update-ca-certificates says what to do ({lines})")
    sw.check(not os.path.exists(conf) and not os.path.exists(store), "and nothing is written")

    first = run(*common, "--ca", ca, "--json")
    reply = json.loads(first.stdout) if first.returncode == 0 else {}
    anchor = os.path.join(store, "swarm-127.0.0.1.crt")
    sw.check(reply.get("binhost_url") == f"{gateway}/production"
             and reply.get("ca_anchor") == {"path": anchor, "ca": ca, "changed": True, "command": update},
             f"client setup --ca through the https gateway installs the CA ({first.stderr.strip()[-300:]} {reply})")
    with open(anchor) as f, open(ca) as g:
        sw.check(f.read() == g.read() and oct(os.stat(anchor).st_mode & 0o777) == "0o644",
                 "the trust anchor is the CA, world-readable")
    with open(conf) as f:
        sw.check(f"sync-uri = {gateway}/production\n" in f.read(), "binrepos.conf names the https binhost")
    again = run(*common, "--ca", ca)
    sw.check(again.returncode == 0 and "already in the system's CA store" in again.stdout,
             f"setting up again finds the CA installed ({again.stdout.strip()[-300:]})")
    with open(calls) as f:
        sw.check(f.read().splitlines() == ["ran ", "ran "], "the store was rebuilt each time")
    sw.check(sorted(os.listdir(store)) == ["swarm-127.0.0.1.crt"], "one anchor, no temporary left behind")
    plain = run("client", "setup", "--gateway", gateway, "--binrepos-conf", conf + ".plain", "--ca", ca, "--json",
                "--ca-store-dir", "")
    sw.check(plain.returncode == 0 and json.loads(plain.stdout).get("ca_anchor") is None,
             "--ca-store-dir '' leaves the store alone")


if __name__ == "__main__":
    main()
