"""Cancels a Dask cluster's worker jobs once the kernel that owns them is gone (F19).

Started by `slurm_cluster` in its own session, so a kernel killed with SIGKILL does not take it
along: it waits for the kernel's pid to disappear, then `scancel --name=<cluster's job name>`
for the learner's jobs. A cluster closed normally stops it first.

    python -m factoryhub.widgets.reaper PID JOB_NAME [BIN_DIR]
"""

from __future__ import annotations

import os
import pwd
import re
import subprocess
import sys
import time

from factoryhub import jobnames

_NAME = re.compile(re.escape(jobnames.WORKER) + r"[A-Za-z0-9_-]{1,80}", re.ASCII)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cancel_argv(job_name: str, user: str, bin_dir: str = "/usr/bin") -> list[str]:
    """The one scancel that ends every job of the cluster (never anyone else's)."""
    if not _NAME.fullmatch(job_name):
        raise ValueError(f"not a FactoryHub Dask job name: {job_name[:80]!r}")
    return [os.path.join(bin_dir, "scancel"), f"--name={job_name}", f"--user={user}"]


def main(argv: list[str]) -> int:
    pid, job_name = int(argv[0]), argv[1]
    bin_dir = argv[2] if len(argv) > 2 else "/usr/bin"
    command = cancel_argv(job_name, pwd.getpwuid(os.getuid()).pw_name, bin_dir)
    while alive(pid):
        time.sleep(1.0)
    return subprocess.run(command, check=False, timeout=60).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
