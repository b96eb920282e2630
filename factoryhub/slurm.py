"""The one seam to the scheduler: Slurm commands as argv lists, and pure parsers of their output.

Every command runs through `asyncio.create_subprocess_exec` with a deadline (an unreachable
controller makes Slurm retry for ~9 s per call), never a shell. Failures are classified: a
scheduler that cannot be reached is `SchedulerUnavailable` ("unknown, keep"), anything else a
`SlurmError` carrying Slurm's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .capacity import (
    SINFO_FORMAT,
    Capacity,
    parse_partitions,
    parse_reservations,
    parse_sinfo_nodes,
)

# squeue's fields, in order. The comment (%k) is last because it is free text a job can set.
SQUEUE_FIELDS = (
    "job_id",
    "state",
    "reason",
    "nodes",
    "name",
    "user",
    "time_left",
    "start",
    "comment",
)
SQUEUE_FORMAT = "%i|%T|%r|%N|%j|%u|%L|%S|%k"

_UNAVAILABLE = (
    "unable to contact slurm controller",
    "socket timed out",
    "zero bytes were transmitted",
    "transport endpoint is not connected",
    "connection refused",
    "slurm_receive_msg",
    "rate limit",
    "communication connection failure",
)


class SlurmError(RuntimeError):
    """Slurm refused or failed a command; the message is Slurm's own, trimmed."""


class SchedulerUnavailable(SlurmError):
    """The controller could not be reached or did not answer in time: state unknown, keep."""


class UnknownJob(SlurmError):
    """The controller answered and does not know the job (it left the queue long ago)."""


@dataclass(frozen=True)
class JobInfo:
    """One row of `squeue` for a job."""

    job_id: str
    state: str
    reason: str
    nodes: str
    name: str
    user: str
    time_left: str
    start: str
    comment: str


@dataclass(frozen=True)
class Completed:
    """A finished command."""

    returncode: int
    stdout: str
    stderr: str


def classify_failure(argv: list[str], result: Completed) -> SlurmError:
    """The error a failed Slurm command means; pure, tested with real Slurm messages."""
    text = (result.stderr or result.stdout).strip()
    lowered = text.lower()
    message = f"{Path(argv[0]).name} failed (exit {result.returncode}): {text[:500]}"
    if "invalid job id specified" in lowered:
        return UnknownJob(message)
    if not text or any(marker in lowered for marker in _UNAVAILABLE):
        return SchedulerUnavailable(message if text else f"{message}no output")
    return SlurmError(message)


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """Rows of `squeue --noheader --format=SQUEUE_FORMAT` by job id."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|", len(SQUEUE_FIELDS) - 1)
        if len(parts) != len(SQUEUE_FIELDS):
            raise SlurmError(f"unexpected squeue line: {line[:200]!r}")
        row = dict(zip(SQUEUE_FIELDS, parts, strict=True))
        if row["comment"] == "(null)":
            row["comment"] = ""
        jobs[row["job_id"]] = JobInfo(**row)
    return jobs


_JOB_ID = re.compile(r"^(\d+)(;[\w.-]+)?$")


def parse_job_id(text: str) -> str:
    """The job id from `sbatch --parsable` output (``123`` or ``123;cluster``)."""
    match = _JOB_ID.match(text.strip())
    if not match:
        raise SlurmError(f"sbatch printed no job id: {text.strip()[:200]!r}")
    return match.group(1)


@dataclass(frozen=True)
class Associations:
    """The Slurm accounts and QoS a user may charge, as the accounting database has them."""

    accounts: tuple[str, ...] = ()
    qos: tuple[str, ...] = ()


def parse_associations(text: str) -> Associations:
    """`sacctmgr --noheader --parsable2 show associations … format=Account,QOS` rows: one per
    association, its QoS comma-separated; names kept in order, once."""
    accounts: dict[str, None] = {}
    qos: dict[str, None] = {}
    for line in text.splitlines():
        account, bar, names = line.strip().partition("|")
        if not bar:
            continue
        if account:
            accounts[account] = None
        qos.update(dict.fromkeys(n for n in names.split(",") if n))
    return Associations(tuple(accounts), tuple(qos))


_GRANTED = re.compile(r"Granted job allocation (\d+)")


def parse_allocation(text: str) -> str | None:
    """The job id from `salloc`'s "Granted job allocation N", None when there is none."""
    match = _GRANTED.search(text)
    return match.group(1) if match else None


def parse_position(text: str, job_id: str) -> int | None:
    """Where `job_id` is in a priority-sorted list of job ids (1-based), None if absent."""
    ids = text.split()
    return ids.index(job_id) + 1 if job_id in ids else None


def parse_ping(text: str) -> bool:
    """True when `scontrol ping` reports a controller UP."""
    return bool(re.search(r"\bis UP\b", text))


def parse_node_addresses(text: str) -> dict[str, str]:
    """NodeName → NodeAddr from `scontrol show node --oneliner`."""
    addresses: dict[str, str] = {}
    for line in text.splitlines():
        fields = parse_fields(line)
        if "NodeName" in fields:
            addresses[fields["NodeName"]] = fields.get("NodeAddr") or fields["NodeName"]
    return addresses


# A learner's own jobs, for the job monitor: what squeue can say in one call.
USER_JOB_FIELDS = (
    "job_id",
    "state",
    "reason",
    "nodes",
    "name",
    "partition",
    "cpus",
    "tres",
    "time_used",
    "time_limit",
    "time_left",
    "start",
    "submit",
)
USER_JOB_FORMAT = "%i|%T|%r|%N|%j|%P|%C|%b|%M|%l|%L|%S|%V"


@dataclass(frozen=True)
class UserJob:
    """One of a learner's jobs as `squeue` lists it."""

    job_id: str
    state: str
    reason: str
    nodes: str
    name: str
    partition: str
    cpus: str
    tres: str  # generic resources per node, e.g. "gres:gpu:h100:2" or "N/A"
    time_used: str
    time_limit: str
    time_left: str
    start: str
    submit: str


def parse_user_jobs(text: str) -> list[UserJob]:
    """Rows of `squeue --format=USER_JOB_FORMAT`, newest job first. The job name is the only
    free text and may hold "|": it is taken as what lies between the fixed fields."""
    jobs = []
    head, tail = USER_JOB_FIELDS.index("name"), len(USER_JOB_FIELDS) - USER_JOB_FIELDS.index("name")
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split("|")
        if len(parts) < len(USER_JOB_FIELDS):
            raise SlurmError(f"unexpected squeue line: {line[:200]!r}")
        name = "|".join(parts[head : len(parts) - tail + 1])
        values = [*parts[:head], name, *parts[len(parts) - tail + 1 :]]
        jobs.append(UserJob(*values))
    return sorted(jobs, key=lambda j: int(j.job_id.split("_")[0]), reverse=True)


def parse_fields(text: str) -> dict[str, str]:
    """`Key=Value` pairs of one `scontrol show … --oneliner` line."""
    return dict(re.findall(r"(\w+)=(\S*)", text))


def parse_consumed_energy(text: str) -> dict[str, float]:
    """JobID → joules from `sacct --parsable2 --format=JobID,ConsumedEnergyRaw`."""
    energy: dict[str, float] = {}
    for line in text.splitlines():
        job_id, _, joules = line.partition("|")
        if job_id.isdigit() and joules.strip().isdigit():
            energy[job_id] = float(joules)
    return energy


class SlurmClient:
    """Runs Slurm's commands. One instance per hub process; tests inject a fake instead."""

    def __init__(
        self, bin_dir: str = "/usr/bin", timeout: float = 20.0, *, switch_user: bool = True
    ) -> None:
        self.bin_dir = bin_dir
        self.timeout = timeout
        # The hub (root) submits as the learner through runuser; a learner's own kernel
        # (widgets) already is the learner and runs Slurm's commands directly.
        self.switch_user = switch_user

    def _cmd(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def _as(self, user: str, name: str) -> list[str]:
        command = self._cmd(name)
        return ["/usr/sbin/runuser", "-u", user, "--", command] if self.switch_user else [command]

    async def run(
        self,
        argv: list[str],
        *,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed:
        """Run one command; raise a classified `SlurmError` unless it exits 0."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot run {argv[0]}: {exc}") from None
        data = stdin.encode() if stdin is not None else None
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SchedulerUnavailable(
                f"{Path(argv[0]).name} did not answer within {self.timeout:g} s"
            ) from None
        result = Completed(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if result.returncode != 0:
            raise classify_failure(argv, result)
        return result

    async def submit(self, script: str, *, user: str, env: Mapping[str, str], cwd: str) -> str:
        """Submit `script` as `user` (their uid, gid, HOME) and return the job id."""
        argv = [*self._as(user, "sbatch"), "--parsable"]
        result = await self.run(argv, stdin=script, env=env, cwd=cwd)
        return parse_job_id(result.stdout)

    async def allocate_now(
        self, options: list[str], *, user: str, env: Mapping[str, str], cwd: str
    ) -> str | None:
        """An allocation that starts this instant (`salloc --immediate --no-shell`) as `user`,
        or None when Slurm would not start it at once: no room right now, or anything else the
        queue should decide and explain (limits, reservations). Batch jobs wait for the
        controller's scheduling tick; an immediate allocation does not."""
        argv = [*self._as(user, "salloc"), "--immediate", "--no-shell", *options]
        try:
            result = await self.run(argv, env=env, cwd=cwd)
        except SchedulerUnavailable:
            raise
        except SlurmError:
            return None  # "Requested nodes are busy", a limit, …: sbatch will say or queue
        return parse_allocation(result.stderr)

    async def launch_step(
        self,
        job_id: str,
        options: list[str],
        command: list[str],
        *,
        user: str,
        env: Mapping[str, str],
        cwd: str,
        log_path: str,
        stdout: int | None = None,
    ) -> None:
        """Start `command` as a step of allocation `job_id` through a detached `srun`
        (`setsid --fork`): the hub waits only for the fork, never for the step, and the step
        outlives the hub (it even outlives its `srun`). `srun`'s own messages go to
        `log_path`, a file of the hub's; what the step writes to its standard output goes to
        the file descriptor `stdout` (nowhere by default)."""
        srun = [self._cmd("srun"), f"--jobid={job_id}", *options, *command]
        argv = ["/usr/bin/setsid", "--fork", *srun]
        if self.switch_user:
            argv = ["/usr/sbin/runuser", "-u", user, "--", *argv]
        with open(log_path, "ab", buffering=0) as log:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL if stdout is None else stdout,
                    stderr=log,
                    env=dict(env),
                    cwd=cwd,
                )
            except OSError as exc:
                raise SlurmError(f"cannot run srun: {exc}") from None
            try:
                returncode = await asyncio.wait_for(proc.wait(), self.timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise SlurmError(f"srun did not detach within {self.timeout:g} s") from None
        if returncode != 0:
            raise SlurmError(f"srun could not be started (exit {returncode})")

    async def query(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """One `squeue` for all `job_ids`; jobs Slurm no longer knows are absent."""
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return {}
        argv = [self._cmd("squeue"), "--noheader", "--states=all", f"--format={SQUEUE_FORMAT}"]
        try:
            result = await self.run([*argv, f"--jobs={','.join(ids)}"])
        except UnknownJob:
            return {}  # squeue says so only when a single id was asked for
        return parse_squeue(result.stdout)

    async def tagged_jobs(self, prefix: str) -> list[JobInfo]:
        """Every queued, running or ending job whose name starts with `prefix`; the submit
        time is in `start` (``%V``)."""
        fmt = SQUEUE_FORMAT.replace("%S", "%V")
        result = await self.run([self._cmd("squeue"), "--noheader", f"--format={fmt}"])
        return [j for j in parse_squeue(result.stdout).values() if j.name.startswith(prefix)]

    async def cancel(self, job_id: str) -> None:
        """Cancel a job; a job Slurm no longer knows is already cancelled."""
        with contextlib.suppress(UnknownJob):
            await self.run([self._cmd("scancel"), job_id])

    async def user_jobs(self, user: str) -> list[UserJob]:
        """All of `user`'s jobs Slurm still lists (pending, running, recently ended): one
        `squeue` whatever their number."""
        argv = [self._cmd("squeue"), "--noheader", "--states=all", f"--user={user}"]
        result = await self.run([*argv, f"--format={USER_JOB_FORMAT}"])
        return parse_user_jobs(result.stdout)

    async def job_output_path(self, job_id: str) -> str:
        """Where a job writes its standard output (`scontrol show job`'s StdOut)."""
        result = await self.run([self._cmd("scontrol"), "show", "job", job_id, "--oneliner"])
        return parse_fields(result.stdout).get("StdOut", "")

    async def consumed_energy(self, job_ids: Iterable[str]) -> dict[str, float]:
        """Joules Slurm's energy accounting measured per job (`sacct`); empty where the site
        gathers none or has no accounting database."""
        ids = sorted(set(job_ids), key=int)
        if not ids:
            return {}
        argv = [self._cmd("sacct"), "--noheader", "--parsable2", "--allocations"]
        argv += ["--format=JobID,ConsumedEnergyRaw", f"--jobs={','.join(ids)}"]
        try:
            result = await self.run(argv)
        except SlurmError:
            return {}  # "Slurm accounting storage is disabled" on sites without slurmdbd
        return parse_consumed_energy(result.stdout)

    async def associations(self, user: str) -> Associations | None:
        """`user`'s accounts and QoS from the accounting database; None where the site has
        none (`sacctmgr` refuses at once without slurmdbd) or it does not answer."""
        argv = [self._cmd("sacctmgr"), "--noheader", "--parsable2", "show", "associations"]
        argv += ["where", f"users={user}", "format=Account,QOS"]
        try:
            result = await self.run(argv)
        except SlurmError:
            return None
        return parse_associations(result.stdout)

    async def queue_position(self, job_id: str, partition: str) -> int | None:
        """1-based place of a pending job among its partition's pending jobs, by priority."""
        result = await self.run(
            [
                self._cmd("squeue"),
                "--noheader",
                "--states=PENDING",
                f"--partition={partition}",
                "--sort=-p,i",
                "--format=%i",
            ]
        )
        return parse_position(result.stdout, job_id)

    async def controller_up(self) -> bool:
        """`scontrol ping` (milliseconds, where a failing sbatch retries for ~18 s)."""
        try:
            result = await self.run([self._cmd("scontrol"), "ping"])
        except SlurmError:  # exits 1 and prints "is DOWN" when no controller answers
            return False
        return parse_ping(result.stdout)

    async def capacity(self) -> Capacity:
        """Partitions and per-node free capacity, in two commands."""
        parts = await self.run([self._cmd("scontrol"), "show", "partition", "--oneliner"])
        nodes = await self.run(
            [self._cmd("sinfo"), "--noheader", "--Node", "--Format", SINFO_FORMAT]
        )
        reservations = await self.run([self._cmd("scontrol"), "show", "reservation", "--oneliner"])
        return Capacity(
            parse_partitions(parts.stdout),
            parse_sinfo_nodes(nodes.stdout),
            parse_reservations(reservations.stdout),
        )

    async def sbatch_test_only(self, argv: list[str], *, user: str, cwd: str) -> str:
        """`sbatch --test-only` as `user`; Slurm's answer ("Job N to start at …")."""
        command = [*self._as(user, "sbatch"), "--test-only"]
        result = await self.run([*command, *argv, "--wrap", "true"], cwd=cwd)
        return (result.stderr or result.stdout).strip()

    async def node_addresses(self) -> dict[str, str]:
        """NodeName → address the hub should connect to (NodeAddr)."""
        result = await self.run([self._cmd("scontrol"), "show", "node", "--oneliner"])
        return parse_node_addresses(result.stdout)
