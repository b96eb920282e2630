"""Build the demo site's container image: a root file system made of this host's own Debian
packages, with nothing downloaded (run by deploy/install.sh as root, with the system Python).

    python3 -I deploy/containers/build_rootfs.py DEST [--mount-point=PATH …] PACKAGE…

DEST gets every file of the named packages and of the packages they depend on (as dpkg has
them installed here: `dpkg-query`, `dpkg -L`), at their merged-/usr paths, plus what a rootless
container of Podman needs to start from a read-only root file system (`podman run --rootfs`):
the mount points it binds over (/etc/hosts, /etc/resolv.conf, …, and each `--mount-point`, a
folder the site binds in with `--volume`), an /etc/passwd and /etc/group
that name only root and nobody (Podman adds the learner's own entry to a copy), and
/etc/factoryhub-image, a marker that says what the image is. The image holds no Jupyter: the
site binds FactoryHub's environment into it (see docs/admin-guide.md, "Container
environments"). Built into DEST.new and renamed, so a half-built image is never used.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MARKER = "etc/factoryhub-image"
MOUNT_POINTS = (
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "run/.containerenv",
    "run/podman-init",
)
FOLDERS = ("proc", "sys", "dev", "tmp", "run", "home", "root", "var/tmp", "opt", "etc")
MERGED = {"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64"}
_DEPENDS = re.compile(r"([a-z0-9][a-z0-9+.-]+)(:\w+)?")


def installed(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${db:Status-Abbrev}", package], capture_output=True, text=True
    )
    return done.returncode == 0 and done.stdout.startswith("ii")


def depends(package: str) -> list[str]:
    """The installed packages `package` depends on (of alternatives, the first installed)."""
    fields = subprocess.run(
        ["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", package],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for clause in fields.split(","):
        for alternative in clause.split("|"):
            match = _DEPENDS.match(alternative.strip())
            if match and installed(match.group(1)):
                found.append(match.group(1))
                break
    return found


def closure(packages: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        if not installed(package):
            sys.exit(f"build_rootfs: {package} is not installed on this host")
        seen.add(package)
        todo += depends(package)
    return sorted(seen)


def files_of(package: str) -> list[str]:
    listed = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True)
    return [line for line in listed.stdout.splitlines() if line.startswith("/")]


def canonical(path: str) -> str:
    """`path` with its folder resolved (merged /usr: /bin/sh is /usr/bin/sh), relative."""
    folder, name = os.path.split(path)
    return os.path.join(os.path.realpath(folder), name).lstrip("/")


def copy(path: str, dest: Path) -> None:
    """One packaged file or link (folders come with what is in them); a file of the package
    that is not there (a doc removed by dpkg's path-exclude) is skipped."""
    if os.path.isdir(path) and not os.path.islink(path):
        return
    if not os.path.lexists(path):
        return
    target = dest / canonical(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(path):
        if not os.path.lexists(target):
            target.symlink_to(os.readlink(path))
        return
    shutil.copy2(path, target)


def _system(uid: int) -> bool:
    return uid < 1000 or 60000 <= uid <= 65534


def skeleton(dest: Path, packages: list[str], mount_points: list[str]) -> None:
    for link, to in MERGED.items():
        (dest / to).mkdir(parents=True, exist_ok=True)
        (dest / link).symlink_to(to)
    for folder in (*FOLDERS, *(m.strip("/") for m in mount_points)):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    (dest / "var/tmp").chmod(0o1777)
    for name in MOUNT_POINTS:
        (dest / name).touch()
    (dest / "etc/mtab").symlink_to("../proc/self/mounts")
    # the host's system accounts (Slurm's commands want SlurmUser's), never a learner's: Debian's
    # ranges (uid 0-999, 60000-65534), learners' from 1000 on
    for name in ("passwd", "group"):
        rows = Path("/etc", name).read_text().splitlines()
        system = [r for r in rows if r.count(":") >= 3 and _system(int(r.split(":")[2]))]
        (dest / "etc" / name).write_text("\n".join(system) + "\n")
    (dest / MARKER).write_text(
        "FactoryHub demo image: Debian packages of the host that built it, nothing downloaded\n"
        f"packages: {' '.join(packages)}\n"
    )


def main(argv: list[str]) -> int:
    mount_points = [a.removeprefix("--mount-point=") for a in argv if a.startswith("--")]
    names = [a for a in argv if not a.startswith("--")]
    if len(names) < 2 or any(not m.startswith("/") or ".." in m for m in mount_points):
        sys.exit("usage: build_rootfs.py DEST [--mount-point=/ABSOLUTE/PATH …] PACKAGE…")
    dest = Path(names[0])
    packages = closure(names[1:])
    building = dest.with_name(dest.name + ".new")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True, mode=0o755)
    skeleton(building, packages, mount_points)
    for package in packages:
        for path in files_of(package):
            copy(path, building)
    for path in (building, *building.rglob("*")):
        if not path.is_symlink():  # readable by every learner; no set-id bit leaves dpkg's care
            mode = path.stat().st_mode & ~0o6000
            path.chmod(mode | (0o555 if path.is_dir() else 0o444))
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    building.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    print(f"{dest}: {len(packages)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
