"""`factoryhub environments …`: the site's software environments.

- `list`: each environment, what it loads (modules or an image) and its kernel.
- `install` (root): one JupyterLab kernel per module environment in `[software] kernels_dir`
  (a kernel.json and the launcher that loads the modules; `factoryhub.software`). Run it on
  every node sessions run on, or point kernels_dir at a folder they share.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from factoryhub.courses.cli import site_path
from factoryhub.site import Site, SiteError, load_site
from factoryhub.software import kernel_launcher, kernel_name, kernel_spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    envs = sub.add_parser("environments", help="software environments: list, install kernels")
    actions = envs.add_subparsers(dest="environments_action", required=True)
    for name, text in (
        ("list", "each environment and what it loads"),
        ("install", "write each module environment's JupyterLab kernel (root)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--site", type=Path, help="site.toml (default: the installed site)")


def main(args: argparse.Namespace) -> int:
    try:
        site = load_site(site_path(args.site))
    except (OSError, SiteError, SystemExit) as exc:
        print(f"error: cannot read the site file: {exc}")
        return 3
    if args.environments_action == "list":
        for name, env in site.environments.items():
            what = f"modules {' '.join(env.modules)}" if env.modules else ""
            what = what or (f"image {env.image}" if env.image else f"prefix {env.prefix}")
            print(f"{name}: {env.label} [{what}]")
        return 0
    try:
        for name in install_kernels(site):
            print(f"kernel {name} in {site.software.kernels_dir}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return 1
    return 0


def _ours(folder: Path) -> bool:
    """A kernel folder FactoryHub wrote (another's kernel of the same name is left alone)."""
    try:
        spec = json.loads((folder / "kernel.json").read_text())
    except (OSError, ValueError):
        return not folder.exists()
    return isinstance(spec, dict) and "factoryhub_environment" in spec.get("metadata", {})


def _write(path: Path, text: str, mode: int) -> None:
    try:  # the same text and mode already: left as it is (its mtime kept)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as current:
            if os.fstat(fd).st_mode & 0o7777 == mode and current.read() == text:
                return
    except (OSError, UnicodeDecodeError):
        pass
    new = path.with_name(path.name + ".new")
    new.unlink(missing_ok=True)
    fd = os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(new, mode)
    os.replace(new, path)


def install_kernels(site: Site) -> list[str]:
    """Write the kernel of every module environment; the names written."""
    base = Path(site.software.kernels_dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o755)
    written = []
    for name, env in site.environments.items():
        if not env.modules:
            continue
        folder = base / kernel_name(name)
        if folder.is_symlink() or not _ours(folder):
            raise ValueError(f"{folder} is not a kernel FactoryHub wrote: left alone")
        folder.mkdir(exist_ok=True, mode=0o755)
        _write(folder / "launch", kernel_launcher(site.software, name, env.modules), 0o755)
        _write(folder / "kernel.json", kernel_spec(site.software, name, env.label), 0o644)
        written.append(name)
    return written
