#!/usr/bin/env python3
"""The orchestrator's API refuses malformed bodies with 400 and a one-line JSON error, never 500,
and changes nothing stored; it authenticates a caller from the headers before reading any body;
and a claim without a lease says why with a documented code."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import TREE, Swarm, http, orch_id, staging_files  # noqa: E402
from release_helpers import flat_plan  # noqa: E402

sw = Swarm("api-validation")
# The test holds an upload open with 1,000 bytes sent (one upload at a time per lease, below): on
# a loaded machine the checks before that can take longer than the 30 s after which a body must
# average 64 KiB/s, and the server would cut it first. The rate limit has tests of its own
# (test_hostile_clients); here it is 1 byte/s.
os.environ["SWARM_ORCH_MIN_TRANSFER_RATE"] = "1"
orch = sw.start_orch("orch", extra=["--package-failure-drones", "1"])

cpvs = ["app-misc/p1-1", "app-misc/p2-1", "app-misc/ok-1"]
plan = flat_plan(cpvs, seconds=1)
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
token = sw.enroll(orch, "d1")
drone = sw.start_drone(orch.url, "d1", token, plan_file, slots=2, time_scale=0.001, fail="app-misc/p1-1,app-misc/p2-1")
sw.wait_until(lambda: sw.status(orch)["counts"]["blocked"] == 2 and sw.status(orch)["counts"]["received"] == 1, 60,
              "two packages blocked, one built")
drone.kill()


def state():
    status = sw.status(orch)
    drones = orch.api("GET", "/api/v1/drones").json()["drones"]
    return {"counts": status["counts"], "paused": status["paused"], "plan": status["plan"],
            "drones": [(d["name"], d["state"], d["slots"], d["ram_bytes"]) for d in drones],
            "packages": sorted((p["cpv"], p["state"]) for p in sw.packages(orch))}


def refused(method, path, body, what, token=None, status=400):
    before = state()
    result = orch.api(method, path, body, token=token)
    error = (result.json() or {}) if result.body else {}
    sw.check(result.status == status and error.get("kind") == "invalid" and "\n" not in error.get("error", "\n"),
             f"{what}: HTTP {result.status} {error}")
    sw.check(state() == before, f"{what}: nothing changed")
    return error.get("error", "")


message = refused("POST", "/api/v1/control/unblock", {"packages": "app-misc/p1-1"},
                  "unblock with a string where a list belongs")
sw.check("packages" in message, f"the error names the field: {message}")
sw.check(sw.status(orch)["counts"]["blocked"] == 2, "both packages are still blocked")
refused("POST", "/api/v1/control/retry", {"packages": [5]}, "retry with a number in the list")
refused("POST", "/api/v1/plan", {"plan": plan, "clear_staging": "yes"}, "plan with clear_staging \"yes\"")
refused("POST", "/api/v1/plan", {"plan": plan, "mode": "merge"}, "plan with an unknown mode")
refused("POST", "/api/v1/drones/enroll", {"name": 5}, "enroll with a numeric name")
refused("POST", "/api/v1/control/ground", {"drone": 5}, "ground with a numeric drone")
refused("POST", "/api/v1/control/unground", {}, "unground without a drone")
refused("POST", "/api/v1/releases/finalize", {"threshold": 1000}, "finalize with a threshold out of range")
refused("POST", "/api/v1/drones/register", {"name": "d1", "protocol": 1, "slots": 1, "ram_bytes": -1},
        "register with negative ram_bytes", token=token)
refused("POST", "/api/v1/drones/register", {"name": "d1", "protocol": 1, "slots": 0}, "register with 0 slots",
        token=token)
refused("POST", "/api/v1/drones/heartbeat", {"leases": "x"}, "heartbeat with a string for leases", token=token)
refused("POST", "/api/v1/leases/0123abcd/report", {"result": "success", "duration_seconds": 1e308},
        "report with duration 1e308", token=token)
refused("POST", "/api/v1/control/pause", b"{not json", "a body that is not JSON")
refused("POST", "/api/v1/control/unblock", b"[1, 2]", "a body that is a list")

# A claim that gets nothing says why, with a code (a second drone: d1's last long-poll may still
# be waiting in the orchestrator, and would take the next package).
token2 = sw.enroll(orch, "d2")
sw.check(http("POST", orch.url + "/api/v1/drones/register",
              {"name": "d2", "protocol": 1, "slots": 1, "tree_timestamp": TREE}, token=token2).status == 200,
         "d2 registers")
orch.api("POST", "/api/v1/control/pause")
claim = http("POST", orch.url + "/api/v1/claim?wait=0", {}, token=token2).json()
sw.check(claim["lease"] is None and claim["code"] == "paused" and claim["reason"], f"paused claim: {claim}")
orch.api("POST", "/api/v1/control/resume")
claim = http("POST", orch.url + "/api/v1/claim?wait=0", {}, token=token2).json()
sw.check(claim["lease"] is None and claim["code"] == "nothing_to_build", f"claim with all blocked or built: {claim}")

# A well-formed unblock of one package unblocks that one only.
result = orch.api("POST", "/api/v1/control/unblock", {"packages": ["app-misc/p1-1"]})
sw.check(result.status == 200 and result.json()["unblocked"] == ["app-misc/p1-1"], f"unblock one: {result.body}")
sw.check(sw.status(orch)["counts"]["blocked"] == 1, "the other stays blocked")


def first_answer_before_body(path, auth_header):
    """Sends the headers of an 8 MiB POST (within the route's limit, beyond what the server drains
    from a refused request) and 10 bytes of its body, then reads: the answer must come although
    the rest of the body never does."""
    with socket.create_connection(("127.0.0.1", orch.port), timeout=30) as s:
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: 8388608\r\n{auth_header}\r\n")
        s.sendall(head.encode() + b'{"plan": {')
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].decode(errors="replace")


line = first_answer_before_body("/api/v1/plan", "")
sw.check(" 401 " in line, f"no token: 401 before the body is read ({line})")
line = first_answer_before_body("/api/v1/plan", f"Authorization: Bearer {token}\r\n")
sw.check(" 403 " in line, f"a drone token on an admin route: 403 before the body is read ({line})")
line = first_answer_before_body("/api/v1/drones/heartbeat", f"Authorization: Bearer {orch.admin_token}\r\n")
sw.check(" 403 " in line, f"the admin token on a drone route: 403 before the body is read ({line})")
line = first_answer_before_body("/api/v1/control/pause", "Authorization: Bearer swd_not_a_token\r\n")
sw.check(" 401 " in line, f"an unknown token: 401 before the body is read ({line})")

# Types and ranges on every drone route: huge numbers, wrong types, long texts.
refused("POST", "/api/v1/drones/register", {"name": "d1", "protocol": 1, "ram_bytes": 18446744073709551615},
        "register with ram_bytes 2^64-1", token=token)
refused("POST", "/api/v1/drones/register", {"name": "d1", "protocol": 1, "ram_bytes": 1e308},
        "register with ram_bytes 1e308", token=token)
refused("POST", "/api/v1/drones/register", {"name": "d1", "protocol": 1, "cores": "eight"},
        "register with a string for cores", token=token)
refused("POST", "/api/v1/drones/register", {"name": "d" * 70000, "protocol": 1}, "register with a 70 kB name",
        token=token)
refused("POST", "/api/v1/drones/heartbeat", {"cpu_percent": 1e308}, "heartbeat with cpu_percent 1e308", token=token)
refused("POST", "/api/v1/drones/heartbeat", {"disk_free_bytes": -5}, "heartbeat with negative disk_free_bytes",
        token=token)
refused("POST", "/api/v1/leases/0123abcd/report", {"result": "success", "duration_seconds": "long"},
        "report with a string duration", token=token)
refused("POST", "/api/v1/leases/0123abcd/refuse", {"code": ["other"]}, "refuse with a list for code", token=token)
refused("POST", "/api/v1/releases/finalize", {"threshold": 10 ** 30}, "finalize with a 31-digit threshold")
refused("POST", "/api/v1/control/pause", b"[" * 100000, "a body nested 100000 deep")
result = http("POST", orch.url + "/api/v1/claim?wait=1e308", {}, token=token2)
sw.check(result.status == 400 and result.json()["kind"] == "invalid", f"claim with wait=1e308: HTTP {result.status}")

for query in ("/api/v1/events?since=abc", "/api/v1/events?since=-1", "/api/v1/builds?limit=0",
              "/api/v1/events?limit=99999999999999999999", "/api/v1/status?profile=../x"):
    result = orch.api("GET", query)
    sw.check(result.status == 400 and result.json()["kind"] == "invalid", f"GET {query}: HTTP {result.status}")
result = orch.api("GET", "/api/v1/events?limit=999999")
sw.check(result.status == 200, f"a limit above the most is capped, not refused: HTTP {result.status}")

# Binhost: Range and If-Modified-Since as RFC 9110 says (on a package file of staging).
gpkg = [f for f in staging_files(orch) if f.endswith(".gpkg.tar")][0]
packages_url = f"{orch.url}/staging/{orch_id(orch)}/{gpkg}"
whole = http("GET", packages_url, token=token2)
sw.check(whole.status == 200 and len(whole.body) > 10, f"staging {gpkg}: HTTP {whole.status}")
for header, expect in (("bytes=abc", 200), ("bytes=5-3", 200), ("items=0-4", 200), ("bytes=0-4", 206),
                       ("bytes=99999999-", 416), ("bytes=0-1,3-4", 200)):
    result = http("GET", packages_url, token=token2, headers={"Range": header})
    body_ok = {200: result.body == whole.body, 206: result.body == whole.body[:5],
               416: result.headers.get("Content-Range") == f"bytes */{len(whole.body)}"}[expect]
    sw.check(result.status == expect and body_ok, f"Range {header!r}: HTTP {result.status} (expected {expect})")
result = http("HEAD", packages_url, token=token2, headers={"Range": "bytes=0-4"})
sw.check(result.status == 200 and result.headers.get("Content-Length") == str(len(whole.body)),
         f"HEAD ignores Range: HTTP {result.status}")
result = http("GET", packages_url, token=token2, headers={"If-Modified-Since": "yesterday"})
sw.check(result.status == 200 and result.body == whole.body, f"an invalid If-Modified-Since is ignored: {result.status}")
last_modified = whole.headers.get("Last-Modified")
result = http("GET", packages_url, token=token2, headers={"If-Modified-Since": last_modified})
sw.check(result.status == 304, f"If-Modified-Since the Last-Modified date: HTTP {result.status}")

# One upload at a time per lease: while one is being received, a second gets 409.
# d1's last long-poll may have taken the unblocked package as d1 died: its lease expires.
sw.wait_until(lambda: any(p["cpv"] == "app-misc/p1-1" and p["state"] == "needed" for p in sw.packages(orch)), 60,
              "app-misc/p1-1 is needed again")
claim = http("POST", orch.url + "/api/v1/claim?wait=5", {}, token=token2).json()
sw.check(claim["lease"] is not None, f"d2 gets the unblocked package: {claim}")
lease = claim["lease"]["id"]
first = socket.create_connection(("127.0.0.1", orch.port), timeout=30)
first.sendall((f"PUT /api/v1/leases/{lease}/artifact HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Bearer {token2}\r\nX-Swarm-Sha256: {'0' * 64}\r\nX-Swarm-Xxh3-128: {'0' * 32}\r\n"
               f"Content-Length: 1048576\r\n\r\n").encode() + b"x" * 1000)


def second_upload():
    return http("PUT", f"{orch.url}/api/v1/leases/{lease}/artifact", b"y" * 10, token=token2,
                headers={"X-Swarm-Sha256": "0" * 64, "X-Swarm-Xxh3-128": "0" * 32})


# Until the first is inside the handler, a second is simply received (and refused: bad hash).
conflict = sw.wait_until(lambda: (lambda r: r if r.status == 409 else None)(second_upload()), 30,
                         "a second upload meets the first")
sw.check(conflict.json()["kind"] == "conflict" and conflict.json().get("upload_in_progress") is True,
         f"the second upload: 409 {conflict.json()}")
first.close()
after = sw.wait_until(lambda: (lambda r: r if r.status != 409 else None)(second_upload()), 30,
                      "the first upload ends")
sw.check(after.status == 400, f"once the first is gone, an upload is received again (HTTP {after.status})")

sw.finish()
