"""A learner's refused request is one INFO line in the hub's log, not ERROR tracebacks.

JupyterHub 6.1 logs whatever `options_from_query`, `options_from_form` or a spawn raises as
ERROR — with a traceback in the spawn page's handler (``handlers/pages.py``
``SpawnHandler._get``/``_post``: ``log.error(..., exc_info=True)``), and again in one line in
``user.py`` (``spawn``) and ``handlers/base.py`` (``_wrap_spawn_single_user``) — whatever the
exception says, so no kind of ``HTTPError`` or ``log_message`` changes it. A refused request is
the learner's mistake and a link waiting for the learner's confirmation is no failure at all:
this filter on the hub's logger keeps one INFO line of each and drops the rest. Anything else
(the scheduler down, a bug) is logged as JupyterHub logs it.
"""

from __future__ import annotations

import logging

from tornado import web

REFUSED = "invalid resource request"  # the reason of every 400 refusal (spawners/options.py)
_REFUSAL_TEXT = f"HTTP 400: {REFUSED} ("  # how tornado writes such an error into a message


def is_refusal(exc: BaseException | None) -> bool:
    """A request the site refused for what the learner asked (400), or a link's request
    shown in the form for confirmation (no error at all)."""
    if isinstance(exc, web.HTTPError):
        return exc.status_code == 400 and exc.reason == REFUSED
    return type(exc).__name__ == "ConfirmBeforeStart"


class RefusalLogFilter(logging.Filter):
    """Drops JupyterHub's handler records of a refusal (the hook that refused logged it once
    at INFO) and makes `user.py`'s one-line record of a refused spawn an INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if record.exc_info and is_refusal(record.exc_info[1]):
            return False  # pages.py: "Failed to spawn single-user server with …" + traceback
        message = record.getMessage()
        if _REFUSAL_TEXT not in message:
            return True
        if message.startswith("Error starting server "):
            return False  # base.py repeats user.py's line
        record.levelno, record.levelname = logging.INFO, "INFO"  # user.py: who and why
        return True


def quiet_refusals(log: logging.Logger) -> None:
    """Install the filter on the hub's logger once."""
    if not any(isinstance(f, RefusalLogFilter) for f in log.filters):
        log.addFilter(RefusalLogFilter())
