"""Software environments as the site provides them: sets of Lmod modules or container images
(pure). Each environment in site.toml becomes a choice in the spawn form (an allow-list: the
request names an environment, never a module), a prologue in every job script of that
environment, and, for a set of modules, a JupyterLab kernel whose launcher loads them.

Module names, paths and images come from site.toml only and are checked here when the site is
read, and again (`check_module`, `check_path`) when a script is rendered.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .handshake import READY_FD_ENV

# A module as Lmod names it: name/version, each part letters, digits and ._+- only.
_MODULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,79}(/[A-Za-z0-9._+-]{1,80}){0,3}", re.ASCII)
_PATH = re.compile(r"/[A-Za-z0-9_./@+-]{0,400}", re.ASCII)
# A container image: a local file (a .sif on a shared file system) or a registry reference the
# runtime resolves from its own cache (nothing is downloaded by FactoryHub at run time).
_IMAGE = re.compile(
    r"(/[A-Za-z0-9_./@+-]{1,400}|(docker|oras|library)://[A-Za-z0-9_./:@+-]{1,400})", re.ASCII
)
_RUNTIME_OPTION = re.compile(r"--[a-z][a-z-]{1,30}(=[A-Za-z0-9_./:,@+-]{1,200})?", re.ASCII)
KERNEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}", re.ASCII)


class SoftwareError(ValueError):
    """An environment or software setting a job script cannot carry."""


@dataclass(frozen=True)
class SoftwareSettings:
    """How the site's software is reached: its Lmod (the shell init file and the module tree
    FactoryHub's jobs search) and its container runtime (empty: none; image environments
    are refused). `kernels_dir` is where `factoryhub environments install` writes one
    JupyterLab kernel per module environment, a folder Jupyter searches on every node."""

    lmod_init: str = "/usr/share/lmod/lmod/init/bash"
    module_path: tuple[str, ...] = ()
    container_runtime: str = ""  # e.g. "/usr/bin/apptainer" or "/usr/bin/podman"
    # e.g. ["--nv"] on GPU nodes, ["--bind=/project"]; Podman: ["--volume=/home:/home"]
    container_options: tuple[str, ...] = ()
    kernels_dir: str = "/usr/local/share/jupyter/kernels"


class EnvironmentLike(Protocol):
    label: str
    prefix: str
    modules: tuple[str, ...]
    image: str


def check_module(name: str) -> str:
    """`name` if it is a module name Lmod could load (name/version, no shell characters)."""
    if not _MODULE.fullmatch(name):
        raise SoftwareError(f"module {name[:60]!r}: a module is name/version (A-Z a-z 0-9 ._+-)")
    return name


def check_path(path: str, what: str) -> str:
    if not _PATH.fullmatch(path) or "/../" in f"{path}/":
        raise SoftwareError(f"{what} {path[:60]!r} is not an absolute path of plain characters")
    return path


def check_environments(
    software: SoftwareSettings, environments: Mapping[str, EnvironmentLike]
) -> None:
    """Every environment is a set of modules, an image, or neither (a plain prefix), with
    names and paths a job script can carry; images need the site's container runtime."""
    check_path(software.kernels_dir, "software.kernels_dir")
    for path in (software.lmod_init, *software.module_path):
        check_path(path, "software.lmod_init / module_path:")
    if software.container_runtime:
        check_path(software.container_runtime, "software.container_runtime")
    for option in software.container_options:
        if not _RUNTIME_OPTION.fullmatch(option):
            raise SoftwareError(
                f"software.container_options: {option[:60]!r} is not --name[=value]"
            )
    for name, env in environments.items():
        where = f"environments.{name}"
        if env.modules and env.image:
            raise SoftwareError(f"{where}: modules or an image, not both")
        for module in env.modules:
            try:
                check_module(module)
            except SoftwareError as exc:
                raise SoftwareError(f"{where}.modules: {exc}") from None
        if env.modules and not KERNEL_NAME.fullmatch(name):
            raise SoftwareError(f"{where}: a module environment's name is a-z, 0-9, - and _")
        if env.image:
            if not _IMAGE.fullmatch(env.image):
                raise SoftwareError(f"{where}.image: {env.image[:60]!r} is not an image path")
            if not software.container_runtime:
                raise SoftwareError(f"{where}.image: set software.container_runtime to run it")


def module_prologue(software: SoftwareSettings, modules: tuple[str, ...]) -> list[str]:
    """The lines that set up Lmod and load `modules` from a clean slate: what a job script of
    the environment runs before its command, and what its kernel's launcher runs."""
    if not modules:
        return []
    lines = [f"source {shlex.quote(check_path(software.lmod_init, 'Lmod init'))}"]
    if software.module_path:
        paths = ":".join(check_path(p, "module path") for p in software.module_path)
        lines.append(f"export MODULEPATH={shlex.quote(paths)}")
    names = " ".join(shlex.quote(check_module(m)) for m in modules)
    return [*lines, "module --force purge", f"module load {names}"]


# What a session's server needs of a Podman container that Apptainer gives by default: the
# host's network (the hub connects to the port the server reports), the learner's own uid (files
# in the home are theirs; no /etc/passwd of the image is written), the job's environment
# (JupyterHub's variables, SLURM_JOB_ID for the port report), a home as the server's root (the
# job's working directory does not cross into the container), and an init that passes Slurm's
# signals on. The hub's wake-up descriptor does not cross either: its number is cleared, so the
# server never writes to, or closes, a descriptor of its own that happens to bear it.
PODMAN_RUN = (
    "run",
    "--rm",
    "--init",
    "--network=host",
    "--userns=keep-id",
    "--passwd=false",
    "--env-host",
    f"--env={READY_FD_ENV}=",
    "--env=JUPYTERHUB_ROOT_DIR=~",
)


# A Podman container is not a process of its job: conmon, which runs it, leaves the job's process
# tree, and Slurm's signals at a cancel or at the walltime reach only `podman run`, which may die
# before it passes them on (proctrack/linuxproc: 6 cancels of 7 by hand left the container
# running). So `podman run` runs under this guard (fixed text; the runtime, `run` and its
# arguments come as "$@"): the container gets a name of its own, a signal to the guard stops it
# by that name (3 s, then SIGKILL: well inside Slurm's KillWait), and whatever ends `podman run`
# the guard removes the container before it exits with podman's status.
PODMAN_GUARD = """set -u
name="factoryhub-${SLURM_JOB_ID:-0}.${SLURM_STEP_ID:-0}-${HOSTNAME%%.*}-$$"
runtime=$1 command=$2
shift 2
trap '"$runtime" stop --ignore --time=3 "$name" >/dev/null 2>&1' TERM INT HUP
"$runtime" "$command" --name="$name" "$@" &
child=$!
status=0
while true; do
  wait "$child" && status=0 || status=$?
  kill -0 "$child" 2>/dev/null || break
done
"$runtime" rm --force --ignore --time=1 "$name" >/dev/null 2>&1
exit "$status"
"""


def runtime_kind(runtime: str) -> str:
    """ "podman" for Podman (`podman run`), "apptainer" for Apptainer and Singularity
    (`apptainer exec`), told by the program's name."""
    return "podman" if runtime.rsplit("/", 1)[-1].startswith("podman") else "apptainer"


def container_launcher(software: SoftwareSettings, image: str) -> tuple[str, ...]:
    """The argv that runs a command inside `image` (empty for no image). Apptainer:
    `apptainer exec [options] IMAGE COMMAND…`. Podman: `podman run` with what a session needs
    (`PODMAN_RUN`), the site's options, and the image: a local path is an exploded root file
    system (`--rootfs DIR`), anything else an image its storage already has."""
    if not image:
        return ()
    if not _IMAGE.fullmatch(image) or not software.container_runtime:
        raise SoftwareError(f"image {image[:60]!r} cannot be run on this site")
    runtime = check_path(software.container_runtime, "container runtime")
    if runtime_kind(runtime) == "podman":
        where = ("--rootfs", image) if image.startswith("/") else (image,)
        run = (runtime, *PODMAN_RUN, *software.container_options, *where)
        return ("/bin/bash", "--noprofile", "--norc", "-c", PODMAN_GUARD, "factoryhub-podman", *run)
    return (runtime, "exec", *software.container_options, image)


def kernel_name(environment: str) -> str:
    """The JupyterLab kernel of a module environment is named after it."""
    if not KERNEL_NAME.fullmatch(environment):
        raise SoftwareError(f"environment {environment[:40]!r} cannot name a kernel")
    return environment


def kernel_launcher(software: SoftwareSettings, environment: str, modules: tuple[str, ...]) -> str:
    """The launcher script of an environment's kernel (bash, no profile): load the modules,
    then run ipykernel with the Python they put first on PATH. Nothing in it comes from a
    learner: the kernel's argv passes only the connection file Jupyter made."""
    return "\n".join(
        [
            "#!/bin/bash",
            f"# The kernel of FactoryHub's environment {kernel_name(environment)!r}: written from",
            "# site.toml by `factoryhub environments install`; edit site.toml, not this file.",
            "set -e",
            *module_prologue(software, modules),
            'exec python -m ipykernel_launcher -f "$1"',
            "",
        ]
    )


def kernel_spec(software: SoftwareSettings, environment: str, label: str) -> str:
    """kernel.json of an environment's kernel: bash runs the launcher beside it."""
    folder = f"{check_path(software.kernels_dir, 'kernels_dir')}/{kernel_name(environment)}"
    spec = {
        "argv": ["/bin/bash", "--noprofile", "--norc", f"{folder}/launch", "{connection_file}"],
        "display_name": label,
        "language": "python",
        "metadata": {"factoryhub_environment": environment},
    }
    return json.dumps(spec, indent=1) + "\n"


def module_files(module_path: tuple[str, ...], module: str) -> list[str]:
    """Where Lmod would find `module` (name/version) in the module tree: a Lua or Tcl
    modulefile, or the folder of a name given without a version."""
    return [
        candidate
        for root in module_path
        for candidate in (f"{root}/{module}.lua", f"{root}/{module}")
    ]


def needed_paths(
    software: SoftwareSettings, environments: Mapping[str, EnvironmentLike]
) -> dict[str, tuple[str, ...]]:
    """What the environments need on this host, for `factoryhub site check`: a sentence's
    subject, and the paths of which one must exist."""
    needs: dict[str, tuple[str, ...]] = {}
    with_modules = {name: env for name, env in environments.items() if env.modules}
    if with_modules:
        needs[f"[software] lmod_init {software.lmod_init} (Lmod's shell init)"] = (
            software.lmod_init,
        )
    for root in software.module_path:
        needs[f"[software] module_path {root}"] = (root,)
    for name, env in with_modules.items():
        for module in env.modules:
            needs[f"environments.{name}: module {module} (in module_path)"] = tuple(
                module_files(software.module_path, module)
            )
        kernel = f"{software.kernels_dir}/{kernel_name(name)}/kernel.json"
        needs[f"environments.{name}: its kernel {kernel} (factoryhub environments install)"] = (
            kernel,
        )
    if software.container_runtime:
        needs[f"[software] container_runtime {software.container_runtime}"] = (
            software.container_runtime,
        )
    for name, env in environments.items():
        if env.image.startswith("/"):
            needs[f"environments.{name}.image {env.image}"] = (env.image,)
    return needs
