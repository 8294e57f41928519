#!/usr/bin/env python3
"""End-to-end: metrics, health and webhooks.

A small swarm (orchestrator, gateway, one drone with --listen, fake builder, one package made to
fail) builds a plan while a webhook receiver on loopback listens. Then:

1. GET /metrics of the orchestrator, the gateway and the drone: each scrape passes
   `promtool check metrics` (the prometheus package; its absence fails the test), and the values
   agree with the swarm's state: builds by result equal the received packages, packages by state
   sum to the plan, routes are labelled by their pattern, never by a raw path.
2. /healthz and /readyz of every role: ready when serving; a gateway whose only orchestrator is
   down and a drone that cannot register are alive (200) but not ready (503).
3. Webhooks: the receiver gets plan-complete and package-blocked (only the events it asked for),
   with the configured secret header, and a delivery first answered 500 is retried.
"""

import http.server as http_server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Swarm, dependants_closure, http, make_plan  # noqa: E402

SECRET = "hook-secret-7f3a"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Receiver:
    """An HTTP server on 127.0.0.1:0 recording every POST; the first one is answered 500."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    status = 500 if not receiver.requests else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "status": status,
                                              "body": json.loads(body or b"null")})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def seen(self):
        with self.lock:
            return list(self.requests)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(sw, url, what):
    result = http("GET", url + "/metrics", timeout=10)
    sw.check(result.status == 200, f"{what} /metrics answers 200 without a token ({result.status})")
    content_type = result.headers.get("Content-Type", "")
    sw.check(content_type.startswith("text/plain") and "version=0.0.4" in content_type,
             f"{what} /metrics is the text format 0.0.4 ({content_type})")
    text = result.body.decode()
    promtool = shutil.which("promtool")
    if not sw.check(promtool is not None, "promtool is installed (Debian package prometheus; tools/setup.sh)"):
        return text, {}
    check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    sw.check(check.returncode == 0, f"promtool check metrics accepts the {what} scrape: {check.stdout}{check.stderr}")
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not sw.check(match is not None, f"{what}: sample line parses: {line!r}"):
            continue
        labels = tuple(sorted(LABEL.findall(match.group(2) or "")))
        samples[(match.group(1), labels)] = float(match.group(3))
    return text, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def total(samples, name, **labels):
    """Sum over every series of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def series(samples, name):
    return [dict(ls) for (n, ls) in samples if n == name]


def main():
    sw = Swarm("observability")
    receiver = Receiver()
    everything = Receiver()  # subscribed to every event

    # A bad webhook configuration is refused with one line, before the orchestrator starts.
    bad = os.path.join(sw.dir, "bad.conf")
    harness.write_file(bad, "[webhook.x]\nurl = http://127.0.0.1:1/\nevents = plan-done\n")
    result = subprocess.run([harness.SWARM, "orch", "--config", bad, "--data-dir", os.path.join(sw.dir, "bad"),
                             "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    sw.check(result.returncode != 0 and result.stderr.startswith("swarm:") and "plan-done" in result.stderr,
             f"an unknown webhook event is a one-line error: {result.returncode} {result.stderr.strip()!r}")

    config = os.path.join(sw.dir, "orch.conf")
    harness.write_file(config, f"""
[orch]
disk_low = 1000000G
no_release_after = 1s

[webhook.ops]
url = {receiver.url}/hook
events = plan-complete, package-blocked
header = X-Swarm-Secret: {SECRET}

[webhook.all]
url = {everything.url}/all
events = *
""")
    orch = sw.start_orch("orch", extra=["--config", config, "--package-failure-drones", "1"])
    sw.secrets.append(SECRET)
    gateway = sw.start_gateway([orch.url])

    plan = make_plan(16, seed=11, build_seconds=(20, 120), width=4)
    culprit = plan["packages"][5]["cpv"]
    doomed = dependants_closure(plan, [culprit])
    expected_received = len(plan["packages"]) - 1 - len(doomed)
    plan_file = sw.write_plan(plan)
    d1_token = sw.enroll(orch, "d1")
    drone = sw.start_drone(gateway, "d1", d1_token, plan_file, slots=2, fail=culprit, time_scale=0.01,
                           extra=["--listen", "127.0.0.1:0"])
    drone_url = "http://127.0.0.1:" + drone.wait_for_line(r"drone listening on 127\.0\.0\.1:(\d+)").group(1)
    # Registered (ready) before there is work: its claims wait, and the plan wakes them.
    sw.wait_until(lambda: http("GET", drone_url + "/readyz").status == 200, 30, "the drone ready")
    sw.wait_until(lambda: 'route="/api/v1/claim"' in http("GET", orch.url + "/metrics").body.decode(), 30,
                  "a claim answered without work (the drone long-polls)")
    sw.submit(orch, plan)

    def settled():
        counts = sw.status(orch)["counts"]
        return (counts["received"] == expected_received and counts["blocked"] == 1
                and counts["dep-failed"] == len(doomed) and counts["delegated"] == 0)
    sw.wait_until(settled, 90, "the plan settled: one blocked, its dependants dep-failed, the rest received")
    sw.wait_until(lambda: all(b["result"] != "running" for b in harness.builds(orch)), 30, "all builds ended")
    # Through the gateway once, so that its request counter has a proxied route.
    sw.check(http("GET", gateway + "/api/v1/status", token=orch.admin_token).status == 200, "status via the gateway")

    # --- health -------------------------------------------------------------------------------
    for what, url in (("orch", orch.url), ("gateway", gateway), ("drone", drone_url)):
        sw.check(http("GET", url + "/healthz").status == 200, f"{what} /healthz is 200")
        ready = http("GET", url + "/readyz")
        sw.check(ready.status == 200 and ready.json()["status"] == "ready", f"{what} /readyz is 200 ready")

    dead = f"http://127.0.0.1:{free_port()}"
    lonely = sw.start_gateway([dead])
    sw.check(http("GET", lonely + "/healthz").status == 200, "a gateway without a live orchestrator is alive")
    not_ready = http("GET", lonely + "/readyz")
    sw.check(not_ready.status == 503 and "no healthy orchestrator" in not_ready.json()["reason"],
             f"... but not ready: {not_ready.status} {not_ready.body[:120]!r}")
    lost = sw.start_drone(dead, "lost", "swd_not-a-real-token-000000000000", plan_file,
                          extra=["--listen", "127.0.0.1:0"])
    lost_url = "http://127.0.0.1:" + lost.wait_for_line(r"drone listening on 127\.0\.0\.1:(\d+)").group(1)
    sw.check(http("GET", lost_url + "/healthz").status == 200, "a drone that cannot register is alive")
    lost_ready = http("GET", lost_url + "/readyz")
    sw.check(lost_ready.status == 503 and "not registered" in lost_ready.json()["reason"],
             f"... but not ready: {lost_ready.status} {lost_ready.body[:120]!r}")

    # --- metrics ------------------------------------------------------------------------------
    _, om = scrape(sw, orch.url, "orchestrator")
    received = sw.status(orch)["counts"]["received"]
    sw.check(value(om, "swarm_builds_total", result="success") == received == expected_received,
             f"swarm_builds_total{{result=success}} equals the received packages "
             f"({value(om, 'swarm_builds_total', result='success')} vs {received})")
    sw.check((value(om, "swarm_builds_total", result="failure") or 0) >= 1, "a failed build is counted")
    sw.check(total(om, "swarm_packages", profile="default") == len(plan["packages"]),
             f"swarm_packages sums to the plan size ({total(om, 'swarm_packages', profile='default')})")
    sw.check(value(om, "swarm_packages", profile="default", state="blocked") == 1
             and value(om, "swarm_packages", profile="default", state="received") == expected_received
             and value(om, "swarm_packages", profile="default", state="dep-failed") == len(doomed),
             "swarm_packages by state matches the status counts")
    sw.check(total(om, "swarm_drones") == 1, f"one drone counted by state ({series(om, 'swarm_drones')})")
    sw.check(value(om, "swarm_build_duration_seconds_count", result="success") == expected_received,
             "the build duration histogram counts every successful build")
    sw.check(total(om, "swarm_claim_wait_seconds_count") >= received, "every lease's claim wait is observed")
    sw.check((value(om, "swarm_upload_bytes_total") or 0) > 0, "uploaded bytes are counted")
    sw.check((value(om, "swarm_staging_free_bytes") or 0) > 0, "staging free bytes are reported")
    sw.check((value(om, "swarm_claim_wakeup_latency_seconds_count") or 0) >= 1,
             "a waiting claim woken by new work is observed in the wake-up latency histogram")
    for name in ("swarm_upload_failures_total",
                 "swarm_lease_expiries_total", "swarm_circuit_breaker_trips_total"):
        sw.check(any(n == name for (n, _) in om), f"{name} is exposed")
    routes = {labels["route"] for labels in series(om, "swarm_http_requests_total")}
    sw.check("/api/v1/claim" in routes and "/api/v1/leases/([0-9a-f]+)/report" in routes,
             f"HTTP requests are labelled by route pattern ({sorted(routes)[:6]})")
    sw.check(not any(re.search(r"/leases/[0-9a-f]{6,}", route) for route in routes), "never by a raw lease path")
    sw.check(total(om, "swarm_http_requests_total", route="/api/v1/claim", code="200") >= received,
             "claims are counted with their status code")
    sw.check(total(om, "swarm_webhook_deliveries_total", result="retry") >= 1, "the webhook retry is counted")

    _, gm = scrape(sw, gateway, "gateway")
    sw.check(value(gm, "swarm_gateway_orchestrator_up", orchestrator=orch.url) == 1
             and value(gm, "swarm_gateway_orchestrator_active", orchestrator=orch.url) == 1,
             "the gateway reports its orchestrator up and active")
    sw.check(total(gm, "swarm_http_requests_total", route="/api/.*") >= received,
             "the gateway counts the proxied calls under their route pattern")
    _, lm = scrape(sw, lonely, "gateway without an orchestrator")
    sw.check(value(lm, "swarm_gateway_orchestrator_up", orchestrator=dead) == 0, "... which reports it down")

    # The drone forgets a lease just after the orchestrator acknowledged its report.
    sw.wait_until(lambda: "swarm_drone_slots_busy 0\n" in http("GET", drone_url + "/metrics").body.decode(), 30,
                  "the drone's slots all free")
    _, dm = scrape(sw, drone_url, "drone")
    sw.check(value(dm, "swarm_drone_builds_total", result="success") == expected_received,
             f"the drone counts its successful builds ({value(dm, 'swarm_drone_builds_total', result='success')})")
    sw.check(value(dm, "swarm_drone_builds_total", result="failure") >= 1, "and its failed one")
    sw.check(value(dm, "swarm_drone_uploads_total", result="ok") == expected_received, "and its uploads")
    sw.check(value(dm, "swarm_drone_slots") == 2 and value(dm, "swarm_drone_slots_busy") == 0,
             "slots: 2, none busy once the plan is done")
    sw.check((value(dm, "swarm_drone_spool_free_bytes") or 0) > 0 and value(dm, "swarm_drone_registered") == 1,
             "spool free bytes and registration are reported")
    _, xm = scrape(sw, lost_url, "unregistered drone")
    sw.check(value(xm, "swarm_drone_registered") == 0, "the unregistered drone says so")

    # --- webhooks -----------------------------------------------------------------------------
    def delivered(event):
        return [r for r in receiver.seen() if r["status"] == 200 and r["body"]["event"] == event]
    sw.wait_until(lambda: delivered("plan-complete") and delivered("package-blocked"), 60,
                  "plan-complete and package-blocked delivered")
    seen = receiver.seen()
    sw.check(all(r["path"] == "/hook" for r in seen), "deliveries go to the configured URL")
    sw.check({r["body"]["event"] for r in seen} <= {"plan-complete", "package-blocked"},
             f"only the subscribed events are sent ({sorted({r['body']['event'] for r in seen})})")
    sw.check(all(r["headers"].get("X-Swarm-Secret") == SECRET for r in seen), "every delivery has the secret header")
    sw.check(all(r["headers"].get("Content-Type") == "application/json" for r in seen), "bodies are JSON")
    blocked = delivered("package-blocked")[0]["body"]
    sw.check(blocked["profile"] == "default" and blocked["details"]["package"] == culprit
             and blocked["details"]["drone"] == "d1" and re.match(r"\d{4}-\d\d-\d\dT", blocked["time"]),
             f"package-blocked names the profile, package, drone and time: {blocked}")
    complete = delivered("plan-complete")[0]["body"]
    sw.check(complete["profile"] == "default" and complete["details"]["total"] == len(plan["packages"])
             and complete["details"]["received"] == expected_received and complete["details"]["blocked"] == 1,
             f"plan-complete carries the counts: {complete}")
    sw.check(len(delivered("plan-complete")) == 1, "plan-complete is sent once")
    first = seen[0]
    sw.check(first["status"] == 500 and any(r["status"] == 200 and r["body"] == first["body"] for r in seen[1:]),
             "the delivery answered 500 was retried and then delivered")

    # --- every other event, to the receiver subscribed to all of them -------------------------
    def arrived(event):
        return [r["body"] for r in everything.seen() if r["status"] == 200 and r["body"]["event"] == event]
    admin = ["--url", orch.url, "--token-file", orch.admin_token_file]
    verify = subprocess.run([harness.SWARM, "verify", *admin, "--threshold", "0", "--json"], capture_output=True,
                            text=True, timeout=60)
    sw.check(verify.returncode != 0, f"verify with threshold 0 fails on the blocked package ({verify.returncode})")
    sw.wait_until(lambda: arrived("verify-failed"), 60, "verify-failed delivered")
    final = subprocess.run([harness.SWARM, "finalize", *admin, "--yes", "--force", "--json"], capture_output=True,
                           text=True, timeout=60)
    sw.check(final.returncode == 0, f"finalize --force publishes ({final.stderr.strip()[-200:]})")
    sw.wait_until(lambda: arrived("release-finalized"), 60, "release-finalized delivered")
    sw.check(arrived("release-finalized")[0]["profile"] == "default", "release-finalized names its profile")
    drone.kill()
    sw.wait_until(lambda: any(b["details"]["drone"] == "d1" for b in arrived("drone-offline")), 60,
                  "drone-offline delivered for the killed drone")
    sw.start_drone(gateway, "d1", d1_token, plan_file, slots=2, time_scale=0.01)
    sw.wait_until(lambda: any(b["details"]["drone"] == "d1" for b in arrived("drone-back")), 60,
                  "drone-back delivered when it returns")
    grounded = subprocess.run([harness.SWARM, "ground", "d1", *admin, "--yes"], capture_output=True, text=True,
                              timeout=60)
    sw.check(grounded.returncode == 0, f"swarm ground d1 ({grounded.stderr.strip()[-200:]})")
    sw.wait_until(lambda: any(b["details"]["drone"] == "d1" for b in arrived("drone-grounded")), 60,
                  "drone-grounded delivered")
    sw.wait_until(lambda: arrived("disk-low"), 60, "disk-low delivered (staging has less free space than 1000000G)")
    low = arrived("disk-low")[0]["details"]
    sw.check(low["threshold_bytes"] == 1000000 * 2**30 and 0 < low["free_bytes"] < low["threshold_bytes"],
             f"disk-low says how much is free and the threshold: {low}")
    # The release above is more than 1 s old at the next periodic check (every 30 s).
    sw.wait_until(lambda: arrived("no-release"), 90, "no-release delivered (no_release_after = 1s)")
    quiet = arrived("no-release")[0]["details"]
    sw.check(quiet["last_release"] is not None and len(arrived("no-release")) == 1,
             f"no-release names the latest release, once: {quiet}")
    sw.check(arrived("plan-complete") and arrived("package-blocked"), "`*` receives the plan events too")
    sw.finish()


if __name__ == "__main__":
    main()
