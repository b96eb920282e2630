"""Running a widget's scheduler calls in the kernel's event loop, never blocking a cell.

ipykernel runs on asyncio: a widget callback schedules a coroutine as a task and returns at
once. Outside a running loop (plain scripts, unit tests) callers await the coroutines directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger("factoryhub.widgets")
_TASKS: set[asyncio.Task] = set()  # strong references, so running tasks are not collected


def spawn(coro: Coroutine[Any, Any, object]) -> asyncio.Task | None:
    """Run `coro` in the background if an event loop runs here; close it otherwise."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coro.close()
        return None
    task = loop.create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(_finished)
    return task


def _finished(task: asyncio.Task) -> None:
    _TASKS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("widget task failed", exc_info=task.exception())


class Repeater:
    """Calls an async function every `interval` seconds until stopped."""

    def __init__(self, action: Callable[[], Awaitable[object]], interval: float) -> None:
        self.action = action
        self.interval = interval
        self.task: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> bool:
        """Start repeating; False where no event loop runs (nothing to repeat in)."""
        if not self.running:
            self.task = spawn(self._loop())
        return self.task is not None

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # one failed refresh must not end the loop
                await self.action()
            await asyncio.sleep(self.interval)
