"""Ask the support centre from a notebook: ``AskSupport()``.

The learner writes what went wrong; the widget gathers the session's context (job, node,
partition, account, the open notebook, the session log's last lines and errors, versions) and
shows exactly what will be sent before the learner presses Send. The hub service keeps the
ticket and mails it to the support centre; the widget shows its number, and the answers to the
learner's tickets when asked. Gathering and the texts are plain functions, tested without a
browser.
"""

from __future__ import annotations

import html
import platform
import re
from collections import deque
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import ipywidgets as widgets

from factoryhub.support import (
    MAX_ERRORS,
    MAX_LINE,
    MAX_TEXT,
    SupportContext,
    SupportError,
    SupportRequest,
    clean_text,
    one_line,
    preview_text,
    redact,
)

from .context import SessionContext, session_context
from .hubservice import ServiceUnavailable, call_service

VERSIONED = (
    "factoryhub",
    "jupyterlab",
    "jupyter-server",
    "ipywidgets",
    "numpy",
    "pandas",
    "torch",
    "dask",
    "scikit-learn",
)
_ERROR = re.compile(r"\b(ERROR|CRITICAL|Traceback|[A-Za-z]*Error|[A-Za-z]*Exception)\b")
_NAME = re.compile(r"[^A-Za-z0-9._+-]")
TAIL_BYTES = 64 * 1024
PRE = "class='fh-support-preview' style='white-space:pre-wrap;max-height:22em;overflow:auto'"
LOG_LINES = 25  # of the session log, in the request (the service takes up to MAX_LOG_LINES)


def versions() -> tuple[tuple[str, str], ...]:
    """Python's and the installed packages' versions (those present)."""
    found = [("python", platform.python_version())]
    for name in VERSIONED:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return tuple(found)


def log_tail(path: Path, limit: int = LOG_LINES) -> list[str]:
    """The last `limit` lines of the session's log (read from its end, never whole)."""
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [redact(one_line(line, MAX_LINE)) for line in deque(text.splitlines(), limit)]


def last_errors(lines: list[str], limit: int = MAX_ERRORS) -> list[str]:
    return [line for line in lines if _ERROR.search(line)][-limit:]


def gather_context(ctx: SessionContext, environ: Mapping[str, str]) -> SupportContext:
    """What the session attaches: read from its environment and its log, as the learner."""
    job = ctx.session_job if ctx.session_job.isdigit() else ""
    log = ctx.home / ctx.site.session.log_dir / f"session-{job}.log"
    all_lines = log_tail(log, 400) if job else []
    notebook = environ.get("JPY_SESSION_NAME", "")
    if notebook.startswith(f"{ctx.home}/"):
        notebook = notebook[len(str(ctx.home)) + 1 :]
    return SupportContext(
        job_id=job,
        node=_NAME.sub("", environ.get("SLURMD_NODENAME", "") or platform.node())[:64],
        partition=_NAME.sub("", environ.get("SLURM_JOB_PARTITION", ""))[:64],
        account=_NAME.sub("", environ.get("SLURM_JOB_ACCOUNT", ""))[:64],
        notebook=one_line(notebook, 200),
        log_lines=tuple(all_lines[-LOG_LINES:]),
        errors=tuple(last_errors(all_lines)),
        versions=versions(),
    )


def tickets_html(tickets: list[dict]) -> str:
    """The learner's tickets and answers, escaped."""
    if not tickets:
        return "<p>No ticket yet.</p>"
    items = []
    for t in tickets:
        answer = (
            f"<br><b>Answer</b> ({html.escape(t['answered_by'])}):"
            f"<pre style='white-space:pre-wrap'>{html.escape(t['answer'])}</pre>"
            if t.get("answer")
            else ""
        )
        first = html.escape(one_line(t["text"], 80))
        items.append(
            f"<li>Ticket #{int(t['number'])} · {html.escape(t['status'])} · {first}{answer}</li>"
        )
    return f"<ul class='fh-tickets'>{''.join(items)}</ul>"


class AskSupport(widgets.VBox):
    """Write to the support centre, with the session's context shown before it is sent."""

    def __init__(self, ctx: SessionContext | None = None, environ=None) -> None:
        import os

        self.ctx = ctx or session_context(environ)
        self.environ = os.environ if environ is None else environ
        self.context = gather_context(self.ctx, self.environ)
        self.text = widgets.Textarea(
            placeholder="What went wrong? What did you expect, what happened instead?",
            layout=widgets.Layout(width="100%", height="120px"),
        )
        self.preview = widgets.HTML()
        self.send_button = widgets.Button(description="Send to support", button_style="primary")
        self.refresh_button = widgets.Button(description="My tickets")
        self.problem = widgets.HTML()  # what is wrong with the text, as it is typed
        self.message = widgets.HTML()  # what the support centre answered to Send
        self.tickets = widgets.HTML()
        self.ticket: int | None = None
        self.text.observe(lambda _: self._show_preview(), names="value")
        self.send_button.on_click(lambda _: self.send())
        self.refresh_button.on_click(lambda _: self.refresh())
        self._show_preview()
        super().__init__(
            [
                widgets.HTML("<b>Ask the support centre</b>"),
                self.text,
                self.problem,
                widgets.HTML("This is exactly what will be sent:"),
                self.preview,
                widgets.HBox([self.send_button, self.refresh_button]),
                self.message,
                self.tickets,
            ]
        )

    def request(self) -> SupportRequest:
        text = clean_text(self.text.value, "your message", MAX_TEXT)
        return SupportRequest(text, self.context)

    def _show_preview(self) -> None:
        try:
            shown = preview_text(self.request())
            self.send_button.disabled = False
        except SupportError as exc:
            shown = preview_text(SupportRequest("(your message)", self.context))
            self.send_button.disabled = True
            self.problem.value = html.escape(str(exc)) if self.text.value else ""
        else:
            self.problem.value = ""
        self.preview.value = f"<pre {PRE}>{html.escape(shown)}</pre>"

    def send(self) -> dict | None:
        """Send the request shown; the ticket's number (or why not) in `message`."""
        try:
            request = self.request()
            answer = call_service(
                self.ctx.site, "POST", "api/support", request.to_json(), self.environ
            )
        except (SupportError, ServiceUnavailable) as exc:
            self.message.value = (
                f"<span style='color:#b00020'>Not sent: {html.escape(str(exc))}</span>"
            )
            return None
        self.ticket = int(answer["ticket"])
        self.message.value = html.escape(str(answer["message"]))
        self.text.value = ""
        return answer

    def refresh(self) -> list[dict]:
        """The learner's own tickets and their answers."""
        try:
            tickets = call_service(self.ctx.site, "GET", "api/support", None, self.environ)[
                "tickets"
            ]
        except ServiceUnavailable as exc:
            self.tickets.value = f"Tickets not read: {html.escape(str(exc))}"
            return []
        self.tickets.value = tickets_html(tickets)
        return tickets
