// swarm dashboard: the live picture of `swarm monitor`, the plan by level, releases and build
// logs. Vanilla JavaScript, no external request. Reads use the read-only API (with the token when
// one is set); actions need the admin token. Live: a long-poll on /api/v1/events.
"use strict";

const params = new URLSearchParams(location.search);
const profile = params.get("profile") || "default";
const q = (path, extra) => path + (path.includes("?") ? "&" : "?") + "profile=" + encodeURIComponent(profile) +
  (extra ? "&" + extra : "");
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem("swarm.token") || "",
  status: null, statusAt: 0, lastEvent: 0, completions: [], events: [],
  needToken: false, pollGeneration: 0, log: null,
};

// A token given in the address (#token=...) goes to this tab's storage and leaves the address.
if (location.hash.startsWith("#token=")) {
  state.token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem("swarm.token", state.token);
  history.replaceState(null, "", location.pathname + location.search);
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function duration(seconds) {
  if (!(seconds >= 0) || !isFinite(seconds)) return "?";
  seconds = Math.round(seconds);
  if (seconds < 60) return seconds + "s";
  const m = Math.floor(seconds / 60), s = seconds % 60;
  if (m < 60) return m + "m" + String(s).padStart(2, "0") + "s";
  const h = Math.floor(m / 60);
  return h + "h" + String(m % 60).padStart(2, "0") + "m";
}

function clock(epoch) {
  const d = new Date(epoch * 1000);
  return d.toTimeString().slice(0, 8);
}

// One API call: {ok, status, body}. Never throws; a 401 asks for a token.
async function api(path, options = {}) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  try {
    const response = await fetch(path, {
      // No browser credentials: the token goes in the header, and a refused read must not make the
      // browser ask for a password (the orchestrator's 401 carries a Basic challenge for Portage).
      method: options.method || "GET", headers, cache: "no-store", credentials: "omit",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401 && !options.method) {
      state.needToken = true;
      showNotice("This orchestrator needs a token to show its state (orch.public_status is off): enter one above.");
    }
    return {ok: response.ok, status: response.status, body};
  } catch (error) {
    return {ok: false, status: 0, body: {error: String(error)}};
  }
}

function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text || "";
  notice.hidden = !text;
}

function pill(node, text, ok) {
  node.hidden = false;
  node.textContent = text;
  node.className = "pill " + (ok ? "ok" : "bad");
}

// --- health -----------------------------------------------------------------------------------
async function fetchHealth() {
  const answer = await api("/healthz");
  if (answer.body && answer.body.role === "gateway") {
    const active = answer.body.active;
    pill($("health-gateway"), active ? "gateway ok → " + active : "gateway: no healthy orchestrator", !!active);
  } else if (!answer.ok) {
    pill($("health-orch"), "orchestrator unreachable", false);
  }
}

// --- status: counts, drones, rate, ETA --------------------------------------------------------
async function fetchStatus() {
  const answer = await api(q("/api/v1/status"));
  if (!answer.ok || !answer.body || !answer.body.counts) {
    if (answer.status !== 401) pill($("health-orch"), "orchestrator: " + (answer.status || "unreachable"), false);
    return false;
  }
  state.needToken = false;
  showNotice("");
  state.status = answer.body;
  state.statusAt = Date.now() / 1000;
  const orch = answer.body.orchestrator || {};
  pill($("health-orch"), "orchestrator ok (" + (orch.version || "?") + ", " + (orch.orch_id || "?") + ")", true);
  renderStatus();
  return true;
}

function renderStatus() {
  const s = state.status;
  if (!s) return;
  $("profile").textContent = "profile " + s.profile;
  const c = s.counts;
  const counts = $("counts");
  counts.replaceChildren();
  const shown = [["complete", c.received], ["building", c.delegated], ["needed", c.needed], ["ready", c.ready],
                 ["failed", c.failed], ["blocked", c.blocked], ["dep-failed", c["dep-failed"]], ["total", c.total]];
  for (const [name, value] of shown) {
    const box = el("div", null, "count");
    box.id = "count-" + name;
    box.append(el("b", value), el("span", name));
    counts.append(box);
  }
  const fraction = c.total ? c.received / c.total : 0;
  $("bar-fill").style.width = (fraction * 100).toFixed(1) + "%";

  // Elapsed time advances on the local clock between two status answers.
  const advanced = Date.now() / 1000 - state.statusAt;
  const body = $("drones").tBodies[0];
  body.replaceChildren();
  let usable = 0;
  for (const drone of s.drones || []) {
    const leases = drone.leases || [];
    let status = drone.state;
    if (drone.state === "online" || drone.state === "probation") {
      usable += drone.slots || 0;
      status = leases.length ? "building" : "idle";
    }
    const row = el("tr");
    row.dataset.drone = drone.name;
    row.append(el("td", drone.name), el("td", drone.cores), el("td", (drone.running || 0) + "/" + drone.slots),
               el("td", status, "state-" + status),
               el("td", leases.map((l) => l.cpv).join(", ") || "–", "pkg"),
               el("td", leases.map((l) => duration(l.elapsed + advanced) + " / " + duration(l.expected_seconds))
                 .join(", ") || "–"),
               el("td", drone.cpu_percent !== undefined ? Math.round(drone.cpu_percent) + "%" : "–"),
               el("td", drone.mem_percent !== undefined ? Math.round(drone.mem_percent) + "%" : "–"));
    body.append(row);
  }

  const now = Date.now() / 1000;
  state.completions = state.completions.filter((t) => t >= now - 900);
  const rate = state.completions.length ? state.completions.length * 3600 /
    Math.max(60, now - Math.min(...state.completions)) : 0;
  const left = s.remaining || {};
  let eta;
  const done = c.needed + c.delegated === 0;
  if (done) {
    eta = c.blocked ? "plan stopped: blocked packages remain" : "plan complete";
  } else if (!usable) {
    eta = "ETA ? (no drone online)";
  } else {
    const seconds = Math.max(left.critical_path_seconds || 0, (left.work_seconds || 0) / usable);
    eta = "ETA " + duration(seconds) + " (critical path " + duration(left.critical_path_seconds) + ", work " +
      duration(left.work_seconds) + " / " + usable + " slots)";
  }
  $("eta").textContent = (s.paused ? "PAUSED · " : "") + "rate " + Math.round(rate) + "/h · " + eta;
  $("act-pause").textContent = s.paused ? "resume" : "pause";
}

// --- events: the live feed (long-poll) --------------------------------------------------------
function addEvents(events) {
  for (const event of events) {
    state.lastEvent = Math.max(state.lastEvent, event.id);
    if (event.kind === "received") state.completions.push(event.time);
    state.events.push(event);
  }
  state.events = state.events.slice(-200);
  const list = $("events");
  list.replaceChildren();
  for (const event of state.events.slice().reverse().slice(0, 60)) {
    const subject = [event.package, event.drone ? "on " + event.drone : ""].filter(Boolean).join(" ");
    list.append(el("li", clock(event.time) + " " + event.kind + " " + subject + (event.detail ? ": " + event.detail : ""),
                    "kind-" + event.kind));
  }
}

let refreshTimer = null;
let lastRefresh = 0;
// Status at most once a second after events; plan, releases and builds with it.
function scheduleRefresh() {
  if (refreshTimer) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    lastRefresh = Date.now();
    await Promise.all([fetchStatus(), fetchPlan(), fetchBuilds(), fetchReleases()]);
  }, wait);
}

async function liveLoop(generation) {
  while (generation === state.pollGeneration) {
    const answer = await api("/api/v1/events?since=" + state.lastEvent + "&limit=500&wait=25");
    if (generation !== state.pollGeneration) return;
    if (!answer.ok || !answer.body) {
      $("live").textContent = "reconnecting";
      $("live").className = "pill bad";
      if (answer.status === 401) return; // until a token is given
      await new Promise((resolve) => setTimeout(resolve, 2000));
      continue;
    }
    $("live").textContent = "live";
    $("live").className = "pill ok";
    if (answer.body.events.length) {
      addEvents(answer.body.events);
      scheduleRefresh();
    }
  }
}

// --- plan by dependency level -----------------------------------------------------------------
async function fetchPlan() {
  const answer = await api(q("/api/v1/plan/levels"));
  if (!answer.ok || !answer.body) return;
  const plan = answer.body;
  const body = $("levels").tBodies[0];
  body.replaceChildren();
  for (const level of plan.levels) {
    const row = el("tr");
    const bar = el("span", null, "mini");
    const fill = el("div");
    fill.style.width = (level.total ? 100 * level.received / level.total : 0).toFixed(0) + "%";
    bar.append(fill);
    const cell = el("td");
    cell.append(bar, " " + level.received + "/" + level.total);
    row.append(el("td", level.level), el("td", level.received), el("td", level.delegated), el("td", level.needed),
               el("td", level.blocked), el("td", level["dep-failed"]), cell);
    body.append(row);
  }
  $("blocked-total").textContent = "(" + plan.blocked_total + ")";
  const blocked = $("blocked");
  blocked.replaceChildren();
  for (const item of plan.blocked) {
    const li = el("li", null, "kind-blocked");
    li.title = item.reason || "";
    li.append(el("span", item.cpv + " — " + (item.state === "blocked"
      ? (item.reason || "failed") + " (failed on " + (item.failed_on || []).join(", ") + ")"
      : "waits for blocked " + (item.blocked_by || []).join(", "))));
    if (item.state === "blocked") {
      const link = el("a", " log");
      link.addEventListener("click", () => openLog(item.cpv, 0));
      li.append(link);
    }
    blocked.append(li);
  }
  $("waiting-total").textContent = "(" + plan.waiting_total + ")";
  const waiting = $("waiting");
  waiting.replaceChildren();
  for (const item of plan.waiting.slice(0, 100)) {
    waiting.append(el("li", item.cpv + " ← " + item.waits_for.map((w) => w.cpv + " (" + w.state + ")").join(", ")));
  }
}

// --- releases and their differences -----------------------------------------------------------
async function fetchReleases() {
  const answer = await api(q("/api/v1/releases"));
  if (!answer.ok || !answer.body) return;
  const r = answer.body;
  $("releases-note").textContent = (r.releases.length ? "" : "no release yet · ") + r.unreleased +
    " built package(s) not released yet";
  const list = $("releases");
  list.replaceChildren();
  for (const release of r.releases.slice().reverse()) {
    const li = el("li", (release.current ? "* " : "  ") + release.id + " — " + release.packages + " packages: +" +
                        release.added.length + " −" + release.removed.length + " ~" + release.rebuilt.length);
    const details = [["added", release.added], ["removed", release.removed], ["rebuilt", release.rebuilt]]
      .filter(([, items]) => items.length).map(([name, items]) => name + ": " + items.join(", ")).join("\n");
    li.title = details || "no difference";
    list.append(li);
  }
}

// --- build history and logs -------------------------------------------------------------------
async function fetchBuilds() {
  const answer = await api(q("/api/v1/builds", "limit=30"));
  if (!answer.ok || !answer.body) return;
  const body = $("builds").tBodies[0];
  body.replaceChildren();
  for (const build of answer.body.builds) {
    const row = el("tr");
    const link = el("a", "log");
    if (build.package) link.addEventListener("click", () => openLog(build.package, build.id));
    const cell = el("td");
    cell.append(link);
    row.append(el("td", build.id), el("td", build.package || "–", "pkg"), el("td", build.drone),
               el("td", build.result, "result-" + build.result),
               el("td", build.ended ? duration(build.duration) : "running"), cell);
    body.append(row);
  }
}

// Shows a build's log, following it while the build runs (long-poll), until closed.
async function openLog(cpv, build) {
  const view = {cpv, build, offset: 0};
  state.log = view;
  $("log-view").hidden = false;
  $("log-title").textContent = cpv + (build ? " #" + build : "");
  const text = $("log-text");
  text.textContent = "";
  while (state.log === view) {
    const extra = "package=" + encodeURIComponent(cpv) + "&offset=" + view.offset + "&wait=25" +
      (view.build ? "&build=" + view.build : "");
    const answer = await api(q("/api/v1/logs", extra));
    if (state.log !== view) return;
    if (!answer.ok || !answer.body) {
      text.textContent += "\n[" + ((answer.body && answer.body.error) || "cannot read the log") + "]";
      return;
    }
    const log = answer.body;
    if (log.build && !view.build) {
      view.build = log.build;
      $("log-title").textContent = cpv + " #" + log.build;
    }
    text.textContent += log.text;
    view.offset = log.next_offset;
    if (log.complete) {
      text.textContent += "\n[build " + log.result + (log.reason ? ": " + log.reason : "") + "]";
      return;
    }
  }
}

// --- actions (admin token) --------------------------------------------------------------------
async function act(action, body) {
  const answer = await api("/api/v1/control/" + action, {method: "POST", body: body || {}});
  const result = $("action-result");
  if (!answer.ok) {
    result.textContent = action + " failed: " + ((answer.body && answer.body.error) || "HTTP " + answer.status);
    return;
  }
  const b = answer.body || {};
  const said = {
    pause: () => "paused: drones get no new work (running builds finish)",
    resume: () => "resumed: drones get work again",
    balance: () => "balance: " + (b.moved || []).length + " package(s) moved back to the queue",
    unblock: () => (b.unblocked || []).length ? "unblock: " + b.unblocked.length + " package(s) unblocked"
      : "unblock: no package was blocked",
    reset: () => "reset: " + b.returned + " package(s) back in the queue; built packages kept",
  };
  result.textContent = said[action]();
  if ((action === "pause" || action === "resume") && state.status) {
    state.status.paused = !!b.paused; // shown at once; the status follows
    renderStatus();
  }
  scheduleRefresh();
}

// The actions are enabled only for the admin token (the orchestrator says whose a token is).
async function updateAdmin() {
  let admin = false;
  if (state.token) {
    const answer = await api("/api/v1/whoami");
    admin = answer.ok && answer.body && answer.body.role === "admin";
  }
  for (const button of document.querySelectorAll("[data-admin]")) {
    button.disabled = !admin;
    button.title = admin ? "" : "needs the admin token";
  }
  $("token").placeholder = !state.token ? "not set: read-only" : admin ? "admin, for this tab" : "set: read-only";
}

function wire() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    $("token").value = "";
    if (state.token) sessionStorage.setItem("swarm.token", state.token);
    else sessionStorage.removeItem("swarm.token");
    updateAdmin();
    start();
  });
  $("token-forget").addEventListener("click", () => {
    state.token = "";
    sessionStorage.removeItem("swarm.token");
    updateAdmin();
    start();
  });
  $("act-pause").addEventListener("click", () => act(state.status && state.status.paused ? "resume" : "pause"));
  $("act-balance").addEventListener("click", () => act("balance"));
  $("act-unblock").addEventListener("click", () => act("unblock", {profile}));
  $("act-reset").addEventListener("click", () => {
    if (confirm("Reset: every open lease goes back to the queue (built packages stay). Reset now?")) act("reset");
  });
  $("log-close").addEventListener("click", () => {
    state.log = null;
    $("log-view").hidden = true;
  });
}

async function start() {
  const generation = ++state.pollGeneration;
  fetchHealth();
  if (!await fetchStatus()) return;
  if (generation !== state.pollGeneration) return;
  // The latest events first (shown, and the rate), then the live feed from there.
  state.lastEvent = Math.max(0, (state.status.last_event || 0) - 200);
  state.events = [];
  state.completions = [];
  const first = await api("/api/v1/events?since=" + state.lastEvent + "&limit=500");
  if (first.ok && first.body) addEvents(first.body.events);
  await Promise.all([fetchPlan(), fetchBuilds(), fetchReleases()]);
  renderStatus();
  $("live").textContent = "live";
  $("live").className = "pill ok";
  document.body.dataset.ready = "yes";
  liveLoop(generation);
}

wire();
updateAdmin();
start();
// cpu and memory change without an event; elapsed times advance every second.
setInterval(() => { if (!state.needToken) fetchStatus(); }, 5000);
setInterval(renderStatus, 1000);
setInterval(fetchHealth, 5000);
