#!/usr/bin/env python3
"""End-to-end: `swarm gateway` in front of two orchestrators fails over and back.

A primary (priority 100) and a standby (priority 50) orchestrator, each with its own data dir,
behind a gateway probing every 0.3 s. /api/v1/status through the gateway must reach the
primary; after SIGKILL of the primary it must reach the standby within about two intervals;
once the primary is restarted on the same port with the same data dir, it must reach the
primary again. Also: /healthz, /status, /binhost, bad configuration (exit 2) and SIGTERM
(exit 0).

The orchestrators are real `swarm orch` processes when that verb exists; otherwise a stand-in
started from this script (`--stand-in`) that answers /healthz and /api/v1/status the same way.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Proc  # noqa: E402

SWARM = os.environ.get("SWARM_BIN", "swarm")
ADMIN_TOKEN = "e2e-gateway-admin-token"
INTERVAL = 0.3
FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return condition


# --------------------------------------------------------------------------------------------
# The stand-in orchestrator (runs in its own process so that it can be SIGKILLed).

def stand_in_main(argv):
    import http.server
    import secrets

    data_dir = argv[argv.index("--data-dir") + 1]
    host, port = argv[argv.index("--listen") + 1].rsplit(":", 1)
    token = argv[argv.index("--admin-token") + 1]
    os.makedirs(data_dir, exist_ok=True)
    id_file = os.path.join(data_dir, "orch_id")
    if not os.path.exists(id_file):  # like the real one: the id lives in the data dir
        with open(id_file, "w") as f:
            f.write(secrets.token_hex(8))
    with open(id_file) as f:
        orch_id = f.read().strip()

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            base = f"http://{host}:{self.server.server_address[1]}"
            if self.path == "/healthz":
                self.answer(200, {"status": "ok", "role": "orch", "version": "stand-in", "protocol": 1,
                                  "orch_id": orch_id, "paused": False, "public_url": base,
                                  "staging_url": f"{base}/staging/{orch_id}/",
                                  "production_url": f"{base}/production/"})
            elif self.path == "/api/v1/status":
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self.answer(401, {"error": "missing or wrong token", "kind": "unauthorized"})
                else:
                    self.answer(200, {"orch_id": orch_id, "paused": False, "counts": {}})
            else:
                self.answer(404, {"error": "no such endpoint", "kind": "not_found"})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    print(f"stand-in orch ready on {host}:{server.server_address[1]}", file=sys.stderr, flush=True)
    server.serve_forever()


# --------------------------------------------------------------------------------------------
# Processes



def real_orch_available():
    try:
        proc = subprocess.run([SWARM, "orch", "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "--data-dir" in proc.stdout


USE_REAL_ORCH = real_orch_available()


def start_orch(name, data_dir, port=0):
    listen = f"127.0.0.1:{port}"
    if USE_REAL_ORCH:
        argv = [SWARM, "orch", "--data-dir", data_dir, "--listen", listen, "--admin-token", ADMIN_TOKEN]
    else:
        argv = [sys.executable, os.path.abspath(__file__), "--stand-in", "--data-dir", data_dir, "--listen", listen,
                "--admin-token", ADMIN_TOKEN]
    proc = Proc(name, argv)
    match = proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)")
    return proc, int(match.group(1))


# --------------------------------------------------------------------------------------------
# HTTP

def http(url, token=None, timeout=10):
    """(status, parsed JSON body or None)."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body)
        except ValueError:
            return error.code, None
    except (urllib.error.URLError, OSError):
        return None, None


def wait_until(what, condition, timeout):
    """Polls `condition` until it returns a true value; returns (value, seconds waited)."""
    started = time.monotonic()
    deadline = started + timeout
    while True:
        value = condition()
        if value:
            return value, time.monotonic() - started
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def orch_id_of(port):
    status, body = http(f"http://127.0.0.1:{port}/healthz")
    assert status == 200, f"orchestrator on {port} /healthz: {status}"
    return body["orch_id"]


KNOWN_IDS = []


def status_via_gateway(gateway_port):
    """The orch_id of whichever orchestrator answered /api/v1/status through the gateway."""
    status, body = http(f"http://127.0.0.1:{gateway_port}/api/v1/status", token=ADMIN_TOKEN)
    if status != 200 or not isinstance(body, dict):
        return None
    if body.get("orch_id"):
        return body["orch_id"]
    # Without an orch_id field, the status still names its staging URL, whose path holds the id.
    text = json.dumps(body)
    found = [orch_id for orch_id in KNOWN_IDS if orch_id in text]
    return found[0] if len(found) == 1 else None


# --------------------------------------------------------------------------------------------
# Tests

def test_bad_config():
    for args, what in ((["--orchestrators", "http://127.0.0.1:1 high"], "priority not an integer"),
                       (["--orchestrators", "ftp://127.0.0.1:1"], "not an http URL"),
                       (["--listen", "nowhere"], "listen without port"),
                       (["--health-interval", "soon"], "bad duration")):
        proc = subprocess.run([SWARM, "gateway", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                              timeout=30)
        lines = proc.stderr.strip().splitlines()
        check(proc.returncode == 2, f"{what}: exit 2, got {proc.returncode}: {proc.stderr}")
        check(len(lines) == 1 and lines[0].startswith("swarm: error: "), f"{what}: one error line: {proc.stderr!r}")


def test_failover(tmp):
    primary, primary_port = start_orch("primary", os.path.join(tmp, "primary"))
    standby, standby_port = start_orch("standby", os.path.join(tmp, "standby"))
    primary_id = orch_id_of(primary_port)
    standby_id = orch_id_of(standby_port)
    check(primary_id != standby_id, "two orchestrators have different ids")
    KNOWN_IDS.extend([primary_id, standby_id])
    primary_url = f"http://127.0.0.1:{primary_port}"
    standby_url = f"http://127.0.0.1:{standby_port}"

    # The standby is listed first: priority, not order, must make the primary active.
    gateway = Proc("gateway", [SWARM, "gateway", "--listen", "127.0.0.1:0",
                               "--orchestrators", f"{standby_url} 50, {primary_url} 100",
                               "--health-interval", f"{INTERVAL}s", "--health-timeout", "1s"])
    gateway_port = int(gateway.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
    base = f"http://127.0.0.1:{gateway_port}"

    status, health = http(f"{base}/healthz")
    check(status == 200 and health["role"] == "gateway" and health["status"] == "ok", f"gateway /healthz: {health}")
    check(health["active"] == primary_url, f"active is the primary at readiness: {health}")
    check(status_via_gateway(gateway_port) == primary_id, "/api/v1/status through the gateway reaches the primary")
    status, unauthorized = http(f"{base}/api/v1/status")
    check(status == 401, f"the orchestrator's 401 comes back through the gateway, got {status}")

    status, view = http(f"{base}/status")
    check(status == 200 and view["active"] == primary_url, f"/status active: {view}")
    by_url = {o["url"]: o for o in view.get("orchestrators", [])}
    check(by_url.get(primary_url, {}).get("priority") == 100 and by_url.get(standby_url, {}).get("priority") == 50,
          f"/status priorities: {view}")
    check(by_url.get(standby_url, {}).get("orch_id") == standby_id and by_url[standby_url]["healthy"] is True,
          f"/status standby: {view}")
    status, binhost = http(f"{base}/binhost")
    check(status == 200 and binhost["orchestrator"] == primary_url and binhost["url"].startswith("http"),
          f"/binhost: {binhost}")

    # Failover: SIGKILL the primary.
    primary.kill()
    _, waited = wait_until("the gateway to make the standby active",
                           lambda: http(f"{base}/healthz")[1]["active"] == standby_url, timeout=10)
    check(waited <= 2 * INTERVAL + 1.5, f"failover took {waited:.2f}s (interval {INTERVAL}s)")
    check(status_via_gateway(gateway_port) == standby_id, "/api/v1/status reaches the standby after failover")
    status, view = http(f"{base}/status")
    primary_state = {o["url"]: o for o in view["orchestrators"]}[primary_url]
    check(primary_state["healthy"] is False and primary_state["last_error"], f"/status shows the primary down: {view}")
    status, binhost = http(f"{base}/binhost")
    check(status == 200 and binhost["orchestrator"] == standby_url, f"/binhost after failover: {binhost}")
    check(any("failover:" in line and primary_url in line and standby_url in line for line in gateway.output()),
          "the failover is logged")

    # Failback: the primary returns on the same port with the same data dir.
    primary, port_again = start_orch("primary (restarted)", os.path.join(tmp, "primary"), port=primary_port)
    check(port_again == primary_port, "restarted primary on the same port")
    check(orch_id_of(primary_port) == primary_id, "restarted primary keeps its id (same data dir)")
    _, waited = wait_until("requests to go back to the primary",
                           lambda: status_via_gateway(gateway_port) == primary_id, timeout=10)
    check(waited <= 2 * INTERVAL + 1.5, f"failback took {waited:.2f}s")
    check(http(f"{base}/healthz")[1]["active"] == primary_url, "primary active again")

    # Both down: 503 with the protocol's error shape.
    primary.kill()
    standby.kill()
    wait_until("no active orchestrator", lambda: http(f"{base}/healthz")[1]["active"] is None, timeout=10)
    status, body = http(f"{base}/api/v1/status", token=ADMIN_TOKEN)
    check(status == 503 and body == {"error": "no healthy orchestrator", "kind": "unavailable"},
          f"no orchestrator: 503, got {status} {body}")
    status, body = http(f"{base}/binhost")
    check(status == 503 and body.get("kind") == "unavailable", f"/binhost with none: {status} {body}")

    # SIGTERM: clean stop, exit 0.
    gateway.signal(signal.SIGTERM)
    try:
        code = gateway.popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        code = None
    check(code == 0, f"gateway exits 0 on SIGTERM, got {code}")
    for proc in harness.children():
        for line in proc.output():
            check("internal error" not in line and "Sanitizer" not in line, f"{proc.name}: {line}")


def test_drone_through_gateway():
    """A real drone whose --url is the gateway builds a small plan: register, heartbeats,
    long-poll claims, streamed uploads and reports all go through the proxy."""
    sw = harness.Swarm("gateway-drone")
    orch = sw.start_orch("orch")
    gateway_url = sw.start_gateway([orch.url])
    status, health = http(f"{gateway_url}/healthz")
    check(status == 200 and health["active"] == orch.url, f"the gateway fronts the orchestrator: {health}")
    plan = harness.make_plan(12, seed=4)
    plan_file = sw.write_plan(plan)
    sw.submit(orch, plan)
    drone = sw.start_drone(gateway_url, "gwd", sw.enroll(orch, "gwd"), plan_file, slots=2)
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 12, 40, "the plan built through the gateway")
    sw.wait_until(lambda: len([b for b in harness.builds(orch) if b["result"] == "success"]) == 12, 15,
                  "every build reported through the gateway")
    builds = harness.builds(orch)
    check(len(builds) == 12 and {b["drone"] for b in builds} == {"gwd"},
          f"12 builds, each once, all by the drone behind the gateway: {len(builds)}")
    drones = {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}
    check(drones["gwd"]["online"], "the drone's heartbeats reach the orchestrator through the gateway")
    staged = [f for f in harness.staging_files(orch) if f.endswith(".gpkg.tar")]
    check(len(staged) == 12, f"12 artifacts streamed into staging through the gateway: {len(staged)}")
    check(not [line for line in drone.output() if "missing build dependency" in line],
          "no build missed a dependency")
    for proc in sw.procs:
        bad = proc.bad_lines()
        check(not bad, f"{proc.name} printed no internal error or sanitizer report: {bad[:3]}")


def main():
    if "--stand-in" in sys.argv:
        stand_in_main(sys.argv)
        return 0
    print(f"orchestrator: {'swarm orch' if USE_REAL_ORCH else 'Python stand-in (swarm orch not available)'}")
    with tempfile.TemporaryDirectory(prefix="swarm-e2e-gateway-") as tmp:
        try:
            test_bad_config()
            test_failover(tmp)
            if USE_REAL_ORCH:
                test_drone_through_gateway()
        except Exception as error:  # a broken step fails the test with what it saw
            FAILURES.append(f"{type(error).__name__}: {error}")
            print(f"FAIL: {error}", file=sys.stderr)
            for child in harness.children():
                print(f"--- {child.name} output:\n" + "\n".join(child.output()[-40:]), file=sys.stderr)
        finally:
            harness.kill_children()
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
