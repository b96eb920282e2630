"""The end of a learner's session log, read *as the learner*.

The hub runs as root; reading a path inside a learner's home as root would follow a symlink the
learner planted (to /etc/shadow, say) and show it back. `runuser` + `tail` reads with the
learner's own rights, bounded in lines, bytes and time.
"""

from __future__ import annotations

import asyncio
import os
import pwd

MAX_BYTES = 4000


async def read_tail_as(user: str, relative_path: str, lines: int = 15, timeout: float = 5) -> str:
    """Last `lines` lines of ~user/relative_path, or a note why they cannot be shown."""
    path = os.path.join(pwd.getpwnam(user).pw_dir, relative_path)
    proc = await asyncio.create_subprocess_exec(
        "/usr/sbin/runuser",
        "-u",
        user,
        "--",
        "/usr/bin/tail",
        "-n",
        str(lines),
        "--",
        path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return "(the log could not be read in time)"
    if proc.returncode:
        return f"(no log: {err.decode(errors='replace').strip()[:200]})"
    return out.decode(errors="replace")[-MAX_BYTES:]
