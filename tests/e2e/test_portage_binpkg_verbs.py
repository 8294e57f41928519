#!/usr/bin/env python3
"""End-to-end: `swarm portage gpkg` and `swarm portage index` on real and damaged packages."""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

SWARM = os.environ["SWARM_BIN"]
DATA = os.path.join(os.environ["SWARM_TEST_DATA_DIR"], "portage")
SAMPLES = os.path.join(DATA, "gpkg-samples")
FAILURES = []


def run(*args):
    proc = subprocess.run([SWARM, *args], capture_output=True, text=True, timeout=120)
    for stream in (proc.stdout, proc.stderr):
        if "internal error" in stream or "Sanitizer" in stream:
            FAILURES.append(f"{args}: {stream}")
    return proc


def check(condition, what):
    if not condition:
        FAILURES.append(what)
        print(f"FAIL: {what}", file=sys.stderr)


def digest(path, algo):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_gpkg():
    good = os.path.join(SAMPLES, "hello-1.2.3-r1-1.gpkg.tar")
    proc = run("portage", "gpkg", good)
    check(proc.returncode == 0, f"valid gpkg exits 0, got {proc.returncode}: {proc.stderr}")
    report = json.loads(proc.stdout)
    check(report["valid"] is True, "hello sample is valid")
    check("reason" not in report, "no reason when valid")
    check(report["format"] == "gpkg", "format gpkg")
    check(report["metadata"]["CATEGORY"] == "app-misc", "CATEGORY")
    check(report["metadata"]["PF"] == "hello-1.2.3-r1", "PF")
    check(report["metadata"]["SLOT"] == "0", "SLOT")
    check(report["metadata"]["BUILD_ID"] == "1", "BUILD_ID")
    check(report["size"] == os.path.getsize(good), "size")
    check(report["sha256"] == digest(good, "sha256"), "sha256")

    proc = run("portage", "gpkg", good, "--expect", "app-misc/hello-1.2.3-r1")
    check(proc.returncode == 0, "matching --expect is valid")

    proc = run("portage", "gpkg", os.path.join(SAMPLES, "odd-metadata-names-other-package.gpkg.tar"),
               "--expect", "app-misc/hello-1.2.3-r1")
    check(proc.returncode == 1, f"mismatching --expect exits 1, got {proc.returncode}")
    report = json.loads(proc.stdout)
    check(report["reason"] == "metadata names evil-9.9, expected app-misc/hello-1.2.3-r1",
          f"expect reason: {report.get('reason')}")

    proc = run("portage", "gpkg", os.path.join(SAMPLES, "bad-tampered-image.gpkg.tar"))
    check(proc.returncode == 1, "tampered exits 1")
    report = json.loads(proc.stdout)
    check(report["valid"] is False and "checksum" in report["reason"], f"tampered reason: {report.get('reason')}")

    proc = run("portage", "gpkg", os.path.join(SAMPLES, "odd-marker-not-first.gpkg.tar"))
    check(proc.returncode == 1, "marker not first exits 1")

    xpak = os.path.join(DATA, "binhost-257", "acct-group", "adm", "adm-0-r2-1.xpak")
    proc = run("portage", "gpkg", xpak)
    check(proc.returncode == 1, "xpak exits 1")
    report = json.loads(proc.stdout)
    check(report["format"] == "xpak", "xpak recognised")
    check(report["reason"] == "not a GPKG (old xpak format)", "xpak reason")
    check(report["metadata"]["PF"] == "adm-0-r2", "xpak metadata")

    proc = run("portage", "gpkg", os.path.join(SAMPLES, "no-such-file.gpkg.tar"))
    check(proc.returncode == 2, f"missing file exits 2, got {proc.returncode}")
    lines = proc.stderr.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("swarm: error: "), f"one error line: {proc.stderr!r}")
    check(proc.stdout == "", "nothing on stdout for a usage error")

    proc = run("portage", "gpkg", good, "--expect", "not-a-cpv")
    check(proc.returncode == 2, "bad --expect exits 2")

    proc = run("portage", "gpkg", "--help")
    check(proc.returncode == 0 and "--expect" in proc.stdout, "--help")


def test_index(tmp):
    pkgdir = os.path.join(tmp, "pkgdir")
    placed = os.path.join(pkgdir, "app-misc", "hello", "hello-1.2.3-r1-1.gpkg.tar")
    legacy = os.path.join(pkgdir, "app-misc", "hello-1.2.3-r1.gpkg.tar")
    tampered = os.path.join(pkgdir, "app-misc", "hello", "hello-1.2.3-r1-2.gpkg.tar")
    misplaced = os.path.join(pkgdir, "dev-libs", "hello", "hello-1.2.3-r1-1.gpkg.tar")
    for source, target in ((os.path.join(SAMPLES, "hello-1.2.3-r1-1.gpkg.tar"), placed),
                           (os.path.join(SAMPLES, "hello-1.2.3-r1-1.gzip.gpkg.tar"), legacy),
                           (os.path.join(SAMPLES, "bad-tampered-image.gpkg.tar"), tampered),
                           (os.path.join(SAMPLES, "hello-1.2.3-r1-1.xz.gpkg.tar"), misplaced)):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(source, target)

    proc = run("portage", "index", pkgdir, "--timestamp", "1700000000", "--json")
    check(proc.returncode == 0, f"index exits 0, got {proc.returncode}: {proc.stderr}")
    summary = json.loads(proc.stdout)
    check(summary["packages"] == 2, f"two packages indexed: {summary}")
    skipped = sorted(s["path"] for s in summary["skipped"])
    check(skipped == ["app-misc/hello/hello-1.2.3-r1-2.gpkg.tar", "dev-libs/hello/hello-1.2.3-r1-1.gpkg.tar"],
          f"skipped: {skipped}")
    check(proc.stderr.count("swarm: warning: skipping") == 2, f"warnings: {proc.stderr!r}")

    packages = os.path.join(pkgdir, "Packages")
    with open(packages, "rb") as f:
        text = f.read()
    with gzip.open(packages + ".gz", "rb") as f:
        check(f.read() == text, "Packages.gz holds the same bytes")
    check(int(os.stat(packages).st_mtime) == 1700000000, "Packages mtime = TIMESTAMP")
    check(int(os.stat(packages + ".gz").st_mtime) == 1700000000, "Packages.gz mtime = TIMESTAMP")

    blocks = [b for b in text.decode().split("\n\n") if b]
    header = dict(line.split(": ", 1) for line in blocks[0].splitlines())
    check(header.get("TIMESTAMP") == "1700000000", "TIMESTAMP")
    check(header.get("PACKAGES") == "2", "PACKAGES")
    check(header.get("VERSION") == "0", "VERSION")
    entries = [dict(line.split(": ", 1) for line in b.splitlines()) for b in blocks[1:]]
    by_path = {e["PATH"]: e for e in entries}
    entry = by_path.get("app-misc/hello/hello-1.2.3-r1-1.gpkg.tar")
    check(entry is not None, f"placed package indexed: {list(by_path)}")
    if entry:
        check(entry["CPV"] == "app-misc/hello-1.2.3-r1", "CPV")
        check(entry["MD5"] == digest(placed, "md5"), "MD5")
        check(entry["SHA1"] == digest(placed, "sha1"), "SHA1")
        check(entry["SIZE"] == str(os.path.getsize(placed)), "SIZE")
        check(entry["MTIME"] == str(int(os.stat(placed).st_mtime)), "MTIME")
        check(list(entry)[-2:] == ["MTIME", "REPO"], f"MTIME and REPO last: {list(entry)}")
    check("app-misc/hello-1.2.3-r1.gpkg.tar" in by_path, "legacy layout indexed")

    # Rerun keeps the header and gives the same bytes for the same TIMESTAMP.
    proc = run("portage", "index", pkgdir, "--timestamp", "1700000000")
    check(proc.returncode == 0 and "indexed 2 packages" in proc.stdout, f"summary: {proc.stdout!r}")
    with open(packages, "rb") as f:
        check(f.read() == text, "reindexing is stable")

    proc = run("portage", "index", os.path.join(tmp, "nope"))
    check(proc.returncode == 2 and proc.stderr.startswith("swarm: error: "), "missing dir is a usage error")


def main():
    tmp = tempfile.mkdtemp(prefix="swarm-binpkg-e2e-")
    try:
        test_gpkg()
        test_index(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILURES:
        print(f"0 passed, {len(FAILURES)} failed", file=sys.stderr)
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
