#!/usr/bin/env python3
"""End-to-end: secrets (issue 10).

Tokens reach swarm from a file (--token-file) or $SWARM_TOKEN; --token still works but warns
that `ps` shows it. The orchestrator's data dir is 0700, its database (and -wal/-shm), admin
token and log 0600 — from creation, and tightened (with a warning) when found looser. `swarm
drone revoke` stops a drone's token at once (401 on its next heartbeat and claim, its lease back
in the queue, the running drone exits, `drone list` shows it revoked); a read-only token reads
status and views (200) and is refused every write (403); wrong credentials from one address are
answered 429 with Retry-After after 10 in a minute, on the orchestrator and the gateway, while
other addresses and /healthz are unaffected.
"""

import http.client as httpclient
import json
import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, TREE, Orch, Swarm, http  # noqa: E402

sw = Swarm("secrets")


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def swarm(*args, env_token=None, timeout=60):
    env = {k: v for k, v in os.environ.items() if k not in ("SWARM_TOKEN", "SWARM_CLIENT_TOKEN", "SWARM_CONFIG")}
    if env_token is not None:
        env["SWARM_TOKEN"] = env_token
    return subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def one_error_line(result, what):
    sw.check(result.returncode != 0 and result.stderr.startswith("swarm:") and result.stderr.count("\n") == 1
             and not result.stdout, f"{what}: one 'swarm:' line, non-zero exit ({result.returncode} {result.stderr!r})")


def request_from(source, port, method, path, token=None, body=None):
    """One request to 127.0.0.1:port sent from the address `source` (any 127.x address is local)."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    result = (response.status, response.getheader("Retry-After"), response.read())
    conn.close()
    return result


# --- permissions ------------------------------------------------------------------------------
# A data dir and a log file that already exist with loose modes are tightened at start, with a warning.
loose_dir = os.path.join(sw.dir, "orch")
os.makedirs(loose_dir, mode=0o755)
os.chmod(loose_dir, 0o755)
log_file = os.path.join(sw.dir, "orch.log")
with open(log_file, "w") as f:
    f.write("")
os.chmod(log_file, 0o644)
orch = sw.start_orch("orch", extra=("--log", log_file))
data = orch.data_dir
token_d1 = sw.enroll(orch, "d1")
sw.submit(orch, {"source": "e2e secrets", "tree_timestamp": TREE, "profile": "default/linux/amd64/23.0",
                 "packages": [{"cpv": f"app-test/p{i}-1", "slot": "0", "repo": "gentoo", "use": [],
                               "build_seconds": 60, "duration_source": "test"} for i in range(3)],
                 "edges": []})
sw.check(mode(data) == 0o700, f"the data dir is 0700 ({mode(data):o})")
sw.check(mode(os.path.join(data, "logs")) == 0o700, "its logs dir is 0700")
for name in ("state.db", "state.db-wal", "state.db-shm", "admin.token"):
    path = os.path.join(data, name)
    sw.check(os.path.exists(path) and mode(path) == 0o600,
             f"{name} is 0600 ({oct(mode(path)) if os.path.exists(path) else 'missing'})")
sw.check(mode(log_file) == 0o600, f"the log file is 0600 ({mode(log_file):o})")
out = "\n".join(orch.proc.output())
sw.check("more open than 0700" in out and loose_dir in out, "the loose data dir was tightened with a warning")
sw.check("log file" in out and "more open than 0600" in out, "the loose log file was tightened with a warning")

# A fresh orchestrator creates everything private (no warning: nothing was loose).
fresh_log = os.path.join(sw.dir, "fresh", "orch.log")
os.makedirs(os.path.dirname(fresh_log))
fresh = sw.start_orch("fresh", extra=("--log", fresh_log), data_dir=os.path.join(sw.dir, "fresh", "data"))
http("POST", fresh.url + "/api/v1/control/pause", {}, token=fresh.admin_token)  # a write: the WAL exists
for path in (fresh.data_dir, *(os.path.join(fresh.data_dir, n) for n in ("state.db", "admin.token")), fresh_log):
    want = 0o700 if os.path.isdir(path) else 0o600
    sw.check(mode(path) == want, f"fresh: {os.path.basename(path)} created {want:o} ({mode(path):o})")
sw.check(not any("more open than" in line for line in fresh.proc.output()), "fresh: no permission warning")
fresh.proc.kill()

# A drone token file found looser than 0600 is tightened by the drone.
loose_token = sw.token_file(token_d1, "loose")
os.chmod(loose_token, 0o644)
spool = os.path.join(sw.dir, "spool-bad")
bad_drone = swarm("drone", "--url", orch.url, "--name", "d1", "--token-file", loose_token, "--spool", spool,
                  "--emerge", "/bin/true", "--build-root", "chroot")
sw.check(mode(loose_token) == 0o600, f"the drone tightened its token file ({mode(loose_token):o})")
sw.check("more open than 0600" in bad_drone.stderr, "…and said so")

# --- token sources ----------------------------------------------------------------------------
admin = orch.admin_token
status_args = ("drones", "--url", orch.url, "--json")  # `status` exits 1 when work needs attention
by_file = swarm(*status_args, "--token-file", orch.admin_token_file)
sw.check(by_file.returncode == 0 and isinstance(json.loads(by_file.stdout), list) and not by_file.stderr,
         f"drones with --token-file: exit 0, no warning ({by_file.returncode} {by_file.stderr!r})")
by_env = swarm(*status_args, env_token=admin)
sw.check(by_env.returncode == 0 and not by_env.stderr, f"drones with $SWARM_TOKEN ({by_env.stderr!r})")
by_flag = swarm(*status_args, "--token", admin)
sw.check(by_flag.returncode == 0, "drones with --token still works")
sw.check("visible" in by_flag.stderr and "--token-file" in by_flag.stderr and admin not in by_flag.stderr
         and by_flag.stderr.count("\n") == 1, f"…with one warning line that does not show the token {by_flag.stderr!r}")
one_error_line(swarm(*status_args, "--token-file", os.path.join(sw.dir, "no-such-file")), "a missing token file")
one_error_line(swarm(*status_args, "--token-file", orch.admin_token_file, "--token", admin), "--token and --token-file")
empty = sw.token_file("", "empty")
one_error_line(swarm(*status_args, "--token-file", empty), "an empty token file")
no_token = swarm("drone", "--url", orch.url, "--name", "x", "--spool", spool)
one_error_line(no_token, "a drone without a token")
sw.check("--token-file" in no_token.stderr, "…names --token-file")

# --- drone list and revoke --------------------------------------------------------------------
# d1 is driven from here and holds a lease; d2 is a real drone process.
hello = {"name": "d1", "protocol": 1, "version": "e2e", "cores": 1, "slots": 1, "ram_bytes": 1 << 30,
         "disk_free_bytes": 1 << 34, "tree_timestamp": TREE}
sw.check(http("POST", orch.url + "/api/v1/drones/register", hello, token=token_d1).status == 200, "d1 registers")
token_d2 = sw.enroll(orch, "d2")
plan_file = sw.write_plan({"packages": []}, "fake-plan.json")
d2 = sw.start_drone(orch.url, "d2", token_d2, plan_file, time_scale=100)
sw.wait_until(lambda: any(d["name"] == "d2" and d["online"] for d in http(
    "GET", orch.url + "/api/v1/drones", token=admin).json()["drones"]), 30, "d2 online")

listed = swarm("drone", "list", "--url", orch.url, "--token-file", orch.admin_token_file, "--json")
drones = {d["name"]: d for d in json.loads(listed.stdout)["drones"]} if listed.returncode == 0 else {}
sw.check(set(drones) == {"d1", "d2"}, f"drone list --json: d1 and d2 ({listed.stdout[:200]} {listed.stderr!r})")
sw.check(all(d["enrolled_at"] > 0 and d["last_seen"] > 0 and d["revoked"] is False for d in drones.values()),
         f"…each enrolled, seen, not revoked {drones}")
table = swarm("drone", "list", "--url", orch.url, "--token-file", orch.admin_token_file)
sw.check(table.returncode == 0 and "LAST SEEN" in table.stdout and "d2" in table.stdout, "drone list: a table")

# d1 (silent since it registered: offline after 3 s) registers again, claims and is revoked at once.
sw.check(http("POST", orch.url + "/api/v1/drones/register", hello, token=token_d1).status == 200, "d1 is back")
claimed = http("POST", orch.url + "/api/v1/claim?wait=5", {}, token=token_d1).json()
lease = claimed.get("lease")
sw.check(lease is not None, f"d1 holds a lease {claimed}")
leased_cpv = lease["cpv"] if lease else ""
refused = swarm("drone", "revoke", "d1", "--url", orch.url, "--token-file", orch.admin_token_file)
sw.check(refused.returncode != 0 and "--yes" in refused.stderr, "drone revoke without a terminal asks for --yes")
revoked = swarm("drone", "revoke", "d1", "--yes", "--url", orch.url, "--token-file", orch.admin_token_file, "--json")
answer = json.loads(revoked.stdout) if revoked.returncode == 0 else {}
sw.check(answer.get("revoked") is True and answer.get("requeued") == 1, f"drone revoke d1 --json: {revoked.stdout!r}")
sw.check(http("POST", orch.url + "/api/v1/drones/heartbeat", {"leases": [lease["id"]] if lease else []},
              token=token_d1).status == 401, "d1's next heartbeat: 401")
sw.check(http("POST", orch.url + "/api/v1/claim?wait=0", {}, token=token_d1).status == 401, "d1's next claim: 401")
states = {p["cpv"]: p["state"] for p in sw.packages(orch)}
sw.check(states.get(leased_cpv) in ("needed", "delegated"), f"d1's package is back in the queue ({states})")
sw.check(any(e["kind"] == "reclaimed" and e["drone"] == "d1" and e["package"] == leased_cpv
             and e["detail"] == "drone revoked" for e in sw.events(orch)),
         "…reclaimed from d1 (event)")
one_error_line(swarm("drone", "revoke", "nobody", "--yes", "--url", orch.url, "--token-file", orch.admin_token_file),
               "revoking an unknown drone")

human = swarm("drone", "revoke", "d2", "--yes", "--url", orch.url, "--token-file", orch.admin_token_file)
sw.check(human.returncode == 0 and "revoked drone d2" in human.stdout, f"drone revoke d2 ({human.stdout!r})")
sw.wait_until(lambda: not d2.alive(), 30, "the revoked drone d2 exits")
sw.check(d2.popen.returncode != 0, f"d2 exits non-zero ({d2.popen.returncode})")
listed = json.loads(swarm("drone", "list", "--url", orch.url, "--json", env_token=admin).stdout)["drones"]
sw.check(all(d["revoked"] and d["state"] == "revoked" for d in listed), f"drone list: both revoked {listed}")
status_drones = {d["name"]: d["state"] for d in sw.status(orch)["drones"]}
sw.check(status_drones == {"d1": "revoked", "d2": "revoked"}, f"status shows them revoked {status_drones}")
token_d1b = sw.enroll(orch, "d1")
sw.check(http("GET", orch.url + "/api/v1/whoami", token=token_d1b).status == 200, "enrolling again gives a new token")
sw.check(http("POST", orch.url + "/api/v1/drones/register", hello, token=token_d1b).status == 200,
         "…with which d1 registers again")
listed = {d["name"]: d for d in json.loads(swarm("drone", "list", "--url", orch.url, "--json",
                                                  env_token=admin).stdout)["drones"]}
sw.check(listed["d1"]["revoked"] is False, "…and d1 is no longer revoked")

# --- read-only tokens -------------------------------------------------------------------------
created = swarm("token", "create", "dashboard", "--read-only", "--url", orch.url, "--json", env_token=admin)
reader = json.loads(created.stdout)["token"] if created.returncode == 0 else ""
sw.check(reader.startswith("swr_"), f"token create --read-only --json ({created.stdout!r} {created.stderr!r})")
sw.secrets.append(reader)
one_error_line(swarm("token", "create", "x", "--url", orch.url, env_token=admin), "token create without --read-only")
for path in ("/api/v1/status", "/api/v1/drones", "/api/v1/packages", "/api/v1/events", "/api/v1/releases",
             "/api/v1/whoami"):
    sw.check(http("GET", orch.url + path, token=reader).status == 200, f"read-only token: GET {path} 200")
for method, path in (("POST", "/api/v1/control/pause"), ("POST", "/api/v1/plan"), ("POST", "/api/v1/claim?wait=0"),
                     ("POST", "/api/v1/drones/heartbeat"), ("GET", "/api/v1/verify"), ("POST", "/api/v1/tokens"),
                     ("POST", "/api/v1/drones/revoke")):
    got = http(method, orch.url + path, {} if method == "POST" else None, token=reader)
    sw.check(got.status == 403, f"read-only token: {method} {path} 403 ({got.status})")
ro_status = swarm("status", "--url", orch.url, "--json", env_token=reader)
sw.check(ro_status.returncode in (0, 1) and json.loads(ro_status.stdout).get("counts") is not None,
         f"swarm status with the read-only token ({ro_status.returncode} {ro_status.stderr!r})")
ro_drones = swarm("drones", "--url", orch.url, "--json", env_token=reader)
sw.check(ro_drones.returncode == 0 and len(json.loads(ro_drones.stdout)) == 2, "swarm drones with the read-only token")
ro_pause = swarm("pause", "--url", orch.url, env_token=reader)
one_error_line(ro_pause, "swarm pause with the read-only token")
sw.check("read-only" in ro_pause.stderr, f"…says the token is read-only ({ro_pause.stderr!r})")
tokens = swarm("token", "list", "--url", orch.url, "--json", env_token=admin)
sw.check(tokens.returncode == 0 and [t["name"] for t in json.loads(tokens.stdout)["tokens"]] == ["dashboard"]
         and reader not in tokens.stdout, f"token list names it, never shows it ({tokens.stdout!r})")
gone = swarm("token", "revoke", "dashboard", "--url", orch.url, env_token=admin)
sw.check(gone.returncode == 0, f"token revoke ({gone.stderr!r})")
sw.check(http("GET", orch.url + "/api/v1/status", token=reader).status == 401, "a revoked read-only token: 401")

# --- rate limiting of failed authentication ---------------------------------------------------
# The gateway's orchestrator trusts it to name the client (X-Forwarded-For), so a client failing
# through the gateway never gets the gateway's own address refused.
args = ["--data-dir", os.path.join(sw.dir, "limited"), "--trusted-proxies", "127.0.0.1"]
proc = sw.spawn("limited", [SWARM, "orch", "--listen", "127.0.0.1:0", *args])
limited = Orch(proc, args[1], int(proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1)), args)
sw.wait_until(lambda: http("GET", limited.url + "/healthz").status == 200, 10, "limited /healthz")
sw.secrets.append(limited.admin_token)
good = limited.admin_token
for i in range(10):
    status, _, _ = request_from("127.0.0.2", limited.port, "GET", "/api/v1/status", token=f"swd_wrong{i}")
    sw.check(status == 401, f"orch: wrong token {i + 1} of 10 from 127.0.0.2: 401 ({status})")
status, retry_after, body = request_from("127.0.0.2", limited.port, "GET", "/api/v1/status", token="swd_wrong")
sw.check(status == 429 and retry_after and 1 <= int(retry_after) <= 60,
         f"orch: the 11th: 429 with Retry-After ({status} {retry_after} {body[:100]})")
status, _, _ = request_from("127.0.0.2", limited.port, "GET", "/api/v1/status", token=good)
sw.check(status == 429, f"orch: 127.0.0.2 is refused even with the right token for now ({status})")
sw.check(request_from("127.0.0.2", limited.port, "GET", "/healthz")[0] == 200, "orch: /healthz still answers it")
sw.check(request_from("127.0.0.1", limited.port, "GET", "/api/v1/status", token=good)[0] == 200,
         "orch: another address (127.0.0.1) is unaffected")
for _ in range(30):
    ok = request_from("127.0.0.1", limited.port, "GET", "/api/v1/status", token=good)[0]
sw.check(ok == 200, "orch: successful authentications are never counted")

gateway = sw.start_gateway([limited.url])
gateway_port = int(gateway.rsplit(":", 1)[1])
for i in range(10):
    status, _, _ = request_from("127.0.0.3", gateway_port, "GET", "/api/v1/status", token=f"swd_wrong{i}")
    sw.check(status == 401, f"gateway: wrong token {i + 1} of 10 from 127.0.0.3: 401 ({status})")
status, retry_after, _ = request_from("127.0.0.3", gateway_port, "GET", "/api/v1/status", token="swd_wrong")
sw.check(status == 429 and retry_after and int(retry_after) >= 1, f"gateway: the 11th: 429 ({status} {retry_after})")
sw.check(request_from("127.0.0.1", gateway_port, "GET", "/api/v1/status", token=good)[0] == 200,
         "gateway: another address is unaffected")
sw.check(request_from("127.0.0.1", limited.port, "GET", "/api/v1/status", token=good)[0] == 200,
         "orch: the gateway's own address was not refused (it named the client)")
status, _, _ = request_from("127.0.0.3", limited.port, "GET", "/api/v1/status", token=good)
sw.check(status == 429, f"orch: it counted the gateway's client 127.0.0.3 ({status})")

sw.finish()
