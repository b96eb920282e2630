"""Every job script FactoryHub submits, rendered from fixed slots and nothing else (pure).

One renderer (`render_batch`) for every kind of job: a learner's session, a batch job from the
GPU-request widget, a course's validation. Every `#SBATCH` line comes from a checked
`ResourceRequest`, from FactoryHub's own fixed values, or from the site's hooks in site.toml
(`[slurm] extra_directives`, an allow-listed list; `[environments.X] prologue`, lines such as
``module load cuda`` run before the command). No learner text reaches a script unvalidated, and
nothing secret is written into it (the API token travels in the environment of `sbatch`, which
Slurm keeps out of `scontrol show job`). `factoryhub job-script` prints one without submitting.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from factoryhub.durations import format_minutes

from .handshake import READY_FD_ENV
from .request import ResourceRequest
from .site import Site
from .sitehooks import SiteHooks, check_extra_directive, check_prologue_line
from .software import container_launcher, kernel_name, module_prologue

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.:@+-]{1,200}", re.ASCII)
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./%@+-]{1,400}", re.ASCII)
_SAFE_SIGNAL = re.compile(r"B:(USR1|USR2|TERM)@\d{1,5}", re.ASCII)


def site_hooks(site: Site, environment: str) -> SiteHooks:
    """The hooks of `site` for jobs in `environment`: its modules loaded from a clean slate
    (and its kernel the session's default), or its image as the server's launcher; then the
    site's own prologue lines."""
    env = site.environments.get(environment)
    if env is None:
        return SiteHooks(site.slurm.extra_directives)
    modules = module_prologue(site.software, env.modules)
    server_args = ()
    if env.modules:
        kernel = kernel_name(environment)
        server_args = (f"--MappingKernelManager.default_kernel_name={kernel}",)
    return SiteHooks(
        site.slurm.extra_directives,
        (*modules, *env.prologue),
        launcher=container_launcher(site.software, env.image),
        server_args=server_args,
    )


def _server_argv(job: SessionJob) -> tuple[str, ...]:
    """The session's server command under its environment's launcher, with its options."""
    return (*job.hooks.launcher, *job.command, *job.hooks.server_args)


def _prologue(hooks: SiteHooks) -> list[str]:
    if not hooks.prologue:
        return []
    return ["# The site's prologue for this environment", *map(check_prologue_line, hooks.prologue)]


@dataclass(frozen=True)
class BatchSpec:
    """The slots of one batch script: FactoryHub fills `setup` (where output goes, the working
    directory) and `body` (the command) from checked parts only."""

    name: str
    request: ResourceRequest
    output: str
    setup: tuple[str, ...]
    body: tuple[str, ...]
    hooks: SiteHooks = field(default_factory=SiteHooks)
    signal: str = ""


def render_batch(spec: BatchSpec) -> str:
    """A whole batch script: the fixed `#SBATCH` slots (name, the request's resources, output,
    ``--export=ALL``, the warning signal), the site's extra directives; then FactoryHub's
    set-up lines, the site's prologue, and the command."""
    options = [
        f"--job-name={_checked(spec.name, _SAFE_NAME, 'job name')}",
        *resource_options(spec.request),
        f"--output={_checked(spec.output, _SAFE_PATH, 'output path')}",
        "--export=ALL",
    ]
    if spec.signal:
        options.append(f"--signal={_checked(spec.signal, _SAFE_SIGNAL, 'signal')}")
    options += [check_extra_directive(d) for d in spec.hooks.extra_directives]
    lines = ["#!/bin/bash", *(f"#SBATCH {option}" for option in options)]
    return "\n".join([*lines, *spec.setup, *_prologue(spec.hooks), *spec.body, ""])


@dataclass(frozen=True)
class SessionJob:
    """Everything a session's batch script needs besides the request itself."""

    request: ResourceRequest
    job_name: str
    command: tuple[str, ...]
    log_dir: str  # relative to the learner's home, created by the job as the learner
    signal: str = ""  # e.g. "B:USR1@300": warn the session before its walltime ends
    hooks: SiteHooks = field(default_factory=SiteHooks)


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} {value[:60]!r} contains characters a job script cannot carry")
    return value


def resource_options(req: ResourceRequest) -> list[str]:
    """What the request asks Slurm for; shared by the job script and start estimates."""
    options = [
        f"--partition={_checked(req.partition, _SAFE_NAME, 'partition')}",
        "--nodes=1",
        "--ntasks=1",
        f"--cpus-per-task={int(req.cpus)}",
        f"--mem={int(req.memory_gb)}G",
        f"--time={format_minutes(int(req.walltime_minutes))}",
    ]
    if req.gpus:
        gpu_type = _checked(req.gpu_type, _SAFE_NAME, "GPU type")
        options.append(f"--gres=gpu:{gpu_type}:{int(req.gpus)}")
    for flag, value in (
        ("account", req.account),
        ("qos", req.qos),
        ("reservation", req.reservation),
    ):
        if value:
            options.append(f"--{flag}={_checked(value, _SAFE_NAME, flag)}")
    return options


SESSION_EXTENSION = "factoryhub.session"


def session_command(
    prefix: str, cmd: tuple[str, ...], args: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The server command of a session in the environment at `prefix`: JupyterHub's `cmd` and
    `args`, a port the server picks, and FactoryHub's in-session extension."""
    return (
        f"{prefix}/bin/{cmd[0]}",
        *cmd[1:],
        *args,
        "--ServerApp.port=0",
        f"--ServerApp.jpserver_extensions={SESSION_EXTENSION}=True",
    )


def _session_lines(job: SessionJob) -> list[str]:
    log_dir = _checked(job.log_dir, _SAFE_PATH, "log directory").strip("/")
    return [
        "# The session's output goes to the learner's own log file, written as the learner;",
        "# what the session writes (the log, notebooks) is readable by the learner alone.",
        "umask 077",
        f'mkdir -p "$HOME/{log_dir}"',
        f'exec >>"$HOME/{log_dir}/session-$SLURM_JOB_ID.log" 2>&1',
        'echo "FactoryHub session: job $SLURM_JOB_ID on $(hostname) as $(id -un)"',
        "# Slurm's walltime warning (SIGUSR1) is ignored until the server installs its handler.",
        "trap '' USR1",
    ]


def render_job_script(job: SessionJob) -> str:
    """A session's batch script. Pure: golden-tested without Slurm."""
    return render_batch(
        BatchSpec(
            name=job.job_name,
            request=job.request,
            output="/dev/null",
            setup=tuple(_session_lines(job)),
            body=(f"exec {shlex.join(_server_argv(job))}",),
            hooks=job.hooks,
            signal=job.signal,
        )
    )


def salloc_options(job: SessionJob) -> list[str]:
    """The options of an immediate allocation: the batch script's, less its output file and
    its warning signal. An allocation has no batch shell, and Slurm would signal every process
    of the step, killing the learner's kernels (seen: the kernel restarted, its state lost);
    the session's own clock warns instead (`session._warn_before_end`)."""
    name = _checked(job.job_name, _SAFE_NAME, "job name")
    extra = [check_extra_directive(d) for d in job.hooks.extra_directives]
    return [f"--job-name={name}", *resource_options(job.request), *extra]


def step_options(job: SessionJob) -> list[str]:
    """`srun`'s options for the session's step in its allocation."""
    return [
        f"--job-name={_checked(job.job_name, _SAFE_NAME, 'job name')}",
        "--ntasks=1",
        f"--cpus-per-task={int(job.request.cpus)}",
        "--input=none",
        "--export=ALL",
    ]


def render_step_script(job: SessionJob, scancel: str) -> str:
    """The script of an immediate allocation's step (run by `bash -c`). Unlike a batch job,
    an allocation outlives its last step, so when the server exits the script ends the
    allocation itself (`scancel` of its own job), leaving nothing to look like a session. The
    server runs as the shell's child until it is gone, so Slurm's kill of the step reaches it."""
    scancel = _checked(scancel, _SAFE_PATH, "scancel path")
    lines = [
        "# The step's own output reaches the hub through srun: the server says there, on fd 3,",
        "# the moment its port is reported, so the hub need not wait for its next look.",
        f"exec 3>&1; export {READY_FD_ENV}=3",
        *_session_lines(job),
        *_prologue(job.hooks),
    ]
    lines += [
        "# Slurm ends a step with SIGTERM, then SIGKILL after KillWait, to the processes it finds",
        "# in the step. A shell killed by the SIGTERM would leave its server to init, outside",
        "# the step (proctrack/linuxproc finds processes by parentage): one slow to stop, or one",
        "# that ignores SIGTERM, would then outlive its job. So the shell passes the signal on and",
        "# stays until the server is gone, and SIGKILL finds both.",
        "trap 'kill -TERM \"$server\" 2>/dev/null' TERM INT HUP",
        f"{shlex.join(_server_argv(job))} &",
        "server=$!",
        'wait "$server"; status=$?',
        'while kill -0 "$server" 2>/dev/null; do wait "$server"; status=$?; done',
        'echo "FactoryHub session: the server exited with status $status;'
        ' ending job $SLURM_JOB_ID"',
        f'exec {scancel} "$SLURM_JOB_ID"',
        "",
    ]
    return "\n".join(lines)
