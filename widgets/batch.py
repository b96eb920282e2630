"""A batch job a learner submits from a notebook: a checked resource request (the spawner's own
`parse_request`) plus what to run — a script, or a notebook executed by papermill with
parameters — rendered into a job script from fixed slots.

The path to run is checked against an allow-list pattern and must lie inside the learner's home;
papermill's parameters never enter the script: they travel in a JSON file beside it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from factoryhub import jobnames
from factoryhub.jobscript import BatchSpec, render_batch
from factoryhub.request import RequestError, ResourceRequest
from factoryhub.sitehooks import SiteHooks

RUN_KINDS = {".py": "python script", ".sh": "shell script", ".ipynb": "notebook (papermill)"}
JOBS_DIR = ".factoryhub/jobs"  # relative to the learner's home: outputs and parameter files
MAX_PARAMETERS_BYTES = 2048
_SAFE_PATH = re.compile(r"[A-Za-z0-9_./@+-]{1,300}", re.ASCII)
_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}", re.ASCII)


@dataclass(frozen=True)
class RunTarget:
    """What a batch job runs: `path` relative to the learner's home; `parameters` only for a
    notebook (papermill injects them)."""

    path: str
    parameters: dict[str, object] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return Path(self.path).suffix

    @property
    def stem(self) -> str:
        return Path(self.path).stem


def parse_parameters(text: str) -> dict[str, object]:
    """Papermill parameters as a JSON object of names to numbers, strings or booleans."""
    if not text.strip():
        return {}
    if len(text.encode()) > MAX_PARAMETERS_BYTES:
        raise RequestError(f"parameters: at most {MAX_PARAMETERS_BYTES} bytes", "parameters")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(f"parameters: not JSON ({exc.msg})", "parameters") from None
    if not isinstance(value, dict):
        raise RequestError('parameters: expected an object such as {"epochs": 2}', "parameters")
    for key, item in value.items():
        if not _SAFE_KEY.fullmatch(key):
            raise RequestError(f"parameters: {key[:40]!r} is not a Python name", "parameters")
        if not isinstance(item, str | int | float | bool):
            raise RequestError(
                f"parameters: {key} must be a number, a string or true/false", "parameters"
            )
    return value


def parse_run(path: str, parameters: str, home: Path) -> RunTarget:
    """Check what to run: an existing script or notebook inside `home`."""
    text = path.strip()
    if not text:
        raise RequestError("run: give the path of a script or notebook to run", "run")
    if not _SAFE_PATH.fullmatch(text) or ".." in Path(text).parts or text.startswith("/"):
        raise RequestError(
            "run: use a path inside your home made of letters, digits and . _ - / @ +", "run"
        )
    if Path(text).suffix not in RUN_KINDS:
        kinds = ", ".join(RUN_KINDS)
        raise RequestError(f"run: {text!r} is not a {kinds} file", "run")
    if not (home / text).is_file():
        raise RequestError(f"run: {text!r} does not exist in your home", "run")
    params = parse_parameters(parameters)
    if params and Path(text).suffix != ".ipynb":
        raise RequestError("parameters: only a notebook takes papermill parameters", "parameters")
    return RunTarget(text, params)


@dataclass(frozen=True)
class BatchJob:
    """Everything the job script of a learner's batch job needs."""

    request: ResourceRequest
    run: RunTarget
    prefix: str  # the environment's Python prefix
    params_file: str = ""  # relative to home, written by the widget before submitting
    hooks: SiteHooks = field(default_factory=SiteHooks)


def job_name(run: RunTarget) -> str:
    return jobnames.batch_job_name(run.stem)


def run_command(job: BatchJob) -> list[str]:
    """The command, word by word (every word already checked)."""
    bin_dir = f"{job.prefix}/bin"
    if job.run.kind == ".py":
        return [f"{bin_dir}/python", job.run.path]
    if job.run.kind == ".sh":
        return ["/bin/bash", job.run.path]
    output = f"{JOBS_DIR}/{job.run.stem}-output-$SLURM_JOB_ID.ipynb"
    command = [f"{bin_dir}/papermill", "--log-output", job.run.path, output]
    return [*command, "-f", job.params_file] if job.params_file else command


def render_batch_script(job: BatchJob) -> str:
    """The whole job script (pure). Runs in the learner's home; output under JOBS_DIR."""
    if not _SAFE_PATH.fullmatch(job.prefix) or not job.prefix.startswith("/"):
        raise ValueError(f"environment prefix {job.prefix[:60]!r} cannot go in a job script")
    words = run_command(job)
    # $SLURM_JOB_ID in the output name must expand: that one word is double-quoted.
    quoted = [f'"{w}"' if "$SLURM_JOB_ID" in w else shlex.quote(w) for w in words]
    setup = (
        'cd "$HOME"',
        f'export PATH="{job.prefix}/bin:$PATH"',
        'echo "FactoryHub batch job $SLURM_JOB_ID on $(hostname),'
        ' GPUs: ${CUDA_VISIBLE_DEVICES:-none}"',
    )
    spec = BatchSpec(
        name=job_name(job.run),
        request=job.request,
        output=f"{JOBS_DIR}/%x-%j.out",
        setup=setup,
        body=("exec " + " ".join(quoted),),
        hooks=job.hooks,
    )
    return render_batch(spec)
