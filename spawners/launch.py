"""How a session's job comes to exist, its id recorded before anything else happens (I1).

- **Immediately** when the partition has room this instant: an allocation granted at once
  (`salloc --immediate --no-shell`), then the server as that allocation's step through a
  detached `srun`. No wait for the controller's batch scheduling tick.
- **Queued** otherwise: a batch job (`sbatch`); the learner sees its place and Slurm's reason.

`srun`'s own messages go to a file of the hub's (`step_log`): an error there before the server
reports its port fails the spawn at once instead of at the start timeout.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from factoryhub.slurm import SlurmClient, SlurmError

from .jobscript import (
    SessionJob,
    render_job_script,
    render_step_script,
    salloc_options,
    step_options,
)

Adopt = Callable[[str], Awaitable[None]]  # records a job id (or cancels it and raises)

# What `salloc` itself runs with: nothing of the hub's or the learner's secrets.
_ALLOCATION_ENV = ("LANG", "LC_ALL", "TZ")


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

    async def immediately(self, adopt: Adopt) -> str | None:
        """The job id of an allocation granted this instant with the server started as its
        step; None when Slurm would not start it at once (the queue decides and explains)."""
        env = {key: os.environ[key] for key in _ALLOCATION_ENV if key in os.environ}
        env["PATH"] = "/usr/bin:/bin"
        job_id = await self.client.allocate_now(
            salloc_options(self.job), user=self.user, env=env, cwd=self.home
        )
        if job_id is None:
            return None
        await adopt(job_id)
        log = step_log(self.state_dir, job_id)
        log.parent.mkdir(mode=0o700, exist_ok=True)
        script = render_step_script(self.job, os.path.join(self.bin_dir, "scancel"))
        try:
            await self.client.launch_step(
                job_id,
                step_options(self.job),
                ["/bin/bash", "--noprofile", "--norc", "-c", script],
                user=self.user,
                env=self.environment,
                cwd=self.home,
                log_path=str(log),
            )
        except SlurmError:
            with contextlib.suppress(SlurmError):
                await self.client.cancel(job_id)
            raise
        return job_id

    async def queued(self, adopt: Adopt) -> str:
        """A batch job: it starts when the scheduler decides."""
        job_id = await self.client.submit(
            render_job_script(self.job), user=self.user, env=self.environment, cwd=self.home
        )
        await adopt(job_id)
        return job_id
