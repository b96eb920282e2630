"""Energy and time: the session's time left, and energy and CO2e per job and in all, with the
model's factors beside the figures and a small plot of energy over the session's jobs."""

from __future__ import annotations

import base64
import html
import io

import ipywidgets as widgets

from factoryhub.durations import describe_seconds
from factoryhub.energy import total
from factoryhub.scheduler.slurm import SlurmError
from factoryhub.site import EnergySettings

from .background import Repeater, shows_failure
from .context import SessionContext, session_context
from .jobrows import JobRow
from .monitor import read_job_rows


def session_jobs(rows: list[JobRow], session_job: str) -> list[JobRow]:
    """The session itself and the jobs submitted since it started (ids are increasing)."""
    if not session_job.isdigit():
        return rows
    return [r for r in rows if int(r.job_id.split("_")[0]) >= int(session_job)]


def session_line(rows: list[JobRow], session_job: str) -> str:
    """ "This session: 42 min left of its walltime; 3.1 Wh · 0.78 g CO2e (estimate)"."""
    row = next((r for r in rows if r.job_id == session_job), None)
    if row is None:
        return "This session is not a Slurm job the scheduler lists."
    left = describe_seconds(row.left_s) if row.left_s is not None else "no limit"
    return f"This session: {left} left of its walltime; {row.energy.label()}"


def factors_line(factors: EnergySettings) -> str:
    """The model in one sentence, so every figure can be checked by hand."""
    gpus = ", ".join(f"{t} {w:g} W" for t, w in factors.gpu_watts.items()) or "none listed"
    text = (
        f"Estimate = (cores × {factors.watts_per_core:g} W + GPUs × their draw [{gpus};"
        f" others {factors.default_gpu_watts:g} W]) × hours × PUE {factors.pue:g};"
        f" CO2e at {factors.carbon_g_per_kwh:g} g/kWh"
    )
    return text + (f". Source: {factors.source}" if factors.source else "")


def energy_plot(rows: list[JobRow]) -> str:
    """A bar chart of Wh per job, oldest first, as a PNG data URL ("" without jobs)."""
    if not rows:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    ordered = sorted(rows, key=lambda r: int(r.job_id.split("_")[0]))
    figure = Figure(figsize=(5, 2.2), dpi=90)
    axes = figure.subplots()
    axes.bar([r.job_id for r in ordered], [r.energy.wh for r in ordered], color="#3b7dd8")
    axes.set_ylabel("Wh")
    axes.set_xlabel("job")
    axes.tick_params(axis="x", labelrotation=45, labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def energy_table(rows: list[JobRow]) -> str:
    lines = [
        f"<tr><td>{html.escape(r.job_id)}</td><td>{html.escape(r.what)}</td>"
        f"<td>{html.escape(r.energy.label())}</td></tr>"
        for r in rows
    ]
    summed = total([r.energy for r in rows])
    lines.append(
        f"<tr><th colspan=2>This session's jobs</th><th>{html.escape(summed.label())}</th></tr>"
    )
    return f"<table class='fh-energy'>{''.join(lines)}</table>"


class EnergyPanel(widgets.VBox):
    """Time left and energy of the session and of each job, refreshed in the background."""

    def __init__(
        self, context: SessionContext | None = None, interval: float = 30.0, start: bool = True
    ) -> None:
        self.context = context or session_context()
        self.rows: list[JobRow] = []
        self.session = widgets.HTML()
        self.table = widgets.HTML()
        self.plot = widgets.HTML()
        self.factors = widgets.HTML(
            f"<small>{html.escape(factors_line(self.context.site.energy))}</small>"
        )
        super().__init__(
            [
                widgets.HTML("<b>Time and energy</b>"),
                self.session,
                self.table,
                self.plot,
                self.factors,
            ]
        )
        self.repeater = Repeater(
            self.refresh,
            interval,
            on_error=shows_failure(self.session, "Refreshing time and energy"),
        )
        if start:
            self.repeater.start()

    async def refresh(self) -> list[JobRow]:
        try:
            self.rows = session_jobs(await read_job_rows(self.context), self.context.session_job)
        except SlurmError as exc:
            self.session.value = f"<i>The scheduler did not answer: {html.escape(str(exc))}</i>"
            return self.rows
        self.session.value = html.escape(session_line(self.rows, self.context.session_job))
        self.table.value = energy_table(self.rows)
        url = energy_plot(self.rows)
        self.plot.value = f'<img alt="energy per job" src="{url}">' if url else ""
        return self.rows

    def close(self) -> None:
        self.repeater.stop()
        super().close()
