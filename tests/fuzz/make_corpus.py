#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) from the real inputs in
tests/data (copies of /work/shared/portage, see tests/data/portage/README.md), the protocol
examples of docs/protocol.md and the kde-desktop plan. Small files only: a few KB each.
Run it again after changing it; tests/fuzz/README.md says where each seed comes from."""

import io
import json
import pathlib
import shutil
import subprocess
import tarfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "portage"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
MAX_SEED = 16 * 1024


def put(target, name, content):
    if isinstance(content, str):
        content = content.encode()
    assert len(content) <= MAX_SEED, f"{target}/{name}: {len(content)} bytes"
    path = CORPUS / target / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def gpkg_members(path):
    with tarfile.open(path) as outer:
        return {m.name.split("/", 1)[1]: outer.extractfile(m).read() for m in outer.getmembers() if m.isfile()}


def unzstd(data):
    return subprocess.run(["zstd", "-dc"], input=data, stdout=subprocess.PIPE, check=True).stdout


def trim_tar(data):
    """The archive without its record padding: the members, then the two zero blocks."""
    end = len(data.rstrip(b"\0"))
    end = (end + 511) // 512 * 512
    return data[:end] + b"\0" * 1024


def records(name):
    return json.loads((DATA / "vectors" / name).read_text())["records"]


def main():
    shutil.rmtree(CORPUS, ignore_errors=True)
    samples = DATA / "gpkg-samples"

    # gpkg: whole packages, valid and broken.
    for name in ["hello-1.2.3-r1-1.gpkg.tar", "hello-1.2.3-r1-1.xz.gpkg.tar", "bad-truncated.gpkg.tar",
                 "bad-tiny.gpkg.tar", "bad-path-traversal.gpkg.tar", "odd-marker-not-first.gpkg.tar"]:
        put("gpkg", name, (samples / name).read_bytes())
    put("gpkg", "Manifest", gpkg_members(samples / "hello-1.2.3-r1-1.gpkg.tar")["Manifest"])

    # tar: the outer GPKG tar, the inner metadata and image tars, a GNU long name.
    hello = gpkg_members(samples / "hello-1.2.3-r1-1.gpkg.tar")
    put("tar", "gpkg-outer.tar", (samples / "hello-1.2.3-r1-1.gpkg.tar").read_bytes())
    put("tar", "metadata.tar", trim_tar(unzstd(hello["metadata.tar.zst"])))
    image = trim_tar(unzstd(hello["image.tar.zst"]))
    if len(image) <= MAX_SEED:
        put("tar", "image.tar", image)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as out:
        info = tarfile.TarInfo("image/usr/share/" + "long-directory-name/" * 6 + "file.txt")
        info.size = 6
        out.addfile(info, io.BytesIO(b"hello\n"))
        link = tarfile.TarInfo("image/usr/bin/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "../share/file.txt"
        out.addfile(link)
    put("tar", "gnu-longname.tar", trim_tar(buffer.getvalue()))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        info = tarfile.TarInfo("image/" + "p" * 120)
        info.size = 3
        out.addfile(info, io.BytesIO(b"pax"))
    put("tar", "pax-path.tar", trim_tar(buffer.getvalue()))

    # compression: one selector byte (0 none, 1 gzip, 2 bzip2, 3 xz, 4 zstd), then the stream.
    put("compression", "zstd-metadata", b"\x04" + hello["metadata.tar.zst"])
    for codec, selector in [("xz", 3), ("gzip", 1), ("bzip2", 2)]:
        members = gpkg_members(samples / f"hello-1.2.3-r1-1.{codec}.gpkg.tar")
        suffix = {"xz": "xz", "gzip": "gz", "bzip2": "bz2"}[codec]
        put("compression", f"{codec}-metadata", bytes([selector]) + members[f"metadata.tar.{suffix}"])
    put("compression", "none-text", b"\x00" + b"plain text, not compressed\n")

    # xpak: a legacy package of the binhost-257 sample, whole, and its XPAK segment alone.
    adm = (DATA / "binhost-257" / "acct-group" / "adm" / "adm-0-r2-1.xpak").read_bytes()
    put("xpak", "adm-0-r2-1.xpak", adm)
    nobody = (DATA / "binhost-257" / "acct-user" / "nobody" / "nobody-0-r1-2.xpak").read_bytes()
    segment = nobody[nobody.index(b"XPAKPACK"):-8]
    if len(segment) <= MAX_SEED:
        put("xpak", "nobody-segment", segment)

    # packages_index: the head of a real binhost index, and the kde-desktop one, cut at blocks.
    for source, name in [(DATA / "binhost-257" / "Packages", "binhost-257-head"),
                         (ROOT / "data" / "workloads" / "kde-desktop" / "Packages", "kde-desktop-head")]:
        text = source.read_text()
        cut = text.rfind("\n\n", 0, 6000)
        put("packages_index", name, text[:cut + 2])

    # emerge_output: emerge --pretend outputs (emlop tests, real Portage runs).
    for path in sorted((DATA / "emlop").glob("emerge-p*.out")):
        put("emerge_output", path.name, path.read_bytes())
    for path in sorted((DATA / "realportage-emerge").glob("*.txt")):
        put("emerge_output", path.name, path.read_bytes())

    # md5_cache: a real entry.
    entry = (DATA / "md5-cache" / "dev-qt" / "qtwebengine-6.8.2").read_text()
    put("md5_cache", "qtwebengine-6.8.2", entry)

    # atom: one selector byte (options: bit 0 wildcards, bits 1-3 EAPI, bit 4 flag validation), then
    # the atom; the atoms of Portage's own tests.
    atoms = []
    for record in records("test_atom__Atom.json") + records("test_isvalidatom__isvalidatom.json"):
        if record.get("args") and isinstance(record["args"][0], str) and record["args"][0] not in atoms:
            atoms.append(record["args"][0])
    for i, atom in enumerate(atoms[:60]):
        put("atom", f"portage-{i:03}", bytes([i % 32]) + atom.encode())

    # version: up to three lines, compared pairwise; Portage's vercmp pairs and cpvs.
    pairs = [r["args"] for r in records("test_vercmp__vercmp.json")]
    for i in range(0, min(len(pairs), 60), 2):
        a, b = pairs[i]
        c = pairs[i + 1][0] if i + 1 < len(pairs) else a
        put("version", f"vercmp-{i:03}", f"{a}\n{b}\n{c}")
    put("version", "cpvs", "sys-devel/llvm-19.1.7-r1\nsys-devel/llvm-19.1.7\nnull/llvm-19")
    put("version", "cpvs-build", "dev-qt/qtwebengine-6.8.2\ndev-qt/qtwebengine-6.8.2_p20250101-r3\n=dev-qt/x-1")

    # dep_string: one selector byte (use_reduce options, see targets.cpp), then the string;
    # Portage's use_reduce and paren_reduce test strings and the md5-cache entry's dependencies.
    strings = []
    for record in records("test_use_reduce__use_reduce.json") + records("test_paren_reduce__paren_reduce.json"):
        if record.get("args") and isinstance(record["args"][0], str) and record["args"][0] not in strings:
            strings.append(record["args"][0])
    for i, depstr in enumerate(strings[:50]):
        put("dep_string", f"portage-{i:03}", bytes([(i * 37) % 256]) + depstr.encode())
    for line in entry.splitlines():
        key, _, value = line.partition("=")
        if key in ("DEPEND", "RDEPEND", "BDEPEND", "IUSE", "LICENSE", "REQUIRED_USE", "SRC_URI"):
            put("dep_string", f"qtwebengine-{key}", bytes([16 if key.endswith("DEPEND") else 1]) + value.encode())

    # protocol: request and reply bodies as docs/protocol.md shows them, and a plan submission
    # holding the first packages of the kde-desktop plan.
    lease = {"id": "l-42", "cpv": "app-misc/hello-1.2.3-r1", "slot": "0", "repo": "gentoo", "use": ["nls"],
             "deps": ["dev-libs/a-1"], "expires_at": 1764979200.5, "expected_seconds": 30,
             "staging_url": "http://127.0.0.1:8080/staging", "tree_timestamp": "2026-12-01T00:00:00Z",
             "profile": "default", "profile_hash": ""}
    bodies = {
        "register": {"name": "drone-1", "protocol": 1, "version": "0.1.0", "cores": 8, "slots": 2,
                     "ram_bytes": 17179869184, "disk_free_bytes": 107374182400,
                     "tree_timestamp": "2026-12-01T00:00:00Z", "profiles": ["default"],
                     "build_root": "isolated", "chost": "x86_64-pc-linux-gnu"},
        "registration": {"drone": "drone-1", "heartbeat_interval": 10, "lease_ttl": 120, "claim_wait": 20,
                         "staging_url": "http://127.0.0.1:8080/staging", "leases": [lease]},
        "heartbeat": {"cpu_percent": 12.5, "mem_percent": 40, "load1": 1.5, "disk_free_bytes": 1000000,
                      "tree_timestamp": "2026-12-01T00:00:00Z", "leases": ["l-42"]},
        "heartbeat-reply": {"state": "online", "reason": "", "cancel": []},
        "claim": {"lease": lease, "code": "none", "reason": ""},
        "claim-none": {"lease": None, "code": "waiting_for_dependencies", "reason": "3 packages wait"},
        "upload": {"received": True, "duplicate": False, "path": "app-misc/hello/hello-1.2.3-r1-1.gpkg.tar",
                   "sha256": "0" * 64, "size": 10240},
        "report": {"result": "failure", "duration_seconds": 12.5, "log_tail": "make: *** Error 1\n",
                   "reason": "build failed"},
        "refuse": {"code": "chost_unsupported", "reason": "this drone builds x86_64 only"},
        "enroll": {"name": "drone-2"},
        "unblock": {"packages": ["app-misc/hello-1.2.3-r1"], "profile": "default"},
        "ground": {"drone": "drone-1"},
        "local-build": {"drone": "local-host", "package": "app-misc/hello-1.2.3-r1", "profile": "default"},
        "finalize": {"force": False, "threshold": 20, "profile": "default"},
        "rollback": {"release": "2026-12-01T00-00-00Z", "profile": "default"},
    }
    plan = json.loads((ROOT / "data" / "workloads" / "kde-desktop" / "plan.json").read_text())
    packages = plan["packages"][:4]
    names = {p["cpv"] for p in packages}
    small_plan = {"source": "kde-desktop (first packages)", "tree_timestamp": plan.get("tree_timestamp", ""),
                  "profile": plan.get("profile", ""), "merge_order": plan.get("merge_order", False),
                  "packages": packages,
                  "edges": [e for e in plan["edges"] if e["package"] in names and e["needs"] in names],
                  "unresolved": plan["unresolved"][:3]}
    bodies["plan"] = {"plan": small_plan, "mode": "add", "clear_staging": False, "profile": "default",
                      "build_profile": {"settings": {"USE": "nls", "CHOST": "x86_64-pc-linux-gnu"},
                                        "make_profile": {"repository": "gentoo",
                                                         "path": "default/linux/amd64/23.0"},
                                        "files": {"package.use/desktop": "app-misc/hello -nls\n"},
                                        "repositories": [{"name": "gentoo", "timestamp": "1"}]}}
    for name, body in bodies.items():
        put("protocol", name + ".json", json.dumps(body, indent=1))


if __name__ == "__main__":
    main()
