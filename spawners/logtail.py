"""The end of a learner's session log, read *as the learner*.

Reading a path inside a learner's home with any rights but the learner's would follow a symlink
the learner planted (to /etc/shadow, or to the hub's own database) and show it back. `tail`
started through `fh-act-as` (`factoryhub.scheduler.actas`) reads with the learner's own rights,
bounded in lines, bytes and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd

from factoryhub.scheduler import actas
from factoryhub.scheduler.slurm import command_environment

MAX_BYTES = 4000


async def read_tail_as(user: str, relative_path: str, lines: int = 15, timeout: float = 5) -> str:
    """Last `lines` lines of ~user/relative_path, or a note why they cannot be shown."""
    path = os.path.join(pwd.getpwnam(user).pw_dir, relative_path)
    proc = await asyncio.create_subprocess_exec(
        *actas.prefix(),
        user,
        "tail",
        "-n",
        str(lines),
        "--",
        path,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",
        env=command_environment(),
    )
    try:
        request = actas.header(command_environment(), "/")
        out, err = await asyncio.wait_for(proc.communicate(request), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):  # it may end this very moment
            proc.kill()
        await proc.wait()
        return "(the log could not be read in time)"
    if proc.returncode:
        return f"(no log: {err.decode(errors='replace').strip()[:200]})"
    return out.decode(errors="replace")[-MAX_BYTES:]
