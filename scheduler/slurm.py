"""The one seam to the scheduler: Slurm commands as argv lists (their output is parsed by
`factoryhub.slurmoutput`, whose names are re-exported here).

Every command runs through `asyncio.create_subprocess_exec` with a deadline (an unreachable
controller makes Slurm retry for ~9 s per call), never a shell. Failures are classified: a
scheduler that cannot be reached is `SchedulerUnavailable` ("unknown, keep"), anything else a
`SlurmError` carrying Slurm's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from factoryhub.budget import SSHARE_FORMAT, AccountBudget, parse_sshare
from factoryhub.capacity import (
    SINFO_FORMAT,
    Capacity,
    parse_partitions,
    parse_reservations,
    parse_sinfo_nodes,
)
from factoryhub.jobrecords import JobTable, only, parse_job_table
from factoryhub.slurmapi import SlurmAPI
from factoryhub.slurmoutput import (
    QOS_FORMAT,
    Associations,
    Completed,
    JobInfo,
    QosLimits,
    SchedulerUnavailable,
    SlurmError,
    UnknownJob,
    UserJob,
    classify_failure,
    parse_all_associations,
    parse_allocation,
    parse_associations,
    parse_consumed_energy,
    parse_fields,
    parse_job_id,
    parse_node_addresses,
    parse_ping,
    parse_position,
    parse_qos_limits,
)
from factoryhub.slurmversion import VersionCheck, check_slurm_version

from . import actas

__all__ = [
    "Associations",
    "Completed",
    "JobInfo",
    "JobTable",
    "QosLimits",
    "SchedulerUnavailable",
    "SlurmClient",
    "SlurmError",
    "UnknownJob",
    "UserJob",
    "classify_failure",
    "parse_all_associations",
    "parse_allocation",
    "parse_associations",
    "parse_consumed_energy",
    "parse_fields",
    "parse_job_id",
    "parse_node_addresses",
    "parse_ping",
    "parse_position",
    "parse_qos_limits",
]


log = logging.getLogger(__name__)

# What a Slurm command takes from the caller's environment, and nothing else: the hub, the
# proxy and the services hold tokens in theirs, and a command run as a learner is the
# learner's process (its /proc/<pid>/environ is theirs to read).
PASSED_ENV = ("LANG", "LC_ALL", "TZ", "SLURM_CONF")
COMMAND_PATH = "/usr/bin:/bin"
ACTS_AT_ONCE = 8  # commands run as learners at the same time, per client
# `srun` detaching (`setsid --fork` through fh-act-as) waits for a local fork, not for the
# controller: on a node busy starting fifty JupyterLabs that can take longer than a controller
# is given to answer (the command timeout), and a step killed for it would end a good session.
DETACH_TIMEOUT = 60.0
# A command killed at its deadline has its exit reported by asyncio (3.11) only once every pipe
# to it is closed; a process it left behind (`sudo` killed, the learner's command still
# running) can hold them open for ever. Its exit is waited for this long, then not any more.
REAP_TIMEOUT = 5.0


def _read_bounded(path: str, limit: int = 64 * 1024) -> str:
    """The first `limit` bytes of a file of the hub's, as text ("" when it cannot be read)."""
    try:
        with open(path, "rb") as file:
            return file.read(limit).decode(errors="replace")
    except OSError:
        return ""


def command_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a Slurm command that is given none: the allow-list above."""
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in PASSED_ENV if key in environ}
    env["PATH"] = COMMAND_PATH
    return env


def watch_children_with_pidfd() -> bool:
    """Have asyncio learn of a command's exit through a pidfd on the event loop. Python 3.11's
    default child watcher starts a thread for every command, and the loop waits for that
    thread to start: with 50 learners starting at once the hub's loop spent ~2 s of its time
    there (py-spy). Python 3.12 does this by itself; without pidfd (Linux < 5.3) nothing
    changes. Called on the loop that runs the commands (the hub's, while it loads its
    config). Returns whether the pidfd watcher is now in use."""
    if sys.version_info >= (3, 12):
        return False
    try:
        loop = asyncio.get_running_loop()
        os.close(os.pidfd_open(os.getpid()))
    except (RuntimeError, AttributeError, OSError):
        return False
    if not isinstance(asyncio.get_child_watcher(), asyncio.PidfdChildWatcher):
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(loop)
        asyncio.set_child_watcher(watcher)
    return True


async def _reap(proc: asyncio.subprocess.Process, program: str) -> None:
    """Wait at most `REAP_TIMEOUT` for a killed command's exit (see there)."""
    try:
        await asyncio.wait_for(proc.wait(), REAP_TIMEOUT)
    except TimeoutError:
        log.warning(
            "%s (pid %s) killed at its deadline; its exit not seen within %g s, not waited for",
            Path(program).name,
            proc.pid,
            REAP_TIMEOUT,
        )


class SlurmClient:
    """Runs Slurm's commands. One instance per hub process; tests inject a fake instead."""

    def __init__(
        self, bin_dir: str = "/usr/bin", timeout: float = 20.0, *, switch_user: bool = True
    ) -> None:
        self.bin_dir = bin_dir
        self.timeout = timeout
        # The hub acts as the learner through the one audited helper (`scheduler.actas`); a
        # learner's own kernel (widgets) already is the learner and runs Slurm directly.
        self.switch_user = switch_user
        # Acts as learners wait their turn rather than all start at once: fifty starts in the
        # same second are fifty sudo + helper + salloc processes on a loaded hub host, and
        # a command's deadline should measure Slurm, not the queue for the CPU.
        self._acts = asyncio.Semaphore(ACTS_AT_ONCE)

    def _cmd(self, name: str) -> str:
        return os.path.join(self.bin_dir, name)

    def _as(
        self, user: str, program: str, args: list[str], env: Mapping[str, str] | None, cwd: str
    ) -> tuple[list[str], bytes, dict[str, str], str]:
        """argv, leading stdin, environment and working directory of `program` run as `user`:
        through `fh-act-as` (which takes the environment and directory on its stdin and
        changes directory only once it is the learner), or directly in a learner's kernel."""
        env = dict(env) if env is not None else command_environment()
        if not self.switch_user:
            path = (
                self._cmd(program) if program in actas.PROGRAMS else actas.SYSTEM_PROGRAMS[program]
            )
            return [path, *args], b"", env, cwd
        return [*actas.prefix(), user, program, *args], actas.header(env, cwd), {}, "/"

    async def run(
        self,
        argv: list[str],
        *,
        stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed:
        """Run one command; raise a classified `SlurmError` unless it exits 0. Without `env`
        it runs with `command_environment()`, never the caller's whole environment."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env) if env is not None else command_environment(),
                cwd=cwd,
            )
        except OSError as exc:
            raise SchedulerUnavailable(f"cannot run {argv[0]}: {exc}") from None
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):  # it may end this very moment
                proc.kill()
            await _reap(proc, argv[0])
            raise SchedulerUnavailable(
                f"{Path(argv[0]).name} did not answer within {self.timeout:g} s"
            ) from None
        result = Completed(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )
        if result.returncode != 0:
            raise classify_failure(argv, result)
        return result

    async def run_as(
        self,
        user: str,
        program: str,
        args: list[str],
        *,
        stdin: str = "",
        env: Mapping[str, str] | None = None,
        cwd: str = "",
    ) -> Completed:
        """`program` (sbatch, salloc, scancel, tail) with `args` as `user`."""
        argv, head, run_env, run_cwd = self._as(user, program, args, env, cwd)
        data = head + stdin.encode()
        async with self._acts:
            return await self.run(argv, stdin=data or None, env=run_env, cwd=run_cwd or None)

    async def submit(self, script: str, *, user: str, env: Mapping[str, str], cwd: str) -> str:
        """Submit `script` as `user` (their uid, gid, HOME) and return the job id."""
        result = await self.run_as(user, "sbatch", ["--parsable"], stdin=script, env=env, cwd=cwd)
        return parse_job_id(result.stdout)

    async def allocate_now(
        self, options: list[str], *, user: str, env: Mapping[str, str], cwd: str
    ) -> str | None:
        """An allocation that starts this instant (`salloc --immediate --no-shell`) as `user`,
        or None when Slurm would not start it at once: no room right now, or anything else the
        queue should decide and explain (limits, reservations). Batch jobs wait for the
        controller's scheduling tick; an immediate allocation does not."""
        args = ["--immediate", "--no-shell", *options]
        try:
            result = await self.run_as(user, "salloc", args, env=env, cwd=cwd)
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
        argv, head, run_env, run_cwd = self._as(user, "setsid", ["--fork", *srun], env, cwd)
        async with self._acts:
            await self._detach(argv, head, run_env, run_cwd, log_path, stdout)

    async def allocate_and_launch(
        self,
        allocation: list[str],
        step: list[str],
        command: list[str],
        *,
        user: str,
        env: Mapping[str, str],
        cwd: str,
        log_path: str,
        stdout: int | None = None,
    ) -> tuple[str | None, bool]:
        """`allocate_now` then `launch_step` in one act as `user` (the helper's
        `ALLOCATE_THEN_STEP`: one sudo and one helper per start instead of two). salloc gets
        only the locale and `SLURM_CONF` of `env`; its messages, then srun's, go to
        `log_path`, where the grant is read back. Returns (the job id, whether its step was
        started): (None, False) when Slurm would not start it at once; a job id with False is
        a job the caller must cancel."""
        if not self.switch_user:  # in a learner's kernel: the two commands, as they are
            allocation_env = {k: v for k, v in env.items() if k in actas.ALLOCATION_ENV}
            job_id = await self.allocate_now(allocation, user=user, env=allocation_env, cwd=cwd)
            if job_id is None:
                return None, False
            try:
                await self.launch_step(
                    job_id, step, command, user=user, env=env, cwd=cwd, log_path=log_path,
                    stdout=stdout,
                )  # fmt: skip
            except SlurmError:
                return job_id, False
            return job_id, True
        args = [str(len(allocation)), *allocation, *step, *command]
        argv, head, run_env, run_cwd = self._as(user, actas.ALLOCATE_THEN_STEP, args, env, cwd)
        try:
            async with self._acts:
                await self._detach(argv, head, run_env, run_cwd, log_path, stdout)
        except SlurmError as exc:
            said = _read_bounded(log_path)
            if job_id := parse_allocation(said):
                return job_id, False
            if "did not detach" in str(exc):
                raise SchedulerUnavailable("salloc did not answer in time") from None
            failure = classify_failure(["salloc"], Completed(1, "", said))
            if isinstance(failure, SchedulerUnavailable):
                raise failure from None
            return None, False  # "Requested nodes are busy", a limit, …: sbatch will say
        job_id = parse_allocation(_read_bounded(log_path))
        if job_id is None:
            raise SlurmError("salloc+srun started a step but said no allocation")
        return job_id, True

    async def _detach(
        self,
        argv: list[str],
        head: bytes,
        env: dict[str, str],
        cwd: str,
        log_path: str,
        stdout: int | None,
    ) -> None:
        with open(log_path, "ab", buffering=0) as log:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.DEVNULL if stdout is None else stdout,
                    stderr=log,
                    env=env,
                    cwd=cwd or None,
                )
            except OSError as exc:
                raise SlurmError(f"cannot run srun: {exc}") from None
            try:
                await asyncio.wait_for(proc.communicate(head), max(self.timeout, DETACH_TIMEOUT))
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await _reap(proc, argv[0])
                raise SlurmError("srun did not detach in time") from None
        if proc.returncode != 0:
            raise SlurmError(f"srun could not be started (exit {proc.returncode})")

    async def job_table(self) -> JobTable:
        """Every job Slurm lists to this caller, read as JSON (`factoryhub.jobrecords`): no
        field a job's owner sets can forge another record. Records left out are logged."""
        result = await self.run([self._cmd("squeue"), "--json"])
        # every job of the site (a workshop lists hundreds): parsed off the event loop
        table = await asyncio.to_thread(parse_job_table, result.stdout)
        for problem in table.problems[:10]:
            log.warning("squeue: %s", problem)
        return table

    async def query(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """The jobs among `job_ids` Slurm still lists, and no others (Slurm 22.05's JSON
        output ignores `--jobs`, so the filter is ours); absent ids are unknown to Slurm."""
        ids = set(job_ids)
        if not ids:
            return {}
        return only((await self.job_table()).jobs, ids)

    async def tagged_jobs(self, prefix: str) -> list[JobInfo]:
        """Every job whose name starts with `prefix` (names are the owners' text: callers
        check the user too)."""
        jobs = (await self.job_table()).jobs.values()
        return [j for j in jobs if j.name.startswith(prefix)]

    async def cancel(self, job_id: str, user: str = "") -> None:
        """Cancel a job as `user` (their own rights: a wrong id can end no one else's job);
        a job Slurm no longer knows is already cancelled."""
        with contextlib.suppress(UnknownJob):
            if user:
                await self.run_as(user, "scancel", [f"--user={user}", job_id])
            else:
                await self.run([self._cmd("scancel"), job_id])

    async def cancel_named(self, name: str, user: str) -> None:
        """Cancel every job called `name` that belongs to `user` (the caller's own jobs in a
        learner's kernel: a Dask cluster's workers, stragglers included)."""
        await self.run([self._cmd("scancel"), f"--name={name}", f"--user={user}"])

    async def set_comment(self, job_id: str, comment: str) -> None:
        """Set a job's comment (a learner may set only their own job's)."""
        await self.run([self._cmd("scontrol"), "update", f"jobid={job_id}", f"comment={comment}"])

    async def job_end(self, job_id: str) -> str:
        """When a job's walltime ends, as Slurm prints it (local ISO time), "" if unknown."""
        jobs = await self.query([job_id])
        info = jobs.get(job_id)
        return info.end if info is not None and info.end != "N/A" else ""

    async def user_jobs(self, user: str) -> list[UserJob]:
        """All of `user`'s jobs Slurm still lists (pending, running, recently ended), newest
        first: one `squeue` whatever their number."""
        table = await self.job_table()
        mine = [job for job_id, job in table.user_jobs.items() if table.jobs[job_id].user == user]
        return sorted(mine, key=lambda j: int(j.job_id), reverse=True)

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
        """`user`'s accounts and QoS from the accounting database, defaults first, with the
        limits of each QoS; None where the site has none (`sacctmgr` refuses at once without
        slurmdbd) or it does not answer."""
        found = await self._read_associations(["where", f"name={user}"])
        return None if found is None else found.get(user, Associations())

    async def all_associations(self) -> dict[str, Associations] | None:
        """Every user's associations in the same two reads (each `sacctmgr` call costs a few
        round trips to slurmdbd, ≈ 0.25 s here, whatever it asks); None as above."""
        return await self._read_associations([])

    async def _read_associations(self, where: list[str]) -> dict[str, Associations] | None:
        sacctmgr = [self._cmd("sacctmgr"), "--noheader", "--parsable2", "show"]
        fields = ",".join(("User", "DefaultAccount", "Account", "QOS", "DefaultQOS"))
        users = [*sacctmgr, "user", "withassoc", *where, f"format={fields}"]
        rows, qos = await asyncio.gather(  # both finish before either's failure is seen
            self.run(users), self.run([*sacctmgr, "qos", QOS_FORMAT]), return_exceptions=True
        )
        for result in (rows, qos):
            if isinstance(result, SlurmError):
                return None
            if isinstance(result, BaseException):
                raise result
        limits = parse_qos_limits(qos.stdout)
        return {
            user: replace(found, limits=tuple(q for q in limits if q.name in found.qos))
            for user, found in parse_all_associations(rows.stdout).items()
        }

    async def account_budgets(self) -> dict[str, AccountBudget] | None:
        """Every account's TRES-minute limits, usage and running jobs' hold (`sshare`, one
        call for all accounts: an operator or root sees them all); None where there is no
        accounting database or it does not answer."""
        argv = [self._cmd("sshare"), "--noheader", "--parsable2", "--long"]
        try:
            result = await self.run([*argv, f"--format={SSHARE_FORMAT}"])
        except SlurmError:
            return None
        return parse_sshare(result.stdout)

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
        args = ["--test-only", *argv, "--wrap", "true"]
        result = await self.run_as(user, "sbatch", args, cwd=cwd)
        return (result.stderr or result.stdout).strip()

    async def node_addresses(self) -> dict[str, str]:
        """NodeName → address the hub should connect to (NodeAddr)."""
        result = await self.run([self._cmd("scontrol"), "show", "node", "--oneliner"])
        return parse_node_addresses(result.stdout)

    async def slurm_version(self) -> str:
        """What `scontrol --version` prints ("slurm 24.05.4", Debian's "slurm-wlm 22.05.8"):
        the release of the commands whose output FactoryHub reads; no controller is asked."""
        result = await self.run([self._cmd("scontrol"), "--version"])
        return result.stdout.strip()[:200]


async def log_slurm_version(client: SlurmAPI, logger: logging.Logger = log) -> VersionCheck:
    """Read Slurm's version once and say in the log whether FactoryHub reads it: a sentence
    at error level when it does not (`factoryhub.slurmversion`), instead of guessing later."""
    try:
        printed = await client.slurm_version()
    except SlurmError as exc:
        check = VersionCheck(False, f"Slurm's version could not be read: {exc}")
    else:
        check = check_slurm_version(printed, "Slurm's commands on this host")
    (logger.info if check.supported else logger.error)("%s", check.sentence)
    return check
