"""Slurm's job records read as JSON (`squeue --json`): the one way FactoryHub reads jobs.

A job's owner controls its name, comment, working directory and output paths, and Slurm's text
formats print those raw: a comment holding a newline and ``|`` prints as extra rows describing
any job the owner likes (seen on Slurm 22.05). In JSON every string is escaped, so no field of a
job can make another record. What is left untrusted is the *content* of the user-set fields;
callers compare a job's id, user and name with what they recorded before they act on it.

The parser is pure and tolerant of each record: a malformed or duplicated record is left out and
named in `JobTable.problems`, never a reason to fail the others. Only an answer that is not JSON
at all, or a data-parser version FactoryHub does not know, fails the whole read.

Verified live with Slurm 22.05 (plugin ``openapi/v0.0.38``; its ``squeue --json`` ignores
``--jobs``/``--user`` filters and lists every job the caller may see). Later releases print
data parser v0.0.39 (23.02) to v0.0.44 (25.11): numbers wrapped in ``{"set", "infinite",
"number"}`` objects, and from v0.0.40 on (23.11) the parser named in ``meta.plugin.data_parser``
and states as lists of a base state and flags. Those shapes are decoded as Slurm's own sources
at each release define them (`tests/unit/data/slurm/`), not yet run against a live Slurm here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .slurmoutput import JobInfo, SlurmError, UserJob

KNOWN_PARSERS = ("v0.0.38", "v0.0.39", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44")
MAX_TEXT = 1024  # Slurm keeps ~1 KB of a comment; anything longer is not Slurm's
_VERSION = re.compile(r"v\d+\.\d+\.\d+")


@dataclass(frozen=True)
class JobTable:
    """Jobs by id, and what was left out and why (bounded texts for the log)."""

    jobs: dict[str, JobInfo]
    user_jobs: dict[str, UserJob]
    problems: tuple[str, ...] = ()


def parser_version(meta: object) -> str:
    """The data parser's version named in `meta`, e.g. ``v0.0.38``; "" when none is named."""
    if not isinstance(meta, Mapping):
        return ""
    names = []
    plugin = meta.get("plugin")
    if isinstance(plugin, Mapping):
        names.append(plugin.get("type"))  # 22.05: {"plugin": {"type": "openapi/v0.0.38"}}
        names.append(plugin.get("data_parser"))  # 23.11+: {"plugin": {"data_parser": …}}
    plugins = meta.get("plugins")
    if isinstance(plugins, Mapping):
        names.append(plugins.get("data_parser"))  # 23.02+: {"plugins": {"data_parser": …}}
    for name in names:
        if isinstance(name, str) and (match := _VERSION.search(name)):
            return match.group(0)
    return ""


def slurm_release(meta: object) -> str:
    """The Slurm release named in `meta` (``"24.05.4"``; "Slurm" in 22.05-23.02, "slurm"
    after), "" when none is named."""
    if not isinstance(meta, Mapping):
        return ""
    for key in ("slurm", "Slurm"):
        about = meta.get(key)
        if isinstance(about, Mapping) and isinstance(about.get("release"), str):
            return about["release"][:40]
    return ""


def _number(value: object) -> int | None:
    """An integer field: a plain number (v0.0.38) or ``{"set", "infinite", "number"}``."""
    if isinstance(value, Mapping):
        if not value.get("set", True) or value.get("infinite"):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError("not a string Slurm would print")
    return value


# v0.0.40+ list a job's base state and its flags (["RUNNING", "CONFIGURING"]); Slurm's text
# formats and v0.0.38/39 print one word, a flag before the base state, in this order
# (`job_state_string`, src/common/slurm_protocol_defs.c): the same word is read from both.
_FLAG_WORDS = (
    "COMPLETING",
    "STAGE_OUT",
    "CONFIGURING",
    "EXPEDITING",  # 25.11
    "RESIZING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "SPECIAL_EXIT",
    "STOPPED",
    "REVOKED",
    "RESV_DEL_HOLD",
    "SIGNALING",
)


def _state(value: object) -> str:
    if isinstance(value, list):
        flagged = [word for word in _FLAG_WORDS if word in value]
        value = flagged[0] if flagged else (value[0] if value else "")
    state = _text(value)
    if not re.fullmatch(r"[A-Z_]{1,40}", state):
        raise ValueError("not a job state")
    return state


def _when(value: object) -> str:
    """A Unix time as Slurm's text formats print it (local ISO time), "N/A" for none."""
    seconds = _number(value)
    if not seconds:
        return "N/A"
    return datetime.fromtimestamp(seconds).isoformat(timespec="seconds")


def format_duration(seconds: int) -> str:
    """Seconds as Slurm prints durations: ``M:SS``, ``H:MM:SS`` or ``D-HH:MM:SS``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def _job_id(record: Mapping) -> str:
    job_id = _number(record.get("job_id"))
    if job_id is None or job_id <= 0:
        raise ValueError("no job id")
    return str(job_id)


def _records(record: Mapping, now: float) -> tuple[JobInfo, UserJob]:
    """One JSON job record as the hub's `JobInfo` and the monitor's `UserJob`."""
    job_id, state = _job_id(record), _state(record.get("job_state"))
    reason, nodes = _text(record.get("state_reason")), _text(record.get("nodes"))
    name, user = _text(record.get("name")), _text(record.get("user_name"))
    start, submit = _when(record.get("start_time")), _when(record.get("submit_time"))
    started, ends = _number(record.get("start_time")) or 0, _number(record.get("end_time")) or 0
    live = state in ("RUNNING", "COMPLETING", "SUSPENDED")
    limit = _number(record.get("time_limit"))
    info = JobInfo(
        job_id=job_id,
        state=state,
        reason=reason,
        nodes=nodes,
        name=name,
        user=user,
        time_left=format_duration(ends - now) if live and ends else "",
        start=start,
        comment=_text(record.get("comment")),
        submit=submit,
        end=_when(record.get("end_time")),
    )
    job = UserJob(
        job_id=job_id,
        state=state,
        reason=reason,
        nodes=nodes,
        name=name,
        partition=_text(record.get("partition")),
        cpus=str(_number(record.get("cpus")) or 0),
        tres=_text(record.get("tres_per_node")) or "N/A",
        time_used=format_duration(now - started) if live and started else "0:00",
        time_limit=format_duration(limit * 60) if limit is not None else "UNLIMITED",
        time_left=info.time_left or "N/A",
        start=start,
        submit=submit,
        qos=_text(record.get("qos")),
    )
    return info, job


def parse_job_table(text: str, now: float | None = None) -> JobTable:
    """Every job in `squeue --json` output. Records that do not decode, and every record of an
    id that appears more than once, are left out and named in `problems`."""
    try:
        data = json.loads(text)
    except ValueError:
        raise SlurmError(f"squeue --json printed no JSON: {text[:200]!r}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("jobs"), list):
        raise SlurmError("squeue --json printed no list of jobs")
    version = parser_version(data.get("meta"))
    if version not in KNOWN_PARSERS:
        release = slurm_release(data.get("meta"))
        raise SlurmError(
            f"squeue --json{f' of Slurm {release}' if release else ''} uses data parser"
            f" {version or '(unnamed)'}; FactoryHub reads {', '.join(KNOWN_PARSERS)}"
        )
    now = datetime.now().timestamp() if now is None else now
    infos: dict[str, JobInfo] = {}
    jobs: dict[str, UserJob] = {}
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, record in enumerate(data["jobs"]):
        try:
            if not isinstance(record, Mapping):
                raise ValueError("not a record")
            info, job = _records(record, now)
        except ValueError as exc:
            problems.append(f"job record {index} left out: {exc}")
            continue
        seen[info.job_id] = seen.get(info.job_id, 0) + 1
        infos[info.job_id], jobs[info.job_id] = info, job
    for job_id, count in seen.items():
        if count > 1:
            problems.append(f"job {job_id} listed {count} times: all its records left out")
            del infos[job_id], jobs[job_id]
    return JobTable(infos, jobs, tuple(problems))


def only(jobs: Mapping[str, JobInfo], job_ids: Iterable[str]) -> dict[str, JobInfo]:
    """The jobs among `jobs` whose ids were asked about, and no others."""
    return {job_id: jobs[job_id] for job_id in job_ids if job_id in jobs}
