"""Running a widget's scheduler calls in the kernel's event loop, never blocking a cell.

ipykernel runs on asyncio: a widget callback schedules a coroutine as a task and returns at
once. Outside a running loop (plain scripts, unit tests) callers await the coroutines directly.

Nothing fails silently: a background step that raises shows the learner one short line in the
widget (`on_error`) and logs its traceback to the kernel's log — the session's output file, not
a notebook cell (see `kernel_log`).
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any

log = logging.getLogger("factoryhub.widgets")
_TASKS: set[asyncio.Task] = set()  # strong references, so running tasks are not collected

OnError = Callable[[BaseException], None]


def failure_line(what: str, exc: BaseException) -> str:
    """The one line a widget shows when `what` failed (pure, HTML-escaped)."""
    detail = str(exc).splitlines()[0][:200] if str(exc) else ""
    name = type(exc).__name__ + (f": {detail}" if detail else "")
    return (
        f"<span class='fh-error'>{html.escape(what)} failed ({html.escape(name)});"
        " the details are in the kernel's log.</span>"
    )


def kernel_log() -> logging.Logger:
    """The widgets' logger, writing where the kernel logs when it runs in one.

    Without a handler of its own a record would reach Python's last-resort handler, i.e.
    ``sys.stderr``, which ipykernel forwards into whichever cell ran last; ipykernel's own log
    writes to the process's real standard error, the session's output file.
    """
    if not log.handlers:
        try:
            from ipykernel.kernelapp import IPKernelApp
        except ImportError:  # no ipykernel: logging as configured by the program
            return log
        if IPKernelApp.initialized():
            for handler in IPKernelApp.instance().log.handlers:
                log.addHandler(handler)
            log.propagate = not log.handlers
    return log


def report_failure(what: str, exc: BaseException, on_error: OnError | None) -> None:
    """Log `exc` with its traceback and hand it to `on_error`, the widget's message line."""
    kernel_log().error("%s failed", what, exc_info=exc)
    if on_error is not None:
        on_error(exc)


def shows_failure(line: Any, what: str) -> OnError:
    """An `on_error` that puts `failure_line(what, …)` into `line` (an HTML widget)."""

    def show(exc: BaseException) -> None:
        line.value = failure_line(what, exc)

    return show


def guarded(action: Callable[[], object], what: str, on_error: OnError) -> Callable[..., None]:
    """A click handler running the synchronous `action`; a failure is reported, not raised
    into ipywidgets (which would leave only a traceback in JupyterLab's log console)."""

    def click(*_: object) -> None:
        try:
            action()
        except Exception as exc:
            report_failure(what, exc, on_error)

    return click


def spawn(
    coro: Coroutine[Any, Any, object], on_error: OnError | None = None
) -> asyncio.Task | None:
    """Run `coro` in the background if an event loop runs here; close it otherwise. Should it
    raise, `on_error` gets the exception (and the traceback goes to the kernel's log)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        coro.close()
        return None
    task = loop.create_task(coro)
    _TASKS.add(task)
    task.add_done_callback(partial(_finished, on_error=on_error))
    return task


def _finished(task: asyncio.Task, on_error: OnError | None = None) -> None:
    _TASKS.discard(task)
    if not task.cancelled() and task.exception() is not None:
        report_failure(task.get_coro().__qualname__, task.exception(), on_error)


class Repeater:
    """Calls an async function every `interval` seconds until stopped; a failed call is
    reported (`report_failure`, traceback once per run of identical failures) and the next one
    runs as usual."""

    def __init__(
        self,
        action: Callable[[], Awaitable[object]],
        interval: float,
        on_error: OnError | None = None,
    ) -> None:
        self.action = action
        self.interval = interval
        self.on_error = on_error
        self.task: asyncio.Task | None = None
        self._last_failure = ""

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

    async def run_once(self) -> None:
        """One call of the action; a failure is reported, never raised."""
        try:
            await self.action()
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            if failure != self._last_failure:  # not the same traceback every few seconds
                report_failure("Refreshing", exc, None)
            self._last_failure = failure
            if self.on_error is not None:
                self.on_error(exc)
        else:
            self._last_failure = ""

    async def _loop(self) -> None:
        while True:  # one failed refresh must not end the loop
            await self.run_once()
            await asyncio.sleep(self.interval)
