#!/usr/bin/env python3
"""Hostile clients on loopback cannot take the servers down: /healthz keeps answering while 200
connections trickle their headers (more than the server has threads); a client address has a
budget of connections; unauthenticated bodies do not grow the orchestrator's memory; the gateway
never spools an unauthenticated upload; the listen backlog is sized for a fleet.

Every hostile connection comes from its own loopback address (127.0.1.x …), as a fleet's would;
the checks come from 127.0.0.1. Latencies are printed, never asserted."""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, TREE, Orch, Swarm, http  # noqa: E402

THREADS = 16
SLOW = 200
BUDGET = 8

sw = Swarm("hostile")
# Few server threads and a long header deadline: the slow connections stay open for the whole
# check, so it proves that they hold no thread (a deadline closing them early would prove less).
os.environ.update({"SWARM_ORCH_THREADS": str(THREADS), "SWARM_ORCH_HEADER_TIMEOUT": "300s",
                   "SWARM_ORCH_MAX_CONNECTIONS_PER_CLIENT": str(BUDGET)})
orch = sw.start_orch("orch")
for key in ("SWARM_ORCH_THREADS", "SWARM_ORCH_HEADER_TIMEOUT", "SWARM_ORCH_MAX_CONNECTIONS_PER_CLIENT"):
    del os.environ[key]
orch_pid = orch.proc.popen.pid


def connect(port, source):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(60)  # a hang guard only
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def still_open(s):
    """True when the server has not closed `s` (nothing to read, no end of stream)."""
    try:
        s.setblocking(False)
        data = s.recv(1)
        return False if data == b"" else True
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def source(block, i):
    return f"127.0.{block}.{1 + i % 250}" if i < 250 else f"127.0.{block + 1}.{1 + i % 250}"


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wchar(pid):
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    return 0


def healthz(url):
    started = time.monotonic()
    result = http("GET", url + "/healthz", timeout=60)
    return result, (time.monotonic() - started) * 1000


# --- 200 connections trickling their request headers ----------------------------------------
slow = []
for i in range(SLOW):
    s = connect(orch.port, source(1, i))
    s.sendall(b"POST /api/v1/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ")
    slow.append(s)
stop_trickle = threading.Event()


def trickle():
    while not stop_trickle.wait(0.2):
        for s in slow:
            try:
                s.send(b"a")
            except OSError:
                pass


trickler = threading.Thread(target=trickle, daemon=True)
trickler.start()
latencies = []
for _ in range(20):
    result, ms = healthz(orch.url)
    latencies.append(ms)
    sw.check(result.status == 200 and result.json()["status"] == "ok",
             f"/healthz answers while {SLOW} connections trickle headers (HTTP {result.status})")
status = orch.api("GET", "/api/v1/status", timeout=60)
sw.check(status.status == 200, "an authenticated status call is served too")
open_count = sum(1 for s in slow if still_open(s))
sw.check(open_count == SLOW, f"the {SLOW} slow connections were all still open meanwhile ({open_count})")
latencies.sort()
print(f"bench: /healthz with {SLOW} trickling connections and {THREADS} threads: "
      f"median {latencies[len(latencies) // 2]:.1f} ms, max {latencies[-1]:.1f} ms")
stop_trickle.set()
trickler.join()
for s in slow:
    s.close()

# --- a budget of connections per client address ----------------------------------------------
held = [connect(orch.port, "127.0.0.9") for _ in range(BUDGET)]
sw.wait_until(lambda: all(still_open(s) for s in held), 10, "the held connections are accepted")
extra = connect(orch.port, "127.0.0.9")
extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
answer = b""
while True:
    chunk = extra.recv(4096)
    if not chunk:
        break
    answer += chunk
extra.close()
sw.check(answer.startswith(b"HTTP/1.1 503") and b"too many connections from this address" in answer,
         f"connection {BUDGET + 1} from one address: 503 ({answer[:60]!r})")
result, _ = healthz(orch.url)
sw.check(result.status == 200, "another address is still served")
for s in held:
    s.close()

# --- unauthenticated bodies do not grow the orchestrator's memory -----------------------------
BODY = 15 << 20
COUNT = 48
rss_before = vm_rss_kib(orch_pid)
rss_peak = [rss_before]
sampling = threading.Event()


def sample():
    while not sampling.wait(0.02):
        rss_peak[0] = max(rss_peak[0], vm_rss_kib(orch_pid))


sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
answers = []
answers_lock = threading.Lock()
payload = b"{" + b" " * (BODY - 2) + b"}"


def unauthenticated_post(i):
    try:
        s = connect(orch.port, source(3, i))
        s.sendall(f"POST /api/v1/plan HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {BODY}\r\n\r\n".encode() + payload[:1 << 20])
        # The answer comes before the body is read; then the rest is pushed at the server anyway.
        line = s.recv(64).split(b"\r\n", 1)[0]
        try:
            s.sendall(payload[1 << 20:])
        except OSError:
            pass  # the server closed without reading it
        s.close()
    except OSError as error:
        line = f"error {error}".encode()
    with answers_lock:
        answers.append(line)


workers = [threading.Thread(target=unauthenticated_post, args=(i,)) for i in range(COUNT)]
for i in range(0, COUNT, 8):
    batch = workers[i:i + 8]
    for w in batch:
        w.start()
    for w in batch:
        w.join()
sampling.set()
sampler.join()
growth_mib = (rss_peak[0] - rss_before) / 1024
sent_mib = BODY * COUNT / (1 << 20)
print(f"bench: RSS {rss_before // 1024} MiB before, peak growth {growth_mib:.1f} MiB for {sent_mib:.0f} MiB "
      f"of unauthenticated bodies")
refused = sum(1 for line in answers if line.startswith(b"HTTP/1.1 401"))
sw.check(refused == COUNT, f"unauthenticated POSTs are answered 401 before their body ({refused} of {COUNT})")
sw.check(growth_mib < sent_mib / 8, f"RSS growth {growth_mib:.1f} MiB stays far below the {sent_mib:.0f} MiB sent")
result, _ = healthz(orch.url)
sw.check(result.status == 200, "/healthz answers after the flood")

# --- the listen backlog ------------------------------------------------------------------------
ss = subprocess.run(["ss", "-Hltn", f"sport = :{orch.port}"], capture_output=True, text=True)
if ss.returncode == 0 and ss.stdout.strip():
    sw.check(ss.stdout.split()[2] == "1024", f"listen backlog 1024 (ss: {ss.stdout.strip()})")
else:
    print("ss is not available: listen backlog not checked")

# --- the gateway never spools an unauthenticated upload ----------------------------------------
tmp = os.path.join(sw.dir, "gateway-tmp")
os.makedirs(tmp)
env = dict(os.environ, TMPDIR=tmp)
gateway = sw.spawn("gateway", [SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", orch.url,
                               "--health-interval", "0.3s"], env=env)
gateway_port = int(gateway.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
gateway_url = f"http://127.0.0.1:{gateway_port}"
sw.wait_until(lambda: http("GET", gateway_url + "/healthz").json()["active"], 10, "the gateway sees the orchestrator")
gateway_pid = gateway.popen.pid


def spool_files():
    out = []
    for root, _, files in os.walk(tmp):
        out.extend(os.path.join(root, f) for f in files)
    return out


def upload(size, authorization, answer_first):
    """PUTs `size` bytes through the gateway. With `answer_first`, the answer is read after the
    first MiB (a refusal comes before the body is read), then the rest is pushed anyway."""
    s = connect(gateway_port, "127.0.0.1")
    head = (f"PUT /api/v1/leases/0123abcd/artifact HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n"
            f"X-Swarm-Sha256: {'0' * 64}\r\nX-Swarm-Xxh3-128: {'0' * 32}\r\n{authorization}\r\n")
    chunk = b"x" * (1 << 20)
    s.sendall(head.encode() + chunk)
    line = s.recv(64).split(b"\r\n", 1)[0].decode(errors="replace") if answer_first else ""
    try:
        for _ in range((size >> 20) - 1):
            s.sendall(chunk)
    except OSError:
        pass
    if not answer_first:
        line = s.recv(64).split(b"\r\n", 1)[0].decode(errors="replace")
    s.close()
    return line


for what, authorization in (("no token", ""), ("an unknown token", "Authorization: Bearer swd_not_a_token\r\n")):
    before = wchar(gateway_pid)
    line = upload(32 << 20, authorization, True)
    written = wchar(gateway_pid) - before
    sw.check(" 401 " in line, f"gateway, upload with {what}: 401 ({line})")
    sw.check(written < (1 << 20), f"gateway, upload with {what}: nothing spooled ({written} bytes written)")
    sw.check(not spool_files(), f"gateway, upload with {what}: the spool dir stays empty")

# The check can fail: an authenticated upload (to a lease the drone does not hold) is spooled.
token = sw.enroll(orch, "d1")
before = wchar(gateway_pid)
line = upload(8 << 20, f"Authorization: Bearer {token}\r\n", False)
written = wchar(gateway_pid) - before
sw.check(line.startswith("HTTP/1.1 4"), f"an authenticated upload to a foreign lease is refused upstream ({line})")
sw.check(written >= (8 << 20), f"…after the gateway spooled it ({written} bytes written)")
sw.wait_until(lambda: not spool_files(), 10, "the spool file is removed")

# --- long-polls cannot take every thread ----------------------------------------------------------
# 8 threads, at most 2 waiting claims (each waits up to 20 s): of 8 claims sent at once, those past the cap are answered
# without waiting ("claim again"), and /healthz is served meanwhile.
os.environ.update({"SWARM_ORCH_THREADS": "8", "SWARM_ORCH_MAX_LONG_POLLS": "2"})
data2 = os.path.join(sw.dir, "orch2")
args2 = ["--data-dir", data2, "--claim-wait", "20s"]  # long: the waits surely overlap
proc2 = sw.spawn("orch2", [SWARM, "orch", "--listen", "127.0.0.1:0", *args2])
orch2 = Orch(proc2, data2, int(proc2.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1)), args2)
sw.wait_until(lambda: http("GET", orch2.url + "/healthz").status == 200, 10, "orch2 /healthz")
sw.secrets.append(orch2.admin_token)
for key in ("SWARM_ORCH_THREADS", "SWARM_ORCH_MAX_LONG_POLLS"):
    del os.environ[key]
poller_token = sw.enroll(orch2, "poller")
sw.check(http("POST", orch2.url + "/api/v1/drones/register",
              {"name": "poller", "protocol": 1, "slots": 8, "tree_timestamp": TREE}, token=poller_token).status == 200,
         "the polling drone registers")
claims = []
claims_lock = threading.Lock()


def long_poll():
    answer = http("POST", orch2.url + "/api/v1/claim?wait=30", {}, token=poller_token, timeout=120)
    with claims_lock:
        claims.append(answer)


pollers = [threading.Thread(target=long_poll) for _ in range(8)]
for p in pollers:
    p.start()
capped = sw.wait_until(lambda: [c for c in list(claims) if "every long-poll place is taken" in c.json()["reason"]],
                       60, "a claim past the long-poll cap is answered at once")
sw.check(capped[0].status == 200 and capped[0].json()["lease"] is None and
         capped[0].headers.get("Retry-After") == "1", f"…with no lease and Retry-After: 1 ({capped[0].json()})")
result, _ = healthz(orch2.url)
sw.check(result.status == 200, "/healthz answers while the long-polls wait")
for p in pollers:
    p.join()
waited = [c for c in claims if "every long-poll place is taken" not in c.json()["reason"]]
sw.check(all(c.status == 200 for c in claims) and len(waited) == 2,
         f"2 claims waited, the others were answered at once ({len(waited)} of {len(claims)} waited)")

sw.finish()
