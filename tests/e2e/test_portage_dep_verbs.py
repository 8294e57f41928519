#!/usr/bin/env python3
"""End-to-end: `swarm portage vercmp|atom|deps|emerge-parse|plan` on good and bad input.

Each verb must print its answer (a number or JSON) on success, and on bad input exit 2 with a
single `swarm: error: …` line on stderr, never crash. `plan --from-index` on the kde-desktop
workload must give its 948 packages and 11,221 edges; `plan --emerge-output` runs against a
small md5-cache written here.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

SWARM = os.environ.get("SWARM_BIN", "swarm")
DATA = os.environ.get("SWARM_TEST_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "data"))
WORKLOAD = os.path.join(DATA, "..", "..", "data", "workloads", "kde-desktop")
FAILURES = []


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)
    return condition


def swarm(*args, stdin=None):
    return subprocess.run([SWARM, *args], input=stdin, capture_output=True, text=True, timeout=120)


def expect_ok(args, stdin=None):
    result = swarm(*args, stdin=stdin)
    check(result.returncode == 0, f"{args}: exit {result.returncode}, stderr {result.stderr!r}")
    return result.stdout


def expect_json(args, stdin=None):
    out = expect_ok(args, stdin)
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        check(False, f"{args}: not JSON: {out[:200]!r}")
        return None


def expect_usage_error(args, contains, stdin=None):
    result = swarm(*args, stdin=stdin)
    lines = result.stderr.strip().splitlines()
    check(result.returncode == 2, f"{args}: exit {result.returncode}, want 2")
    check(len(lines) == 1 and lines[0].startswith("swarm: error: "), f"{args}: stderr {result.stderr!r}")
    check(contains in result.stderr, f"{args}: stderr {result.stderr!r} lacks {contains!r}")
    check(result.stdout == "", f"{args}: printed {result.stdout!r} on error")


def test_vercmp():
    big = "999999999999999999999999999999"
    for a, b, want in [("1.010", "1.01", "0"), ("1.0", "1.0_p0", "-1"), ("1.0.0", "1.0b", "1"),
                       ("1.0-r0", "1.0", "0"), (big, big[:-1] + "8", "1")]:
        check(expect_ok(["portage", "vercmp", a, b]).strip() == want, f"vercmp {a} {b} != {want}")
    expect_usage_error(["portage", "vercmp", "1.0", "foo"], "'foo' is not a valid version")
    expect_usage_error(["portage", "vercmp", "1.0"], "b is required")


def test_atom():
    atom = expect_json(["portage", "atom", "!>=dev-libs/openssl-3.0.1-r2:0/3=::gentoo[-bindist(-),ssl?]"])
    if atom:
        check(atom == {"blocker": "!", "operator": ">=", "cp": "dev-libs/openssl", "category": "dev-libs",
                       "package": "openssl", "version": "3.0.1-r2", "slot": "0", "subslot": "3",
                       "slot_operator": "=", "repo": "gentoo", "use": ["-bindist(-)", "ssl?"]}, f"atom: {atom}")
    star = expect_json(["portage", "atom", "=dev-qt/qtbase-6.8*"])
    if star:
        check(star["operator"] == "=*" and star["version"] == "6.8", f"=* atom: {star}")
    expect_usage_error(["portage", "atom", "dev-libs/foo-1"], "invalid atom")
    expect_usage_error(["portage", "atom", "dev-libs/A:=", "--eapi", "4"], "invalid atom")
    expect_usage_error(["portage", "atom", "cat/pkg[!a]"], "invalid atom")


def test_deps():
    deps = expect_json(["portage", "deps", "a/b ssl? ( c/d ) !ssl? ( x/y ) || ( e/f ( g/h i/j ) )", "--use", "ssl"])
    check(deps == ["a/b", "c/d", {"any_of": ["e/f", ["g/h", "i/j"]]}], f"deps: {deps}")
    plain = expect_json(["portage", "deps", "foo? ( cat/pkg[foo?] )", "--use", "foo"])
    check(plain == ["cat/pkg[foo]"], f"evaluated USE dep: {plain}")
    expect_usage_error(["portage", "deps", "|| ( a/b"], "Missing ')' at end of string")
    expect_usage_error(["portage", "deps", "a/b)"], "missing whitespace around ')'")


def test_emerge_parse():
    listing = expect_json(["portage", "emerge-parse", os.path.join(DATA, "portage", "emlop", "emerge-p.bin.out")])
    if listing:
        entry = listing["entries"][0]
        check(entry["type"] == "binary" and entry["cpv"] == "dev-libs/glib-2.80.5-r1" and entry["build_id"] == 4,
              f"binary entry: {entry}")
    stdin_listing = expect_json(["portage", "emerge-parse", "-"],
                                stdin="[ebuild  N     ] dev-libs/foo-1.0::gentoo  USE=\"a -b\"\n")
    if stdin_listing:
        check(stdin_listing["entries"][0]["use"] == {"enabled": ["a"], "disabled": ["b"]}, f"stdin: {stdin_listing}")
    expect_usage_error(["portage", "emerge-parse", "/nonexistent/emerge.out"], "no such file")
    expect_usage_error(["portage", "emerge-parse", "-"], "cannot read package 'garbage'",
                       stdin="[ebuild  N     ] garbage\n")


def test_plan(tmp):
    plan = expect_json(["portage", "plan", "--from-index", os.path.join(WORKLOAD, "Packages")])
    if plan:
        check(len(plan["packages"]) == 948, f"index plan packages: {len(plan['packages'])}")
        check(len(plan["edges"]) == 11221, f"index plan edges: {len(plan['edges'])}")
        check(plan["profile"] == "default/linux/amd64/23.0/desktop/plasma", f"profile: {plan.get('profile')}")

    repo = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(repo, "metadata", "md5-cache", "dev-libs"))
    with open(os.path.join(repo, "metadata", "timestamp.chk"), "w") as f:
        f.write("Sat, 01 Mar 2026 00:45:01 +0000\n")
    with open(os.path.join(repo, "metadata", "md5-cache", "dev-libs", "a-1"), "w") as f:
        f.write("EAPI=8\nSLOT=0\nDEPEND=ssl? ( dev-libs/b ) sys-libs/glibc\n")
    with open(os.path.join(repo, "metadata", "md5-cache", "dev-libs", "b-2"), "w") as f:
        f.write("EAPI=8\nSLOT=0/2\n")
    output = os.path.join(tmp, "emerge.out")
    with open(output, "w") as f:
        f.write("[ebuild  N     ] dev-libs/b-2:0/2::gentoo  0 KiB\n"
                "[ebuild  N     ] dev-libs/a-1::gentoo  USE=\"ssl\" 0 KiB\n")
    plan = expect_json(["portage", "plan", "--emerge-output", output, "--repo", repo])
    if plan:
        check(plan["merge_order"] is True, "emerge plan: merge_order")
        check(plan["tree_timestamp"] == "Sat, 01 Mar 2026 00:45:01 +0000", f"tree_timestamp: {plan}")
        check(plan["edges"] == [{"package": "dev-libs/a-1", "needs": "dev-libs/b-2", "kind": "DEPEND"}],
              f"emerge plan edges: {plan['edges']}")
        check(plan["unresolved"] == ["sys-libs/glibc"], f"unresolved: {plan['unresolved']}")

    with open(output, "a") as f:
        f.write("[ebuild  N     ] dev-libs/c-3::gentoo\n")
    expect_usage_error(["portage", "plan", "--emerge-output", output, "--repo", repo],
                       "no md5-cache entry for dev-libs/c-3")
    expect_usage_error(["portage", "plan"], "give either")
    expect_usage_error(["portage", "plan", "--emerge-output", output], "needs --repo")
    expect_usage_error(["portage", "plan", "--from-index", "/nonexistent/Packages"], "no such file")
    bad_index = os.path.join(tmp, "Packages")
    with open(bad_index, "w") as f:
        f.write("VERSION: 1\n\n")
    expect_usage_error(["portage", "plan", "--from-index", bad_index], "Packages")


def test_help():
    for verb in ["vercmp", "atom", "deps", "emerge-parse", "plan"]:
        result = swarm("portage", verb, "--help")
        check(result.returncode == 0 and "Usage" in result.stdout, f"portage {verb} --help: {result}")


def main():
    if not shutil.which(SWARM) and not os.path.exists(SWARM):
        print(f"swarm binary not found: {SWARM}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="swarm-e2e-dep-verbs-") as tmp:
        test_vercmp()
        test_atom()
        test_deps()
        test_emerge_parse()
        test_plan(tmp)
        test_help()
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
