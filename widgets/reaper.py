"""Cancels a Dask cluster's worker jobs once the kernel that owns them is gone (F19).

Started by `slurm_cluster` in its own session, so a kernel killed with SIGKILL does not take it
along: it waits for the kernel's pid to disappear, then cancels the learner's jobs of the
cluster's job name (`SlurmClient.cancel_named`). A cluster closed normally stops it first.

    python -m factoryhub.widgets.reaper PID JOB_NAME [BIN_DIR]
"""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import sys
import time

from factoryhub import jobnames
from factoryhub.scheduler.slurm import SlurmClient, SlurmError
from factoryhub.slurmapi import SlurmAPI

_NAME = re.compile(re.escape(jobnames.WORKER) + r"[A-Za-z0-9_-]{1,80}", re.ASCII)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_name(job_name: str) -> str:
    """`job_name` if it is a Dask cluster's worker job name (what the reaper may end)."""
    if not _NAME.fullmatch(job_name):
        raise ValueError(f"not a FactoryHub Dask job name: {job_name[:80]!r}")
    return job_name


async def cancel_workers(client: SlurmAPI, job_name: str, user: str) -> None:
    """End every job of the cluster that is `user`'s (never anyone else's)."""
    await client.cancel_named(worker_name(job_name), user)


def main(argv: list[str]) -> int:
    pid, job_name = int(argv[0]), worker_name(argv[1])
    bin_dir = argv[2] if len(argv) > 2 else "/usr/bin"
    client = SlurmClient(bin_dir, timeout=60, switch_user=False)
    while alive(pid):
        time.sleep(1.0)
    try:
        asyncio.run(cancel_workers(client, job_name, pwd.getpwuid(os.getuid()).pw_name))
    except SlurmError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
