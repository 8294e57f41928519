#!/usr/bin/env python3
"""End-to-end: the web dashboard in headless Chromium against a swarm that is building, served by
the orchestrator and through the gateway. The page shows the drones and the counts, then newer
counts once the swarm has progressed (the same page, updated live: no reload); it makes no
external request and logs no console error; without a token the actions are disabled, with the
admin token `pause` reaches the orchestrator. Screenshots go to e2e-output/ under the test's
working directory (ctest prints their paths)."""

import os
import re
import sys

from browser import Browser, find_chromium
from harness import Swarm, http, make_plan

if not find_chromium():
    print("skip: chromium is not installed (tools/setup.sh installs it)")
    sys.exit(0)

OUTPUT = os.path.join(os.getcwd(), "e2e-output")
os.makedirs(OUTPUT, exist_ok=True)

sw = Swarm("dashboard")
# Reads without a token (orch.public_status): the page works for a viewer without one.
orch = sw.start_orch(extra=["--public-status", "true"])
# Slow enough to watch: 10-30 s a package, two drones of two slots.
plan = make_plan(12, width=4, build_seconds=(100, 300))
plan_file = sw.write_plan(plan)
sw.submit(orch, plan)
for name in ("d1", "d2"):
    sw.start_drone(orch.url, name, sw.enroll(orch, name), plan_file, slots=2, time_scale=0.1)
gateway = sw.start_gateway([orch.url])

# The page and its files: embedded, with the security headers.
page = http("GET", orch.url + "/")
sw.check(page.status == 200 and b"/dashboard/app.js" in page.body, "the orchestrator serves the dashboard at /")
csp = page.headers.get("Content-Security-Policy", "")
sw.check("default-src 'self'" in csp and "'unsafe-inline'" not in csp, f"the page has a strict CSP ({csp})")
sw.check(page.headers.get("X-Content-Type-Options") == "nosniff", "the page says nosniff")
script = http("GET", orch.url + "/dashboard/app.js")
sw.check(script.status == 200 and script.headers.get("Content-Type", "").startswith("text/javascript"),
         "the script is served as JavaScript")
sw.check(not re.search(rb"https?://", script.body + page.body + http("GET", orch.url + "/dashboard/style.css").body),
         "the page, script and style name no external URL")
sw.check(http("GET", orch.url + "/dashboard/other.js").status == 404, "no other file is served")
gateway_page = http("GET", gateway + "/")
sw.check(gateway_page.status == 200 and gateway_page.body == page.body
         and gateway_page.headers.get("Content-Security-Policy") == csp, "the gateway serves the page with its CSP")
through = http("GET", gateway + "/dashboard/app.js")
sw.check(through.status == 200 and through.body == script.body, "the gateway serves the same script")


def counts_shown(browser):
    """{name: number} of the count boxes on the page."""
    found = browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.count')].map("
        "b => [b.id.replace('count-', ''), Number(b.querySelector('b').textContent)]))")
    return found or {}


def watch(url, name, token=None):
    browser = Browser(os.path.join(sw.dir, f"chromium-{name}.log"))
    browser.open(url + "/" + (f"#token={token}" if token else ""))
    return browser


def wait_page(browser, predicate, what, timeout=120):
    return sw.wait_until(lambda: predicate(browser.text()) and browser.text(), timeout, what, interval=0.25)


# --- read-only, from the orchestrator ---------------------------------------------------------
viewer = watch(orch.url, "viewer")
first = wait_page(viewer, lambda text: "d1" in text and "d2" in text and "building" in text
                  and viewer.evaluate("document.body.dataset.ready") == "yes",
                  "the page shows both drones building")
shot = viewer.screenshot(os.path.join(OUTPUT, "dashboard.png"))
print(f"screenshot: {shot}")
before = counts_shown(viewer)
sw.check(before.get("total") == 12, f"the page shows the plan's 12 packages ({before})")
status = sw.status(orch)
sw.check(before.get("complete", -1) <= status["counts"]["received"], "the page's complete count is the orchestrator's")
sw.check("Plan by dependency level" in first and re.search(r"^0\s+\d+", first, re.M), "the plan view lists level 0")
sw.check(viewer.evaluate("[...document.querySelectorAll('[data-admin]')].every(b => b.disabled)"),
         "without a token the actions are disabled")
sw.check(viewer.evaluate("document.getElementById('live').textContent") == "live", "the live feed is connected")

# Progress: wait on the orchestrator, then on the same page (no reload) showing it.
target = before["complete"] + 2
sw.wait_until(lambda: sw.status(orch)["counts"]["received"] >= target, 240, f"{target} packages complete")
after = sw.wait_until(lambda: (lambda c: c if c.get("complete", 0) >= target else None)(counts_shown(viewer)),
                      60, "the page shows the new complete count")
sw.check(after["complete"] > before["complete"], f"the counts changed live ({before} -> {after})")
later = viewer.screenshot(os.path.join(OUTPUT, "dashboard-later.png"))
print(f"screenshot: {later}")
builds = viewer.evaluate("document.querySelectorAll('#builds tbody tr').length")
sw.check(builds >= 2, f"build history lists the builds ({builds})")

# A finished build's log opens from the history (it was compressed when the build ended).
viewer.evaluate("document.querySelector('#builds tbody tr a').click()")
log_text = sw.wait_until(lambda: (lambda t: t if "[build " in t else None)(
    viewer.evaluate("document.getElementById('log-text').textContent")), 60, "a build's log is shown to its end")
sw.check("[build success" in log_text or "[build failure" in log_text, f"the log ends with the build's result")
sw.check(not viewer.problems, f"no console error, exception or failed request {viewer.problems[:3]}")
viewer.close()

# --- with the admin token, through the gateway ------------------------------------------------
admin = watch(gateway, "admin", token=orch.admin_token)
wait_page(admin, lambda text: "d1" in text and "d2" in text and "gateway ok" in text,
          "through the gateway: the drones and the gateway's health")
sw.check(admin.evaluate("location.hash") == "", "the token left the address")
sw.check(admin.evaluate("sessionStorage.getItem('swarm.token')") == orch.admin_token, "the token is kept in the tab")
sw.wait_until(lambda: not admin.evaluate("document.getElementById('act-pause').disabled"), 30, "actions enabled")
admin.evaluate("document.getElementById('act-pause').click()")
sw.wait_until(lambda: sw.status(orch)["paused"], 30, "pause from the page pauses the orchestrator")
wait_page(admin, lambda text: "PAUSED" in text, "the page says PAUSED")
admin.evaluate("document.getElementById('act-pause').click()")
sw.wait_until(lambda: not sw.status(orch)["paused"], 30, "resume from the page resumes it")
shot = admin.screenshot(os.path.join(OUTPUT, "dashboard-gateway.png"))
print(f"screenshot: {shot}")
sw.check(not admin.problems, f"no console error through the gateway {admin.problems[:3]}")
admin.close()

# --- without public reads, the page asks for a token (and logs only the refused reads) ---------
private = sw.start_orch("private")
asker = watch(private.url, "asker")
wait_page(asker, lambda text: "needs a token" in text, "a private orchestrator's page asks for a token")
sw.check(all("401" in problem for problem in asker.problems), f"only the refused reads failed {asker.problems[:3]}")
asker.close()
sw.finish()
