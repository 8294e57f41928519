#!/usr/bin/env python3
"""End-to-end: `swarm gateway` in front of two real `swarm orch` processes fails over and back.

A primary (priority 100) and a standby (priority 50) orchestrator, each with its own data dir and
the same admin token, behind a gateway probing every 0.3 s. /api/v1/status through the gateway
must reach the primary; after SIGKILL of the primary it must reach the standby; once the primary
is restarted on the same port with the same data dir, it must reach the primary again. Also:
/healthz, /status, /binhost, bad configuration (exit 2), SIGTERM (exit 0), and a real drone
building a plan through the gateway.

There is no stand-in: when `swarm orch` does not start or answer, this test fails. Every wait
polls /healthz or the state it waits for; none is a sleep, and no assertion is about how long
anything took (the timeouts only stop a test that would otherwise hang).
"""

import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SWARM = harness.SWARM
ADMIN_TOKEN = "e2e-gateway-admin-token"
INTERVAL = "0.3s"
WAIT = 60  # seconds before a wait gives up: generous, for sanitizer builds on 2 cores


def http(url, token=None):
    """(status, parsed JSON body or None); (None, None) when nobody answers."""
    try:
        result = harness.http("GET", url, token=token, timeout=10)
    except OSError:
        return None, None
    try:
        return result.status, result.json()
    except ValueError:
        return result.status, None


def healthz(url):
    status, body = http(f"{url}/healthz")
    return body if status == 200 and isinstance(body, dict) else {}


def start_orch(sw, name):
    """A real `swarm orch` with ADMIN_TOKEN as its admin token (written to its data dir, as an
    operator provisions one token for both orchestrators of a pair)."""
    data_dir = os.path.join(sw.dir, name)
    harness.write_file(os.path.join(data_dir, "admin.token"), ADMIN_TOKEN + "\n")
    os.chmod(os.path.join(data_dir, "admin.token"), 0o600)
    return sw.start_orch(name, data_dir=data_dir)


def status_via_gateway(gateway_url, known_ids):
    """The orch_id of whichever orchestrator answered /api/v1/status through the gateway."""
    status, body = http(f"{gateway_url}/api/v1/status", token=ADMIN_TOKEN)
    if status != 200 or not isinstance(body, dict):
        return None
    if body.get("orch_id"):
        return body["orch_id"]
    # Without an orch_id field, the status still names its staging URL, whose path holds the id.
    text = str(body)
    found = [orch_id for orch_id in known_ids if orch_id in text]
    return found[0] if len(found) == 1 else None


def test_bad_config(sw):
    for args, what in ((["--orchestrators", "http://127.0.0.1:1 high"], "priority not an integer"),
                       (["--orchestrators", "ftp://127.0.0.1:1"], "not an http URL"),
                       (["--listen", "nowhere"], "listen without port"),
                       (["--health-interval", "soon"], "bad duration")):
        proc = subprocess.run([SWARM, "gateway", "--listen", "127.0.0.1:0", *args], capture_output=True, text=True,
                              timeout=30)
        lines = proc.stderr.strip().splitlines()
        sw.check(proc.returncode == 2, f"{what}: exit 2, got {proc.returncode}: {proc.stderr}")
        sw.check(len(lines) == 1 and lines[0].startswith("swarm: error: "), f"{what}: one error line: {proc.stderr!r}")


def test_failover(sw):
    primary = start_orch(sw, "primary")
    standby = start_orch(sw, "standby")
    primary_id = harness.orch_id(primary)
    standby_id = harness.orch_id(standby)
    sw.check(primary_id != standby_id, "two orchestrators have different ids")
    known_ids = [primary_id, standby_id]

    # The standby is listed first: priority, not order, must make the primary active.
    gateway = sw.spawn("gateway", [SWARM, "gateway", "--listen", "127.0.0.1:0",
                                   "--orchestrators", f"{standby.url} 50, {primary.url} 100",
                                   "--health-interval", INTERVAL, "--health-timeout", "1s"])
    port = int(gateway.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
    base = f"http://127.0.0.1:{port}"
    sw.wait_until(lambda: healthz(base).get("status") == "ok", WAIT, "gateway /healthz")

    health = healthz(base)
    sw.check(health.get("role") == "gateway", f"gateway /healthz: {health}")
    sw.check(health.get("active") == primary.url, f"active is the primary at readiness: {health}")
    sw.check(status_via_gateway(base, known_ids) == primary_id,
             "/api/v1/status through the gateway reaches the primary")
    status, _ = http(f"{base}/api/v1/status")
    sw.check(status == 401, f"the orchestrator's 401 comes back through the gateway, got {status}")

    status, view = http(f"{base}/status")
    sw.check(status == 200 and view["active"] == primary.url, f"/status active: {view}")
    by_url = {o["url"]: o for o in view.get("orchestrators", [])}
    sw.check(by_url.get(primary.url, {}).get("priority") == 100 and by_url.get(standby.url, {}).get("priority") == 50,
             f"/status priorities: {view}")
    sw.check(by_url.get(standby.url, {}).get("orch_id") == standby_id and by_url[standby.url]["healthy"] is True,
             f"/status standby: {view}")
    status, binhost = http(f"{base}/binhost")
    sw.check(status == 200 and binhost["orchestrator"] == primary.url and binhost["url"].startswith("http"),
             f"/binhost: {binhost}")

    # Failover: SIGKILL the primary; the gateway must notice and route to the standby.
    primary.proc.kill()
    sw.wait_until(lambda: healthz(base).get("active") == standby.url, WAIT, "the gateway to make the standby active")
    sw.check(status_via_gateway(base, known_ids) == standby_id, "/api/v1/status reaches the standby after failover")
    status, view = http(f"{base}/status")
    primary_state = {o["url"]: o for o in view["orchestrators"]}[primary.url]
    sw.check(primary_state["healthy"] is False and primary_state["last_error"],
             f"/status shows the primary down: {view}")
    status, binhost = http(f"{base}/binhost")
    sw.check(status == 200 and binhost["orchestrator"] == standby.url, f"/binhost after failover: {binhost}")
    sw.wait_until(lambda: any("failover:" in line and primary.url in line and standby.url in line
                              for line in gateway.output()), WAIT, "the failover in the gateway's log")

    # Failback: the primary returns on the same port with the same data dir.
    sw.restart_orch(primary)
    sw.check(harness.orch_id(primary) == primary_id, "restarted primary keeps its id (same data dir)")
    sw.wait_until(lambda: status_via_gateway(base, known_ids) == primary_id, WAIT,
                  "requests to go back to the primary")
    sw.check(healthz(base).get("active") == primary.url, "primary active again")

    # Both down: 503 with the protocol's error shape.
    primary.proc.kill()
    standby.proc.kill()
    sw.wait_until(lambda: healthz(base).get("active", "unknown") is None, WAIT, "no active orchestrator")
    status, body = http(f"{base}/api/v1/status", token=ADMIN_TOKEN)
    sw.check(status == 503 and body == {"error": "no healthy orchestrator", "kind": "unavailable"},
             f"no orchestrator: 503, got {status} {body}")
    status, body = http(f"{base}/binhost")
    sw.check(status == 503 and (body or {}).get("kind") == "unavailable", f"/binhost with none: {status} {body}")

    # SIGTERM: clean stop, exit 0.
    gateway.signal(signal.SIGTERM)
    try:
        code = gateway.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        code = None
    sw.check(code == 0, f"gateway exits 0 on SIGTERM, got {code}")


def test_drone_through_gateway(sw):
    """A real drone whose --url is the gateway builds a small plan: register, heartbeats,
    long-poll claims, streamed uploads and reports all go through the proxy."""
    orch = sw.start_orch("orch")
    gateway_url = sw.start_gateway([orch.url])
    health = healthz(gateway_url)
    sw.check(health.get("active") == orch.url, f"the gateway fronts the orchestrator: {health}")
    plan = harness.make_plan(12, seed=4)
    plan_file = sw.write_plan(plan)
    sw.submit(orch, plan)
    drone = sw.start_drone(gateway_url, "gwd", sw.enroll(orch, "gwd"), plan_file, slots=2)
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 12, WAIT, "the plan built through the gateway")
    sw.wait_until(lambda: len([b for b in harness.builds(orch) if b["result"] == "success"]) == 12, WAIT,
                  "every build reported through the gateway")
    builds = harness.builds(orch)
    sw.check(len(builds) == 12 and {b["drone"] for b in builds} == {"gwd"},
             f"12 builds, each once, all by the drone behind the gateway: {len(builds)}")
    drones = {d["name"]: d for d in orch.api("GET", "/api/v1/drones").json()["drones"]}
    sw.check(drones["gwd"]["online"], "the drone's heartbeats reach the orchestrator through the gateway")
    staged = [f for f in harness.staging_files(orch) if f.endswith(".gpkg.tar")]
    sw.check(len(staged) == 12, f"12 artifacts streamed into staging through the gateway: {len(staged)}")
    sw.check(not [line for line in drone.output() if "missing build dependency" in line],
             "no build missed a dependency")


def main():
    sw = harness.Swarm("gateway")
    try:
        test_bad_config(sw)
        test_failover(sw)
        test_drone_through_gateway(sw)
    except Exception as error:  # a broken step (`swarm orch` not starting, a wait giving up) fails the test
        sw.check(False, f"{type(error).__name__}: {error}")
    sw.finish()  # no internal error or sanitizer report, no token in any output; exits 0 or 1


if __name__ == "__main__":
    main()
