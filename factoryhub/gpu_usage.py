"""A session's GPU use as ``nvidia-smi`` reports it, and whether it counts as activity (pure).

The session's server extension (`factoryhub.session.gpu_activity`) runs, as the learner and
inside the job, `nvidia_smi_argv` for the job's GPUs (`job_gpus`), reads at most
`MAX_OUTPUT` bytes of what it prints and hands them to `parse_gpu_usage`. A GPU busier than
site.toml's ``[culling] gpu_busy_percent`` (`gpu_busy`) counts as activity for the idle
culler, so a training that runs in a background process keeps its session.

What the command prints is read as hostile-ish input: a bounded number of short lines, each
two numbers in their range or a bracketed "not available" word ("[N/A]", "[Not Supported]");
anything else makes the whole reading unreadable (`GpuReadError`), which counts as "cannot
tell": the session is then judged by its kernels and terminals alone, as without GPUs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

QUERY = "utilization.gpu,memory.used"
MAX_GPUS = 64  # more GPU ids than any node holds: the variable is not believed
MAX_OUTPUT = 4096  # bytes read from the command; a longer output is not a reading
MAX_LINE = 200
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB: far above any GPU's memory
# the variables that name the job's GPUs, most specific first (Slurm's are node-global indices,
# as nvidia-smi's -i takes them; CUDA_VISIBLE_DEVICES may be renumbered inside the job)
GPU_VARIABLES = ("SLURM_STEP_GPUS", "SLURM_JOB_GPUS", "CUDA_VISIBLE_DEVICES")
_GPU_ID = re.compile(r"[0-9]{1,3}|(?:GPU|MIG)-[0-9A-Fa-f-]{8,64}", re.ASCII)
_PERCENT = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,2})?", re.ASCII)
_MIB = re.compile(r"[0-9]{1,9}", re.ASCII)
_NOT_AVAILABLE = re.compile(r"\[[A-Za-z /]{1,40}\]|N/A", re.ASCII)  # [N/A], [Not Supported]


class GpuReadError(ValueError):
    """What nvidia-smi printed is not a reading; the message says why (for the log)."""


@dataclass(frozen=True)
class GpuUsage:
    """One GPU's reading: utilisation in percent and memory used in MiB (None: not known)."""

    utilization: float | None
    memory_mib: int | None


def job_gpus(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The ids of the GPUs the job holds, from the first of `GPU_VARIABLES` that is set; ()
    when none is, when it names none ("NoDevFiles", "") or when any id is not an index or a
    GPU/MIG UUID (a variable a process could have changed is not passed on unchecked)."""
    for name in GPU_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        ids = tuple(part.strip() for part in value[: MAX_GPUS * 80].split(","))
        if len(ids) > MAX_GPUS or not all(_GPU_ID.fullmatch(i) for i in ids):
            return ()
        return tuple(dict.fromkeys(ids))
    return ()


def nvidia_smi_argv(executable: str, gpus: Iterable[str]) -> list[str]:
    """The argv that reads `gpus`' utilisation and memory, one CSV line each, no header or
    units (`gpus`: `job_gpus`'s checked ids)."""
    return [
        executable,
        f"--query-gpu={QUERY}",
        "--format=csv,noheader,nounits",
        "-i",
        ",".join(gpus),
    ]


def _field(text: str, pattern: re.Pattern[str], limit: float, what: str) -> float | None:
    text = text.strip()
    if _NOT_AVAILABLE.fullmatch(text):
        return None
    if not pattern.fullmatch(text):
        raise GpuReadError(f"{what} is not a number: {text[:20]!r}")
    value = float(text)
    if value > limit:
        raise GpuReadError(f"{what} out of range: {text}")
    return value


def parse_gpu_usage(output: str | bytes, expected: int | None = None) -> tuple[GpuUsage, ...]:
    """The readings in nvidia-smi's ``csv,noheader,nounits`` output of `QUERY`, one per line
    (`expected`: how many GPUs were asked for; another count is not a reading).

    Raises `GpuReadError` for an output longer than `MAX_OUTPUT` bytes, a line longer than
    `MAX_LINE`, a line that is not two fields, a field that is neither a number in range nor
    a bracketed "not available", and no line at all."""
    if isinstance(output, bytes):
        if len(output) > MAX_OUTPUT:
            raise GpuReadError(f"more than {MAX_OUTPUT} bytes of output")
        output = output.decode("ascii", errors="replace")
    if len(output) > MAX_OUTPUT:
        raise GpuReadError(f"more than {MAX_OUTPUT} characters of output")
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        raise GpuReadError("no reading")
    if len(lines) > MAX_GPUS or (expected is not None and len(lines) != expected):
        raise GpuReadError(f"{len(lines)} lines for {expected or 'at most 64'} GPUs")
    readings = []
    for line in lines:
        if len(line) > MAX_LINE:
            raise GpuReadError(f"a line of {len(line)} characters")
        fields = line.split(",")
        if len(fields) != 2:
            raise GpuReadError(f"{len(fields)} fields in a line, not 2")
        utilization = _field(fields[0], _PERCENT, 100, "utilization.gpu")
        memory = _field(fields[1], _MIB, MAX_MEMORY_MIB, "memory.used")
        readings.append(GpuUsage(utilization, None if memory is None else int(memory)))
    return tuple(readings)


def gpu_busy(readings: Iterable[GpuUsage], busy_percent: float) -> bool:
    """Whether any GPU's utilisation is above `busy_percent` ([culling] gpu_busy_percent).
    Memory held is not use: a notebook that loaded a model and went to lunch holds memory on
    an idle GPU. A GPU whose utilisation is not known never counts."""
    return any(r.utilization is not None and r.utilization > busy_percent for r in readings)


def describe_readings(readings: Iterable[GpuUsage]) -> str:
    """The readings in a few words for the session's log ("GPU 0: 87 %, 1024 MiB")."""

    def known(value: float | None, unit: str) -> str:
        return "?" if value is None else f"{value:g} {unit}"

    return "; ".join(
        f"GPU {i}: {known(r.utilization, '%')}, {known(r.memory_mib, 'MiB')}"
        for i, r in enumerate(readings)
    )
