"""Helpers of the release and status e2e tests (test_release_*.py, test_status_*.py)."""

import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SWARM, TREE, http  # noqa: E402


def flat_plan(cpvs, edges=(), tree=TREE, seconds=20):
    """A plan of `cpvs` (slot 0) with `edges` [(package, needs)…] as DEPEND."""
    return {"source": "e2e release", "tree_timestamp": tree, "profile": "default/linux/amd64/23.0",
            "packages": [{"cpv": c, "slot": "0", "repo": "gentoo", "use": [], "build_seconds": seconds,
                          "duration_source": "test"} for c in cpvs],
            "edges": [{"package": p, "needs": n, "kind": "DEPEND"} for p, n in edges]}


def cli(orch_or_url, *args, token=None, timeout=120):
    """Runs `swarm ARGS --url URL` with TOKEN in $SWARM_TOKEN: (exit code, stdout, stderr)."""
    url = orch_or_url if isinstance(orch_or_url, str) else orch_or_url.url
    tok = token if token is not None else (None if isinstance(orch_or_url, str) else orch_or_url.admin_token)
    argv = [SWARM, *args, "--url", url, "--timeout", "10s"]
    env = {k: v for k, v in os.environ.items() if k not in ("SWARM_TOKEN", "SWARM_CLIENT_TOKEN")}
    if tok:
        env["SWARM_TOKEN"] = tok
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env)
    return result.returncode, result.stdout, result.stderr


def cli_json(orch, *args):
    code, out, err = cli(orch, *args, "--json")
    try:
        return code, json.loads(out)
    except ValueError:
        raise AssertionError(f"swarm {' '.join(args)} --json printed no JSON (exit {code}): {out[:300]} {err[:300]}")


def parse_packages(text):
    """Portage's PackageIndex reader: header block, then package blocks (one char dropped after ':')."""
    blocks, block = [], {}
    for line in text.split("\n"):
        if not line:
            if block:
                blocks.append(block)
            block = {}
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        block[key] = value[1:]
    if block:
        blocks.append(block)
    header, packages = blocks[0], [b for b in blocks[1:] if b.get("CPV")]
    return header, packages


def check_binhost(base_url):
    """Reads base_url/Packages and fetches every file it lists: [] when all exist and match SIZE,
    MD5 and SHA1, else the problems. Returns (header, packages, problems)."""
    index = http("GET", base_url + "/Packages", timeout=10)
    if index.status != 200:
        return None, [], [f"Packages: HTTP {index.status}"]
    header, packages = parse_packages(index.body.decode())
    problems = []
    for block in packages:
        got = http("GET", base_url + "/" + block["PATH"], timeout=10)
        if got.status != 200:
            problems.append(f"{block['PATH']}: HTTP {got.status}")
            continue
        if (str(len(got.body)) != block.get("SIZE") or hashlib.md5(got.body).hexdigest() != block.get("MD5")
                or hashlib.sha1(got.body).hexdigest() != block.get("SHA1")):
            problems.append(f"{block['PATH']}: size/checksum differs from the index")
    return header, packages, problems
