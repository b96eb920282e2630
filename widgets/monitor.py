"""The job monitor: the learner's jobs, refreshed in the background, one `squeue` per refresh,
with a cancel button (asking first) and the tail of a job's output."""

from __future__ import annotations

import dataclasses
import html
from datetime import datetime
from pathlib import Path

import ipywidgets as widgets

from factoryhub.jobstate import Phase
from factoryhub.scheduler.slurm import SlurmError

from .background import Repeater, shows_failure, spawn
from .context import SessionContext, session_context
from .jobrows import JobRow, job_rows, rows_table

SHOWN_ENDED = 8  # ended jobs listed below the live ones, most recent first
TAIL_BYTES = 16_384


def tail_lines(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a file the learner owns (read as the learner: the kernel)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - TAIL_BYTES, 0))
            data = handle.read().decode(errors="replace")
    except OSError as exc:
        return f"(no output: {exc.strerror})"
    return "\n".join(data.splitlines()[-lines:]) or "(no output yet)"


def carry_over(previous: list[JobRow], current: list[JobRow]) -> list[JobRow]:
    """Rows that left Slurm's queue since the last refresh, kept as ended (recent first)."""
    now_ids = {r.job_id for r in current}
    gone = [
        dataclasses.replace(r, phase=Phase.ENDED, detail="left Slurm's queue", left_s=None)
        for r in previous
        if r.job_id not in now_ids
    ]
    return gone[:SHOWN_ENDED]


def shown(rows: list[JobRow]) -> list[JobRow]:
    """Every live job, then the most recently ended ones."""
    live = [r for r in rows if r.cancellable or r.phase is Phase.ENDING]
    ended = [r for r in rows if r not in live]
    return live + sorted(ended, key=lambda r: -int(r.job_id.split("_")[0]))[:SHOWN_ENDED]


def preselected(rows: list[JobRow], chosen: str | None, session_job: str) -> str | None:
    """The job the dropdown shows: the learner's choice while it is listed, else the first job
    that is not the session running this kernel (never offered for cancelling by default)."""
    ids = [r.job_id for r in rows]
    if chosen in ids:
        return chosen
    return next((i for i in ids if i != session_job), None)


def cancel_question(row: JobRow, session_job: str) -> str:
    """ "Cancel job 7 (batch: train)?" — and what it ends when it is this session (pure)."""
    question = f"Cancel job {row.job_id} ({row.what})?"
    if row.job_id == session_job:
        question += " It runs this JupyterLab: your session ends with it."
    return question


async def read_job_rows(ctx: SessionContext) -> list[JobRow]:
    """The learner's jobs as rows: one `squeue` (and one `sacct` where Slurm measures energy).
    Raises `SlurmError` when the scheduler does not answer."""
    jobs = await ctx.client.user_jobs(ctx.user)
    joules = {}
    if ctx.site.energy.use_slurm_energy:
        joules = await ctx.client.consumed_energy(j.job_id for j in jobs)
    return job_rows(jobs, ctx.site, datetime.now(), joules)


class JobMonitor(widgets.VBox):
    """Your jobs: state, why they wait, when they start, time left, resources, energy."""

    def __init__(
        self, context: SessionContext | None = None, interval: float = 10.0, start: bool = True
    ) -> None:
        self.context = context or session_context()
        self.rows: list[JobRow] = []
        self.table = widgets.HTML(rows_table([]))
        self.status = widgets.HTML()
        self.job = widgets.Dropdown(description="Job", options=[])
        self.cancel_button = widgets.Button(description="Cancel job", button_style="danger")
        self.output_button = widgets.Button(description="Show output")
        self.output = widgets.HTML()
        # the confirmation: hidden until "Cancel job" is pressed for a live job
        self.question = widgets.HTML()
        self.yes_button = widgets.Button(description="Yes", button_style="danger")
        self.no_button = widgets.Button(description="No")
        self.confirm = widgets.HBox(
            [self.question, self.yes_button, self.no_button], layout={"display": "none"}
        )
        self.to_cancel: str | None = None  # the job the question is about
        failed = shows_failure(self.status, "Cancelling")
        self.cancel_button.on_click(lambda _: self.ask_cancel(self.job.value))
        self.yes_button.on_click(lambda _: spawn(self.confirm_cancel(), on_error=failed))
        self.no_button.on_click(lambda _: self.dismiss())
        self.output_button.on_click(
            lambda _: spawn(
                self.show_output(self.job.value),
                on_error=shows_failure(self.output, "Reading the output"),
            )
        )
        controls = widgets.HBox([self.job, self.cancel_button, self.output_button])
        title = widgets.HTML("<b>Your jobs</b>")
        super().__init__([title, self.table, controls, self.confirm, self.status, self.output])
        self.repeater = Repeater(
            self.refresh, interval, on_error=shows_failure(self.status, "Refreshing your jobs")
        )
        if start:
            self.repeater.start()

    async def refresh(self) -> list[JobRow]:
        """Read all of the learner's jobs in one query and redraw."""
        try:
            current = await read_job_rows(self.context)
        except SlurmError as exc:
            self.status.value = f"<i>The scheduler did not answer: {html.escape(str(exc))}</i>"
            return self.rows
        self.rows = shown(current + carry_over(self.rows, current))
        self.table.value = rows_table(self.rows)
        chosen = self.job.value
        self.job.options = [(f"{r.job_id} · {r.what} · {r.state}", r.job_id) for r in self.rows]
        self.job.value = preselected(self.rows, chosen, self.context.session_job)
        self.status.value = f"<small>Updated {datetime.now():%H:%M:%S}</small>"
        return self.rows

    def row(self, job_id: str | None) -> JobRow | None:
        return next((r for r in self.rows if r.job_id == job_id), None)

    def ask_cancel(self, job_id: str | None) -> bool:
        """Ask "Cancel job N (what)?" with Yes and No; nothing is cancelled yet."""
        row = self.row(job_id)
        if row is None or not row.cancellable:
            self.dismiss()
            self.status.value = "Choose a job that is still queued or running."
            return False
        self.to_cancel = row.job_id
        self.question.value = html.escape(cancel_question(row, self.context.session_job))
        self.confirm.layout.display = ""
        return True

    def dismiss(self) -> None:
        """Hide the question; nothing is cancelled."""
        self.to_cancel = None
        self.question.value = ""
        self.confirm.layout.display = "none"

    async def confirm_cancel(self) -> bool:
        """The learner said Yes: cancel the job the question named."""
        job_id = self.to_cancel
        self.dismiss()
        return await self.cancel(job_id)

    async def cancel(self, job_id: str | None) -> bool:
        """Cancel one of the listed, still live jobs (the Yes of `ask_cancel`)."""
        row = self.row(job_id)
        if row is None or not row.cancellable:
            self.status.value = "Choose a job that is still queued or running."
            return False
        try:
            await self.context.client.cancel(row.job_id)
        except SlurmError as exc:
            self.status.value = f"Could not cancel job {row.job_id}: {html.escape(str(exc))}"
            return False
        await self.refresh()
        self.status.value = f"Cancelled job {row.job_id}."
        return True

    async def show_output(self, job_id: str | None) -> str:
        """Show the tail of a job's standard output."""
        if self.row(job_id) is None:
            return ""
        try:
            path = await self.context.client.job_output_path(job_id)
        except SlurmError as exc:
            text = f"(Slurm no longer knows this job: {exc})"
        else:
            text = tail_lines(Path(path)) if path else "(this job writes no output file)"
        self.output.value = f"<pre class='fh-output'>{html.escape(text)}</pre>"
        return text

    def close(self) -> None:
        self.repeater.stop()
        super().close()
