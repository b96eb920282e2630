"""How a session's job comes to exist, its id recorded before anything else happens (I1).

- **Immediately** when the partition has room this instant: an allocation granted at once
  (`salloc --immediate --no-shell`), then the server as that allocation's step through a
  detached `srun`, both in one act as the learner. No wait for the controller's batch
  scheduling tick.
- **Queued** otherwise: a batch job (`sbatch`); the learner sees its place and Slurm's reason.

`srun`'s own messages go to a file of the hub's (`step_log`): an error there before the server
reports its port fails the spawn at once instead of at the start timeout. The step's standard
output comes back through `srun` on a pipe (`ReadyPipe`): the session writes one line there when
its port is in Slurm, so the hub looks at once instead of at its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from factoryhub.handshake import port_in_wake
from factoryhub.jobscript import (
    SessionJob,
    render_job_script,
    render_step_script,
    salloc_options,
    step_options,
)
from factoryhub.scheduler.slurm import SlurmClient, SlurmError, command_environment

Adopt = Callable[[str], Awaitable[None]]  # records a job id (or cancels it and raises)


def passed_environment() -> dict[str, str]:
    """What a session's Slurm commands take from the hub's own environment: the allow-list of
    `command_environment` (locale, SLURM_CONF), without its PATH."""
    env = command_environment()
    del env["PATH"]
    return env


def free_mib(state_dir: str) -> int:
    """Free space where the hub keeps its records (its database lives in `state_dir`)."""
    return shutil.disk_usage(state_dir).free >> 20


def step_log(state_dir: str | Path, job_id: str) -> Path:
    return Path(state_dir) / "steps" / f"job-{job_id}.log"


def step_error(path: Path) -> str | None:
    """The first error `srun` reported for a step, if any (bounded read)."""
    try:
        with path.open(errors="replace") as log:
            text = log.read(8192)
    except FileNotFoundError:
        return None
    errors = [line.strip() for line in text.splitlines() if "error" in line]
    return errors[0][:300] if errors else None


class ReadyPipe:
    """The hub's end of a step's standard output: a wake-up, and at most the port the session
    says it reported (`port`; bounded reads, an exact port report or nothing). Each
    descriptor is closed exactly once: a number closed twice may already belong to another
    connection of the hub."""

    def __init__(self) -> None:
        self._read, self.write_fd = os.pipe()
        self._transport: asyncio.ReadTransport | None = None
        self._reader = asyncio.StreamReader(limit=4096)
        self.port: int | None = None

    async def start(self) -> None:
        """Begin reading; call once the step holds its copy of `write_fd`."""
        os.close(self.write_fd)
        self.write_fd = -1
        protocol = asyncio.StreamReaderProtocol(self._reader)
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(self._read, "rb", buffering=0)
        self._read = -1  # the transport owns it now
        self._transport, _ = await loop.connect_read_pipe(lambda: protocol, pipe)

    async def wait(self, timeout: float) -> bool:
        """True when the step said something (or ended) within `timeout` seconds."""
        if self._transport is None:
            await asyncio.sleep(timeout)
            return False
        try:
            line = await asyncio.wait_for(self._reader.readline(), timeout)
        except (TimeoutError, ValueError):  # nothing yet, or an over-long line: both just mean
            return False  # "look at Slurm as usual"
        self.port = port_in_wake(line)
        return True

    def close(self) -> None:
        """Idempotent."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for fd in (self._read, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self._read = self.write_fd = -1


@dataclass(frozen=True)
class Launch:
    """One session's job, about to be created as `user` from `home`."""

    client: SlurmClient
    job: SessionJob
    user: str
    home: str
    environment: Mapping[str, str]  # the job's: JupyterHub's variables, the token among them
    state_dir: str
    bin_dir: str

    async def immediately(self, adopt: Adopt) -> tuple[str, ReadyPipe] | None:
        """The job id of an allocation granted this instant with the server started as its
        step, and the step's output; None when Slurm would not start it at once (the queue
        decides and explains). Allocation and step are one act as the learner; the id is
        recorded as soon as it is known, and a job whose step did not start is cancelled."""
        pending = step_log(self.state_dir, f"starting-{os.getpid()}-{id(self):x}")
        pending.parent.mkdir(mode=0o700, exist_ok=True)
        pending.touch(mode=0o600)
        script = render_step_script(self.job, os.path.join(self.bin_dir, "scancel"))
        pipe = ReadyPipe()
        try:
            job_id, started = await self.client.allocate_and_launch(
                salloc_options(self.job),
                step_options(self.job),
                ["/bin/bash", "--noprofile", "--norc", "-c", script],
                user=self.user,
                env=self.environment,
                cwd=self.home,
                log_path=str(pending),
                stdout=pipe.write_fd,
            )
            if job_id is None:
                return None
            await adopt(job_id)  # refuses another session's job: its step log stays its own
            pending.rename(step_log(self.state_dir, job_id))
            if not started:
                with contextlib.suppress(SlurmError):
                    await self.client.cancel(job_id, self.user)
                raise SlurmError(step_error(step_log(self.state_dir, job_id)) or "srun failed")
            await pipe.start()
        except BaseException:
            pipe.close()
            raise
        finally:
            pending.unlink(missing_ok=True)
        return job_id, pipe

    async def queued(self, adopt: Adopt) -> str:
        """A batch job: it starts when the scheduler decides."""
        job_id = await self.client.submit(
            render_job_script(self.job), user=self.user, env=self.environment, cwd=self.home
        )
        await adopt(job_id)
        return job_id
