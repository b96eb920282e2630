"""GPU use as activity, inside a session that holds GPUs (the learner's own process).

Every ``[culling] gpu_sample_seconds`` the session runs ``nvidia-smi`` for the job's GPUs (an
argv, a timeout, at most `MAX_OUTPUT` bytes read; `factoryhub.gpu_usage` parses it). When a
GPU is busier than ``[culling] gpu_busy_percent``, the time goes into the server's
``factoryhub_gpu_last_activity`` setting: jupyter_server counts every ``*_last_activity``
setting in its ``last_activity()``, and jupyterhub-singleuser reports that to the hub's
activity API with the session's own token every ``JUPYTERHUB_ACTIVITY_INTERVAL`` (300 s by
default). So a training in a background process keeps its session from the idle culler, and
the culler and JupyterLab's outlook see it as they see kernel activity.

A session without GPUs, or without ``nvidia-smi`` on its PATH, behaves as before (said once
in the session's log); so does one whose ``nvidia-smi`` fails or prints what is not a reading
(said once when it starts failing and once when it reads again, not at every sample).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from factoryhub.gpu_usage import (
    MAX_OUTPUT,
    GpuReadError,
    describe_readings,
    gpu_busy,
    job_gpus,
    nvidia_smi_argv,
    parse_gpu_usage,
)
from factoryhub.site import Site

ACTIVITY_SETTING = "factoryhub_gpu_last_activity"  # jupyter_server: "*_last_activity" counts
COMMAND_TIMEOUT = 10.0


async def _read_stdout(stream: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_OUTPUT:
        chunk = await stream.read(MAX_OUTPUT + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def run_nvidia_smi(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> bytes:
    """What `argv` prints (at most `MAX_OUTPUT` + 1 bytes: more is not a reading), if it ends
    with 0 within `timeout` seconds; `GpuReadError` otherwise. The process is killed when it
    prints too much or takes too long."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        raise GpuReadError(f"{argv[0]} could not run: {exc.strerror or exc}") from None
    try:
        async with asyncio.timeout(timeout):
            output = await _read_stdout(process.stdout)  # type: ignore[arg-type]
            if len(output) > MAX_OUTPUT:
                raise GpuReadError(f"more than {MAX_OUTPUT} bytes of output")
            status = await process.wait()
    except TimeoutError:
        raise GpuReadError(f"no answer within {timeout:g} s") from None
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        # what is left in the pipe is read (and dropped) so that the pipe closes: a reader
        # paused on a full buffer would keep wait() from ever returning
        await process.communicate()
    if status != 0:
        raise GpuReadError(f"it ended with status {status}")
    return output


class GpuActivity:
    """The samples of one session's GPUs; a busy one marks the server active."""

    def __init__(
        self, settings: dict, log, argv: list[str], gpus: int, busy_percent: float
    ) -> None:
        self.settings = settings  # the server's web application settings
        self.log = log
        self.argv = argv
        self.gpus = gpus
        self.busy_percent = busy_percent
        self.failing = False

    async def sample(self) -> bool:
        """Read the GPUs once; True (and the server marked active now) when one is busy."""
        try:
            readings = parse_gpu_usage(await run_nvidia_smi(self.argv), self.gpus)
        except GpuReadError as exc:
            if not self.failing:
                self.log.warning(
                    "factoryhub: GPU use not read (%s: %s): until it reads again, only kernel"
                    " and terminal activity keep this session from the idle culler",
                    self.argv[0],
                    exc,
                )
            self.failing = True
            return False
        if self.failing:
            self.log.info("factoryhub: GPU use read again: %s", describe_readings(readings))
        self.failing = False
        busy = gpu_busy(readings, self.busy_percent)
        if busy:
            self.settings[ACTIVITY_SETTING] = datetime.now(UTC)
        return busy

    async def run(self, every: float) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(every)


def gpu_activity(
    serverapp,
    site: Site | None,
    environ: Mapping[str, str] = os.environ,
    which: Callable[..., str | None] = shutil.which,
) -> GpuActivity | None:
    """The sampler for this session, or None (and why, once in the log) when its GPU use
    cannot count: no site, culling off, no GPUs held, no ``nvidia-smi`` on the PATH."""
    gpus = job_gpus(environ)
    if site is None or not site.culling.enabled or not gpus:
        return None
    executable = which("nvidia-smi", path=environ.get("PATH", os.defpath))
    if executable is None:
        serverapp.log.info(
            "factoryhub: this session holds GPU %s but has no nvidia-smi on its PATH: its GPU"
            " use does not count as activity (kernel and terminal activity do)",
            ",".join(gpus),
        )
        return None
    rules = site.culling
    serverapp.log.info(
        "factoryhub: GPU %s read by %s every %d s; busier than %g %% counts as activity",
        ",".join(gpus),
        executable,
        rules.gpu_sample_seconds,
        rules.gpu_busy_percent,
    )
    argv = nvidia_smi_argv(executable, gpus)
    return GpuActivity(
        serverapp.web_app.settings, serverapp.log, argv, len(gpus), rules.gpu_busy_percent
    )


def start_gpu_activity(serverapp) -> None:
    """Sample this session's GPUs on the server's loop, if its GPU use can count."""
    from tornado.ioloop import IOLoop

    site = serverapp.web_app.settings.get("factoryhub_site")
    activity = gpu_activity(serverapp, site)
    if activity is None:
        return
    serverapp.web_app.settings["factoryhub_gpu_activity"] = activity
    IOLoop.current().add_callback(activity.run, site.culling.gpu_sample_seconds)
