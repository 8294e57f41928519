#!/usr/bin/env python3
"""portageq as `swarm` calls it, for e2e tests without Portage: `envvar -v VAR…`,
`repos_config EROOT`, `get_repos EROOT` and `get_repo_path EROOT NAME`, answered from a configuration root
(PORTAGE_CONFIGROOT, else FAKE_PORTAGEQ_ROOT): etc/portage/make.conf's simple VAR="value" lines
are the settings, etc/portage/repos.conf's [NAME] / location = PATH the repositories. EROOT is the
configuration root. Not Portage: no profile stacking, no incremental USE."""

import os
import re
import shlex
import sys


def config_root():
    root = os.environ.get("PORTAGE_CONFIGROOT") or os.environ.get("FAKE_PORTAGEQ_ROOT") or "/"
    return root.rstrip("/") + "/"


def make_conf(root):
    out = {}
    try:
        with open(os.path.join(root, "etc/portage/make.conf")) as f:
            for line in f:
                match = re.match(r'\s*([A-Za-z_][A-Za-z0-9_]*)=(["\']?)(.*)\2\s*$', line)
                if match:
                    out[match.group(1)] = match.group(3)
    except FileNotFoundError:
        pass
    return out


def repositories(root):
    repos = {}
    name = None
    try:
        with open(os.path.join(root, "etc/portage/repos.conf")) as f:
            for line in f:
                line = line.strip()
                if line.startswith("[") and line.endswith("]"):
                    name = line[1:-1]
                elif name and name != "DEFAULT" and line.startswith("location"):
                    repos[name] = line.split("=", 1)[1].strip()
    except FileNotFoundError:
        pass
    return repos


def main(argv):
    root = config_root()
    if len(argv) >= 1 and argv[0] == "envvar":
        names = [a for a in argv[1:] if a != "-v"]
        settings = make_conf(root)
        settings["PORTAGE_CONFIGROOT"] = root
        settings["EROOT"] = root
        for name in names:
            if name in settings:
                print(f"{name}={shlex.quote(settings[name])}")
        return 0
    if len(argv) == 2 and argv[0] == "repos_config":
        repos = repositories(root)
        text = ""
        if repos:
            text += f"[DEFAULT]\nmain-repo = {sorted(repos)[0]}\n\n"
        for name, location in sorted(repos.items()):
            text += f"[{name}]\nlocation = {location}\n\n"
        print(text, end="")
        return 0
    if len(argv) == 2 and argv[0] == "get_repos":
        print(" ".join(sorted(repositories(root))))
        return 0
    if len(argv) == 3 and argv[0] == "get_repo_path":
        path = repositories(root).get(argv[2])
        if path is None:
            return 1
        print(path)
        return 0
    print(f"fake portageq: unsupported {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
