#!/usr/bin/env python3
"""End-to-end: HTTPS on the orchestrator and the gateway, verified against a throw-away CA.

openssl makes a CA, a certificate for 127.0.0.1 signed by it, and a second (rogue) CA. The
orchestrator and the gateway serve HTTPS with that certificate; the gateway verifies the
orchestrator with --ca. Then:

1. `swarm status --ca CA` answers through the gateway and straight from the orchestrator; with
   the system's CAs or with the rogue CA it fails with one `swarm:` line and sends nothing.
2. A drone with --ca registers through the HTTPS gateway and builds a plan (fake builder); one
   with the rogue CA never registers.
3. Plain HTTP to the TLS port gets no API answer.
4. The HTTPS gateway hands out its own https:// binhost URL and serves the binhost's files.
"""

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import SWARM, Swarm, make_plan  # noqa: E402
from tls_certs import make_ca, make_server_cert  # noqa: E402


def get(url, cafile, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    context = ssl.create_default_context(cafile=cafile)
    with urllib.request.urlopen(request, context=context, timeout=10 * harness.TIME_SCALE) as response:
        return response.status, json.loads(response.read() or b"null")


def main():
    sw = Swarm("tls")
    pki = os.path.join(sw.dir, "pki")
    os.makedirs(pki)
    ca = make_ca(pki, "ca")
    rogue = make_ca(pki, "rogue")
    cert, key = make_server_cert(pki, "ca")

    data_dir = os.path.join(sw.dir, "orch")
    orch_proc = sw.spawn("orch", [SWARM, "orch", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
                                  "--tls-cert", cert, "--tls-key", key, "--heartbeat-interval", "0.5s",
                                  "--claim-wait", "2s", "--maintenance-interval", "1s"])
    orch_port = int(orch_proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1))
    orch_url = f"https://127.0.0.1:{orch_port}"
    sw.wait_until(lambda: get(orch_url + "/healthz", ca)[0] == 200, 10, "the orchestrator's /healthz over https")
    admin_file = os.path.join(data_dir, "admin.token")
    with open(admin_file) as f:
        sw.secrets.append(f.read().strip())

    gateway_proc = sw.spawn("gateway", [SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", orch_url,
                                        "--health-interval", "0.3s", "--tls-cert", cert, "--tls-key", key,
                                        "--ca", ca])
    gateway_port = int(gateway_proc.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
    gateway_url = f"https://127.0.0.1:{gateway_port}"
    sw.wait_until(lambda: get(gateway_url + "/readyz", ca)[0] == 200, 30,
                  "the gateway ready: it verified the orchestrator's certificate with --ca")

    # --- served over HTTPS, the gateway hands out its own binhost URL and serves it --------------
    status, binhost = get(gateway_url + "/binhost", ca)
    sw.check(status == 200 and binhost["url"] == gateway_url + "/production" and binhost["through_gateway"],
             f"the https gateway hands out its own binhost URL ({binhost})")
    status, desktop = get(gateway_url + "/binhost?profile=desktop", ca)
    sw.check(desktop["url"] == gateway_url + "/p/desktop/production", f"and a profile's below /p/ ({desktop})")
    try:
        get(gateway_url + "/production/Packages", ca)
        index = 200
    except urllib.error.HTTPError as error:
        index = error.code
    sw.check(index == 404, f"the binhost's files come from the orchestrator (no release yet: 404, got {index})")

    # --- the CLI verifies the server ------------------------------------------------------------
    def verb(url, *extra):
        return subprocess.run([SWARM, *extra, "--url", url, "--token-file", admin_file],
                              capture_output=True, text=True, timeout=60)

    for what, url in (("gateway", gateway_url), ("orchestrator", orch_url)):
        good = verb(url, "status", "--json", "--ca", ca)
        sw.check(good.returncode in (0, 1) and "counts" in json.loads(good.stdout or "{}"),
                 f"status --ca through the {what} answers ({good.returncode} {good.stderr.strip()[-200:]})")
        for label, extra in (("the system's CAs", ()), ("the rogue CA", ("--ca", rogue))):
            for name in ("status", "drones"):
                bad = verb(url, name, *extra)
                lines = bad.stderr.strip().splitlines()
                sw.check(bad.returncode == 3 and len(lines) == 1 and lines[0].startswith("swarm:")
                         and "certificate" in lines[0],
                         f"{name} against the {what} with {label} is refused in one line naming the certificate "
                         f"({bad.returncode} {bad.stderr.strip()[-200:]!r})")
        unverified = verb(url, "status", "--json")
        sw.check(unverified.returncode == 3 and json.loads(unverified.stdout)["reachable"] is False,
                 "status --json says unreachable when the certificate does not verify")

    # --- plain HTTP to the TLS port gets no API answer -----------------------------------------
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{orch_port}/api/v1/status", timeout=10) as response:
            plain = response.status
    except Exception as error:  # noqa: BLE001 - any failure is the point
        plain = type(error).__name__
    sw.check(plain != 200, f"plain HTTP to the TLS port gets no answer ({plain})")

    # --- drones verify the gateway ---------------------------------------------------------------
    plan = make_plan(6, seed=3, build_seconds=(20, 60), width=6)  # one layer: no binhost fetches
    with open(admin_file) as f:
        admin = f.read().strip()
    submitted = urllib.request.Request(orch_url + "/api/v1/plan", data=json.dumps({"plan": plan, "mode": "replace"})
                                       .encode(), headers={"Authorization": f"Bearer {admin}",
                                                           "Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(submitted, context=ssl.create_default_context(cafile=ca), timeout=30) as response:
        sw.check(response.status == 200, "plan submitted over https")
    orch = harness.Orch(orch_proc, data_dir, orch_port, [])
    plan_file = sw.write_plan(plan)
    sw.start_drone(gateway_url, "d1", sw.enroll(orch, "d1"), plan_file, slots=2, time_scale=0.01,
                   extra=["--ca", ca])
    rogue_drone = sw.start_drone(gateway_url, "d2", sw.enroll(orch, "d2"), plan_file, time_scale=0.01,
                                 extra=["--ca", rogue])

    def received():
        return get(orch_url + "/api/v1/status", ca, admin)[1]["counts"].get("received", 0)
    sw.wait_until(lambda: received() == len(plan["packages"]), 120, "every package built through the https gateway")
    drones = {d["name"]: d for d in get(orch_url + "/api/v1/drones", ca, admin)[1]["drones"]}
    sw.check(drones["d1"]["state"] != "enrolled", f"d1 registered over https ({drones['d1']['state']})")
    sw.check("d2" not in drones or drones["d2"]["state"] == "enrolled",
             f"d2, which does not trust the server's CA, never registered ({drones.get('d2')})")
    sw.check(any("certificate" in line for line in rogue_drone.output()),
             "d2 says why: the server's certificate does not verify")
    sw.finish()


if __name__ == "__main__":
    main()
