"""The interface of the one seam to the scheduler (pure: no subprocess here).

`factoryhub.scheduler.slurm.SlurmClient` implements it by running Slurm's commands; the unit
tests' fake implements it with a job table they script (it does not inherit the real client,
so a method it lacks is an error, never a real command). Code that only needs *a* Slurm may be
typed with `SlurmAPI`; `tests/unit/test_slurmapi.py` checks that the client, this Protocol and
the fake name the same methods with the same parameters, so a new client method cannot be
forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from .budget import AccountBudget
from .capacity import Capacity
from .jobrecords import JobTable
from .slurmoutput import Associations, Completed, JobInfo, UserJob


@runtime_checkable
class SlurmAPI(Protocol):
    """What FactoryHub asks of Slurm. Errors are `factoryhub.slurmoutput.SlurmError`s: a
    scheduler that cannot be reached is `SchedulerUnavailable`, a job it forgot `UnknownJob`."""

    # Commands, as the caller or as a learner.

    async def run(
        self,
        argv: list[str],
        *,
        stdin: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> Completed:
        """Run one Slurm command; raise a classified error unless it exits 0."""
        ...

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
        ...

    # A learner's jobs: submit, allocate, start a step, cancel.

    async def submit(self, script: str, *, user: str, env: Mapping[str, str], cwd: str) -> str:
        """Submit a batch script as `user`; the job id."""
        ...

    async def allocate_now(
        self, options: list[str], *, user: str, env: Mapping[str, str], cwd: str
    ) -> str | None:
        """An allocation that starts this instant as `user`, or None when it would wait."""
        ...

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
        """Start `command` as a detached step of allocation `job_id`."""
        ...

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
        """Both of the above as one act: (job id, whether its step started), (None, False)
        when it would wait; a job id with False is the caller's to cancel."""
        ...

    async def cancel(self, job_id: str, user: str = "") -> None:
        """Cancel a job (as `user` when named); a job Slurm forgot is already cancelled."""
        ...

    async def cancel_named(self, name: str, user: str) -> None:
        """Cancel every job called `name` that belongs to `user`."""
        ...

    async def set_comment(self, job_id: str, comment: str) -> None:
        """Set a job's comment (a session reports its port there)."""
        ...

    async def sbatch_test_only(self, argv: list[str], *, user: str, cwd: str) -> str:
        """Slurm's start estimate for `argv` as `user` ("Job N to start at …")."""
        ...

    # Reading the queue.

    async def job_table(self) -> JobTable:
        """Every job Slurm lists to this caller."""
        ...

    async def query(self, job_ids: Iterable[str]) -> dict[str, JobInfo]:
        """The jobs among `job_ids` Slurm still lists, and no others."""
        ...

    async def tagged_jobs(self, prefix: str) -> list[JobInfo]:
        """Every job whose name starts with `prefix` (callers check the user too)."""
        ...

    async def job_end(self, job_id: str) -> str:
        """When a job's walltime ends (local ISO time), "" if unknown."""
        ...

    async def user_jobs(self, user: str) -> list[UserJob]:
        """All of `user`'s jobs Slurm still lists, newest first."""
        ...

    async def job_output_path(self, job_id: str) -> str:
        """Where a job writes its standard output."""
        ...

    async def queue_position(self, job_id: str, partition: str) -> int | None:
        """1-based place of a pending job in its partition's queue."""
        ...

    # The site: controller, nodes, partitions, accounting.

    async def controller_up(self) -> bool:
        """Whether the controller answers (fast, unlike a failing sbatch)."""
        ...

    async def capacity(self) -> Capacity:
        """Partitions, reservations and per-node free capacity."""
        ...

    async def node_addresses(self) -> dict[str, str]:
        """NodeName → the address to connect to."""
        ...

    async def slurm_version(self) -> str:
        """What `scontrol --version` prints ("slurm 24.05.4"): the release of the commands
        whose output FactoryHub reads (`factoryhub.slurmversion` judges it)."""
        ...

    async def consumed_energy(self, job_ids: Iterable[str]) -> dict[str, float]:
        """Joules measured per job; empty where the site gathers none."""
        ...

    async def associations(self, user: str) -> Associations | None:
        """`user`'s accounts and QoS with their limits; None without an accounting database."""
        ...

    async def all_associations(self) -> dict[str, Associations] | None:
        """Every user's associations; None without an accounting database."""
        ...

    async def account_budgets(self) -> dict[str, AccountBudget] | None:
        """Every account's TRES-minute budget and usage; None without an accounting database."""
        ...
