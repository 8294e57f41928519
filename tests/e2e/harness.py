"""Shared harness of the end-to-end tests: real `swarm` processes on 127.0.0.1.

Every server listens on port 0 and is waited for through its readiness line and `/healthz`
(never a sleep); every child runs in its own session and is killed when the test exits, however
it exits. A child's output is collected on a thread so that a test can assert on it and so that
"internal error" or sanitizer reports fail the test.

    sw = Swarm()                      # a temp dir, removed at exit unless SWARM_KEEP_E2E is set
    orch = sw.start_orch("o1")
    tok = sw.enroll(orch, "d1")
    sw.submit(orch, make_plan(60))
    d1 = sw.start_drone(orch, "d1", tok, slots=2)
    sw.wait_until(lambda: sw.status(orch)["counts"]["received"] == 60, timeout=60)
    sw.finish()                       # asserts no failures, exits 0 or 1
"""

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SWARM = os.environ.get("SWARM_BIN", "swarm")
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_EMERGE = os.path.join(HERE, "..", "fake-emerge", "emerge")
FAKE_PORTAGEQ = os.path.join(HERE, "fake_portageq.py")  # answers from a config root's make.conf
TREE = "Tue, 01 Dec 2026 00:00:00 +0000"
# Sanitizer runs (tools/sanitize.sh) are several times slower: every wait and the orchestrator's
# liveness timeouts stretch by this factor, so a slow run is not taken for a dead drone.
TIME_SCALE = float(os.environ.get("SWARM_TEST_TIME_SCALE", "1"))
# A subprocess's timeout is a safety limit, not an assertion: it stretches the same way, for
# every test that imports this module (a sanitized `swarm` takes ten times longer to start).
_subprocess_run = subprocess.run


def _run_with_scaled_timeout(*args, timeout=None, **kwargs):
    return _subprocess_run(*args, timeout=None if timeout is None else timeout * TIME_SCALE, **kwargs)


subprocess.run = _run_with_scaled_timeout
BAD_OUTPUT = re.compile(r"internal error|AddressSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error:")

_CHILDREN = []


# Orphans come back to this process: a build a drone started in a process group of its own
# outlives a drone killed by SIGKILL, and would run on after the test (PR_SET_CHILD_SUBREAPER).
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
except (OSError, AttributeError):
    pass


def _adopted_children():
    """Processes whose parent is this one, the orphans adopted as subreaper included."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.append(int(entry))
    return found


def _kill_all():
    for child in _CHILDREN:
        child.kill()
    for pid in _adopted_children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


atexit.register(_kill_all)


def children():
    """Every child started so far (for tests that manage their own processes)."""
    return list(_CHILDREN)


def kill_children():
    _kill_all()
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, lambda *_: sys.exit(1))


class Proc:
    """A child process whose combined output is read line by line on a thread."""

    def __init__(self, name, argv, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.lines = []
        self.lock = threading.Lock()
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=env, cwd=cwd, start_new_session=True)
        _CHILDREN.append(self)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.popen.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def output(self):
        with self.lock:
            return list(self.lines)

    def wait_for_line(self, pattern, timeout=30):
        regex = re.compile(pattern)
        timeout *= TIME_SCALE
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.output()
            for line in lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(lines)
            if self.popen.poll() is not None and seen == len(self.output()):
                raise AssertionError(f"{self.name} exited ({self.popen.returncode}) before /{pattern}/:\n"
                                     + "\n".join(self.output()[-30:]))
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no /{pattern}/ within {timeout}s:\n" + "\n".join(self.output()[-30:]))

    def alive(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.alive():
            os.killpg(self.popen.pid, sig)

    def kill(self):
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def wait(self, timeout=30):
        return self.popen.wait(timeout=timeout * TIME_SCALE)

    def bad_lines(self):
        return [line for line in self.output() if BAD_OUTPUT.search(line)]


class HttpResult:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def json(self):
        return json.loads(self.body) if self.body else None


def http(method, url, body=None, token=None, headers=None, timeout=30):
    """One request; any status comes back as an HttpResult (no exception for 4xx/5xx)."""
    data = None
    all_headers = dict(headers or {})
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout * TIME_SCALE) as response:
            return HttpResult(response.status, response.read(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return HttpResult(error.code, error.read(), dict(error.headers))


class Orch:
    def __init__(self, proc, data_dir, port, args):
        self.proc = proc
        self.data_dir = data_dir
        self.port = port
        self.args = args
        self.url = f"http://127.0.0.1:{port}"

    @property
    def admin_token(self):
        with open(os.path.join(self.data_dir, "admin.token")) as f:
            return f.read().strip()

    @property
    def admin_token_file(self):
        """The admin token's file (mode 0600): what the CLI verbs of a test get as --token-file."""
        return os.path.join(self.data_dir, "admin.token")

    def api(self, method, path, body=None, token=None, **kwargs):
        return http(method, self.url + path, body, token if token is not None else self.admin_token, **kwargs)


class Swarm:
    def __init__(self, name="e2e"):
        self.dir = tempfile.mkdtemp(prefix=f"swarm-{name}-")
        self.failures = []
        self.procs = []
        self.secrets = []  # tokens handed out: none may ever appear in a process's output
        if not os.environ.get("SWARM_KEEP_E2E"):
            atexit.register(shutil.rmtree, self.dir, True)
        else:
            print(f"keeping {self.dir}", file=sys.stderr)

    # -- checks ---------------------------------------------------------------------------------
    def check(self, condition, what):
        if not condition:
            self.failures.append(what)
            print(f"FAIL: {what}", file=sys.stderr, flush=True)
        else:
            print(f"ok: {what}", flush=True)
        return condition

    def finish(self):
        for proc in self.procs:
            bad = proc.bad_lines()
            self.check(not bad, f"{proc.name} printed no internal error or sanitizer report {bad[:3]}")
            leaked = [line for line in proc.output() if any(secret in line for secret in self.secrets)]
            self.check(not leaked, f"{proc.name} never logged a token {leaked[:2]}")
        _kill_all()
        if self.failures:
            print(f"{len(self.failures)} failure(s)", file=sys.stderr)
            for proc in self.procs:
                print(f"---- {proc.name} (last lines)", file=sys.stderr)
                print("\n".join(proc.output()[-25:]), file=sys.stderr)
            sys.exit(1)
        print("all checks passed")
        sys.exit(0)

    def wait_until(self, predicate, timeout=60, what="condition", interval=0.05):
        timeout *= TIME_SCALE
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except (OSError, ValueError, KeyError, TypeError) as error:  # a server restarting
                last_error = error
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")

    def spawn(self, name, argv, env=None):
        proc = Proc(name, argv, env=env)
        self.procs.append(proc)
        return proc

    # -- roles ----------------------------------------------------------------------------------
    def start_orch(self, name="orch", extra=(), data_dir=None, port=0):
        data_dir = data_dir or os.path.join(self.dir, name)
        args = ["--data-dir", data_dir, "--lease-ttl", f"{3 * TIME_SCALE:g}s", "--heartbeat-interval", "0.5s",
                "--claim-wait", "2s", "--maintenance-interval", "1s", "--drone-timeout", f"{3 * TIME_SCALE:g}s",
                *extra]
        proc = self.spawn(name, [SWARM, "orch", "--listen", f"127.0.0.1:{port}", *args])
        port = int(proc.wait_for_line(r"orch ready on 127\.0\.0\.1:(\d+)").group(1))
        orch = Orch(proc, data_dir, port, args)
        self.wait_until(lambda: http("GET", orch.url + "/healthz").status == 200, 10, f"{name} /healthz")
        self.secrets.append(orch.admin_token)
        return orch

    def restart_orch(self, orch):
        """Starts the orchestrator again on the same port and data dir (after a kill)."""
        orch.proc.kill()
        proc = self.spawn(orch.proc.name + "+", [SWARM, "orch", "--listen", f"127.0.0.1:{orch.port}", *orch.args])
        proc.wait_for_line(r"orch ready on")
        orch.proc = proc
        self.wait_until(lambda: http("GET", orch.url + "/healthz").status == 200, 10, "restarted orch /healthz")
        return orch

    def enroll(self, orch, name):
        result = subprocess.run([SWARM, "drone", "enroll", name, "--data-dir", orch.data_dir, "--json"],
                                capture_output=True, text=True, timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"enroll {name}: {result.stderr}")
        token = json.loads(result.stdout)["token"]
        self.secrets.append(token)
        return token

    def token_file(self, token, name=None):
        """Writes `token` to a new file of mode 0600 in the test's dir and returns its path: tokens
        reach swarm processes through files (or the environment), never the command line."""
        directory = os.path.join(self.dir, "tokens")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, name or f"token-{len(os.listdir(directory))}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        if token and token not in self.secrets:
            self.secrets.append(token)
        return path

    def drone_env(self, name, plan_file, fail=None, time_scale=None, extra_env=None):
        root = os.path.join(self.dir, "drones", name, "root")
        os.makedirs(root, exist_ok=True)
        env = dict(os.environ)
        env.update({"SWARM_BIN": SWARM, "ROOT": root, "SWARM_FAKE_PLAN": plan_file})
        if fail:
            env["SWARM_FAKE_FAIL"] = fail
        if time_scale is not None:
            env["SWARM_FAKE_TIME_SCALE"] = str(time_scale)
        env.update(extra_env or {})
        return env

    def drone_portage(self, name, repo, settings=None):
        """What drone `name`'s own Portage says of itself (tests/fake-emerge/portageq reads its
        --portage-configroot): CHOST x86_64-pc-linux-gnu, `repo`, DISTDIR and PORTAGE_TMPDIR of its
        own, plus `settings`. Without it a test drone knows no CHOST and refuses build profiles."""
        base = os.path.join(self.dir, "drones", name)
        values = {"CHOST": "x86_64-pc-linux-gnu", "DISTDIR": os.path.join(base, "distfiles"),
                  "PORTAGE_TMPDIR": os.path.join(base, "tmp")}
        values.update(settings or {})
        for key in ("DISTDIR", "PORTAGE_TMPDIR"):
            os.makedirs(values[key], exist_ok=True)
        return write_config_root(os.path.join(base, "configroot"), repo, values)

    def start_drone(self, url, name, token, plan_file, slots=1, fail=None, time_scale=None, tree=TREE,
                    extra=(), extra_env=None, min_free_disk="1M"):
        base = os.path.join(self.dir, "drones", name)
        os.makedirs(os.path.join(base, "configroot"), exist_ok=True)
        token_file = self.token_file(token, f"drone-{name}")
        argv = [SWARM, "drone", "--url", url, "--name", name, "--token-file", token_file, "--slots", str(slots),
                "--spool", os.path.join(base, "spool"), "--emerge", os.path.abspath(FAKE_EMERGE),
                "--portage-configroot", os.path.join(base, "configroot"), "--tree-timestamp", tree,
                "--min-free-disk", min_free_disk, *extra]
        return self.spawn(f"drone-{name}", argv, env=self.drone_env(name, plan_file, fail, time_scale, extra_env))

    def start_gateway(self, orchestrators, interval="0.3s", extra=()):
        argv = [SWARM, "gateway", "--listen", "127.0.0.1:0", "--orchestrators", ",".join(orchestrators),
                "--health-interval", interval, *extra]
        proc = self.spawn("gateway", argv)
        port = int(proc.wait_for_line(r"gateway ready on 127\.0\.0\.1:(\d+)").group(1))
        url = f"http://127.0.0.1:{port}"
        self.wait_until(lambda: http("GET", url + "/healthz").status == 200, 10, "gateway /healthz")
        return url

    # -- plans and state ------------------------------------------------------------------------
    def write_plan(self, plan, name="plan.json"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(plan, f)
        return path

    def submit(self, orch, plan, mode="replace"):
        result = orch.api("POST", "/api/v1/plan", {"plan": plan, "mode": mode})
        if result.status != 200:
            raise AssertionError(f"plan submission: HTTP {result.status} {result.body[:300]}")
        return result.json()

    def status(self, orch):
        return orch.api("GET", "/api/v1/status", timeout=5).json()

    def packages(self, orch, state=None):
        query = f"?state={state}" if state else ""
        return orch.api("GET", "/api/v1/packages" + query, timeout=10).json()["packages"]

    def events(self, orch, since=0):
        return orch.api("GET", f"/api/v1/events?since={since}", timeout=10).json()["events"]


def private_mounts_argv(binds, argv):
    """argv run in a private mount namespace (root, util-linux `unshare`) in which each (source,
    target) of `binds` is bind-mounted over target: what argv writes there lands in source, and
    the host's own files stay as they are. The namespace ends with argv."""
    script = 'while [ "$1" != -- ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
    flat = [path for pair in binds for path in pair]
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", script, "sh", *flat, "--", *argv]


def write_file(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_config_root(root, repo, settings, files=None, profile="profiles/default/linux/amd64/23.0"):
    """A Portage configuration root for fake_portageq.py: etc/portage/make.conf holding `settings`,
    repos.conf naming `repo` (its profiles/repo_name), make.profile into it, and `files`
    ({"package.use/x": text}) below etc/portage."""
    etc = os.path.join(root, "etc", "portage")
    write_file(os.path.join(etc, "make.conf"), "".join(f'{k}="{v}"\n' for k, v in settings.items()))
    name = "gentoo"
    if os.path.exists(os.path.join(repo, "profiles", "repo_name")):
        with open(os.path.join(repo, "profiles", "repo_name")) as f:
            name = f.read().strip()
    write_file(os.path.join(etc, "repos.conf"), f"[DEFAULT]\nmain-repo = {name}\n[{name}]\nlocation = {repo}\n")
    os.makedirs(os.path.join(repo, profile), exist_ok=True)
    if os.path.lexists(os.path.join(etc, "make.profile")):
        os.unlink(os.path.join(etc, "make.profile"))
    os.symlink(os.path.join(repo, profile), os.path.join(etc, "make.profile"))
    for path, text in (files or {}).items():
        write_file(os.path.join(etc, path), text)
    return root


def make_plan(count, seed=7, build_seconds=(20, 400), width=6, tree=TREE, category="app-test"):
    """A layered DAG of `count` packages in plan.json form: each package (after the first layer)
    needs one to three packages of earlier layers through DEPEND/BDEPEND edges."""
    import random
    rng = random.Random(seed)
    packages, edges, names = [], [], []
    for i in range(count):
        cpv = f"{category}/pkg{i:03d}-1.{i % 5}"
        packages.append({"cpv": cpv, "slot": "0", "repo": "gentoo", "use": [],
                         "build_seconds": rng.randint(*build_seconds), "duration_source": "test"})
        layer = i // width
        if layer > 0:
            earlier = names[: layer * width]
            for need in rng.sample(earlier, min(len(earlier), rng.randint(1, 3))):
                edges.append({"package": cpv, "needs": need, "kind": rng.choice(["DEPEND", "BDEPEND"])})
        names.append(cpv)
    return {"source": "e2e synthetic layered DAG", "tree_timestamp": tree, "profile": "default/linux/amd64/23.0",
            "packages": packages, "edges": edges}


def dependants_closure(plan, roots):
    """Every package that (transitively) needs one of `roots`."""
    needed_by = {}
    for edge in plan["edges"]:
        needed_by.setdefault(edge["needs"], []).append(edge["package"])
    out, todo = set(), list(roots)
    while todo:
        for dependant in needed_by.get(todo.pop(), []):
            if dependant not in out:
                out.add(dependant)
                todo.append(dependant)
    return out


# -- helpers of the swarm/drone e2e tests (issue 3) ---------------------------------------------

def all_events(orch):
    """Every event of the orchestrator, oldest first (paged through /api/v1/events)."""
    events, since = [], 0
    while True:
        page = orch.api("GET", f"/api/v1/events?since={since}&limit=5000", timeout=10).json()
        events.extend(page["events"])
        if not page["events"] or page["last_id"] == since:
            return events
        since = page["last_id"]


def builds(orch, package=None, drone=None):
    """The builds API (newest first): [{"id", "package", "drone", "result", ...}]."""
    query = "limit=10000"
    if package:
        query += f"&package={package}"
    if drone:
        query += f"&drone={drone}"
    return orch.api("GET", f"/api/v1/builds?{query}", timeout=10).json()["builds"]


def orch_id(orch):
    return http("GET", orch.url + "/healthz", timeout=10).json()["orch_id"]


def staging_files(orch):
    """Every file under ORCH_DATA/staging (relative paths), except the hidden .incoming/."""
    root = os.path.join(orch.data_dir, "staging")
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        out.extend(os.path.relpath(os.path.join(dirpath, f), root) for f in filenames)
    return sorted(out)


def gpkg_report(path, expect):
    """`swarm portage gpkg PATH --expect CAT/PF`: (exit code, its JSON report or None)."""
    result = subprocess.run([SWARM, "portage", "gpkg", path, "--expect", expect], capture_output=True, text=True,
                            timeout=30)
    try:
        return result.returncode, json.loads(result.stdout)
    except ValueError:
        return result.returncode, None


def packages_index_cpvs(text):
    """The CPV of every package block of a Portage Packages index."""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("CPV:")]


def check_staging(sw, orch, plan, cpvs=None):
    """Staging holds exactly one valid GPKG for each of `cpvs` (default: the whole plan), at
    CAT/PN/PF-BUILD_ID.gpkg.tar, the one the orchestrator recorded, with matching metadata."""
    cpvs = sorted(cpvs if cpvs is not None else (p["cpv"] for p in plan["packages"]))
    files = [f for f in staging_files(orch) if f.endswith(".gpkg.tar")]
    sw.check(len(files) == len(cpvs), f"staging holds {len(cpvs)} GPKGs (found {len(files)})")
    recorded = {p["cpv"]: p for p in sw.packages(orch)}
    by_cpv = {}
    for rel in files:
        category, pn, name = rel.split("/")
        pf, build_id = name[: -len(".gpkg.tar")].rsplit("-", 1)
        by_cpv.setdefault(f"{category}/{pf}", []).append((rel, build_id))
    sw.check(sorted(by_cpv) == cpvs and all(len(v) == 1 for v in by_cpv.values()),
             f"one artifact per package in staging, none other ({len(by_cpv)} packages)")
    bad = []
    for cpv in cpvs:
        for rel, build_id in by_cpv.get(cpv, []):
            code, report = gpkg_report(os.path.join(orch.data_dir, "staging", rel), cpv)
            category, pf = cpv.split("/")
            meta = (report or {}).get("metadata", {})
            artifact = recorded.get(cpv, {}).get("artifact", {})
            if (code != 0 or not report["valid"] or meta.get("CATEGORY") != category or meta.get("PF") != pf
                    or meta.get("BUILD_ID") != build_id or artifact.get("path") != rel
                    or artifact.get("sha256") != report.get("sha256")):
                bad.append((cpv, rel, code, meta, artifact))
    sw.check(not bad, f"every staged GPKG is valid for its CAT/PF and is the recorded artifact {bad[:2]}")
