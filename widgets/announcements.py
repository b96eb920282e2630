"""The admins' announcements in a notebook: ``Announcements()`` shows those for everyone and
for this session's partition, from the hub service, until they expire."""

from __future__ import annotations

import html
import os

import ipywidgets as widgets

from .context import SessionContext, session_context
from .hubservice import ServiceUnavailable, call_service


def announcements_html(items: list[dict]) -> str:
    if not items:
        return "<p class='fh-no-announcement'>No announcement.</p>"
    rows = []
    for item in items:
        who = "" if not item.get("partition") else f"{html.escape(item['partition'])} partition: "
        until = html.escape(str(item["expires"])[:16].replace("T", " "))
        rows.append(
            f"<li class='fh-announcement'><b>{who}</b>{html.escape(item['text'])}"
            f" <small>(until {until} UTC)</small></li>"
        )
    return f"<ul>{''.join(rows)}</ul>"


def read_announcements(ctx: SessionContext, environ=None) -> list[dict]:
    env = os.environ if environ is None else environ
    partition = env.get("SLURM_JOB_PARTITION", "")
    path = (
        f"api/announcements?partition={partition}" if partition.isalnum() else "api/announcements"
    )
    return call_service(ctx.site, "GET", path, None, env)["announcements"]


class Announcements(widgets.VBox):
    def __init__(self, ctx: SessionContext | None = None, environ=None) -> None:
        self.ctx = ctx or session_context(environ)
        self.environ = environ
        self.board = widgets.HTML()
        button = widgets.Button(description="Refresh")
        button.on_click(lambda _: self.refresh())
        super().__init__([widgets.HTML("<b>Announcements</b>"), self.board, button])
        self.refresh()

    def refresh(self) -> list[dict]:
        try:
            items = read_announcements(self.ctx, self.environ)
        except ServiceUnavailable as exc:
            self.board.value = f"Announcements not read: {html.escape(str(exc))}"
            return []
        self.board.value = announcements_html(items)
        return items
