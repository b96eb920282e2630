"""The Dask cluster widget: start a Slurm-backed cluster, scale or adapt it, watch its workers,
open its dashboard, close it."""

from __future__ import annotations

import html

import ipywidgets as widgets
from distributed import Client

from .background import Repeater, guarded, shows_failure
from .context import SessionContext, session_context
from .dask_cluster import SessionCluster


def worker_summary(jobs: dict[str, str], connected: int) -> str:
    """ "3 worker jobs (2 running, 1 pending); 2 workers connected" from job states (pure)."""
    if not jobs:
        return "No worker jobs."
    counts: dict[str, int] = {}
    for state in jobs.values():
        counts[state] = counts.get(state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    return (
        f"{len(jobs)} worker job{'s' if len(jobs) != 1 else ''} ({states});"
        f" {connected} worker{'s' if connected != 1 else ''} connected"
    )


def _job_states(cluster: SessionCluster) -> dict[str, str]:
    """dask-jobqueue's jobs and their status (running once the worker connected)."""
    states = {}
    for name, job in cluster.workers.items():
        status = getattr(job, "status", "pending")
        states[name] = str(getattr(status, "name", status))  # an enum in distributed
    return states


class DaskCluster(widgets.VBox):
    """Dask on Slurm with the site's defaults: Start, Scale, Adapt, Close, dashboard link."""

    def __init__(self, context: SessionContext | None = None, workers: int = 2) -> None:
        self.context = ctx = context or session_context()
        self.cluster: SessionCluster | None = None
        self.client = None
        options = [(f"{p.label or n} ({n})", n) for n, p in ctx.site.learner_partitions().items()]
        self.partition = widgets.Dropdown(
            description="Partition", options=options, value=ctx.site.session.partition
        )
        self.workers = widgets.BoundedIntText(description="Workers", min=0, max=64, value=workers)
        self.minimum = widgets.BoundedIntText(description="Adapt min", min=0, max=64, value=0)
        self.maximum = widgets.BoundedIntText(description="Adapt max", min=1, max=64, value=4)
        self.start_button = widgets.Button(description="Start cluster", button_style="primary")
        self.scale_button = widgets.Button(description="Scale", disabled=True)
        self.adapt_button = widgets.Button(description="Adapt", disabled=True)
        self.close_button = widgets.Button(
            description="Close cluster", button_style="danger", disabled=True
        )
        self.status = widgets.HTML("No cluster yet.")
        self.dashboard = widgets.HTML()
        self.start_button.on_click(
            guarded(self.start, "Starting the cluster", shows_failure(self.status, "Starting"))
        )
        self.scale_button.on_click(
            guarded(
                lambda: self.scale(self.workers.value),
                "Scaling the cluster",
                shows_failure(self.status, "Scaling"),
            )
        )
        self.adapt_button.on_click(
            guarded(
                lambda: self.adapt(self.minimum.value, self.maximum.value),
                "Adapting the cluster",
                shows_failure(self.status, "Adapting"),
            )
        )
        self.close_button.on_click(
            guarded(
                self.close_cluster, "Closing the cluster", shows_failure(self.status, "Closing")
            )
        )
        self.repeater = Repeater(
            self._refresh, 2.0, on_error=shows_failure(self.status, "Refreshing the workers")
        )
        super().__init__(
            [
                widgets.HTML("<b>Dask on Slurm</b>"),
                widgets.HBox([self.partition, self.start_button]),
                widgets.HBox([self.workers, self.scale_button]),
                widgets.HBox([self.minimum, self.maximum, self.adapt_button]),
                self.close_button,
                self.status,
                self.dashboard,
            ]
        )

    def start(self) -> SessionCluster:
        """Start the cluster (its scheduler runs in this kernel) and ask for the workers."""
        if self.cluster is None:
            self.cluster = SessionCluster(partition=self.partition.value, context=self.context)
            self.client = Client(self.cluster)
            link = html.escape(self.cluster.dashboard_link)
            self.dashboard.value = (
                f'<a href="{link}" target="_blank" style="color:#1565c0;'
                f'text-decoration:underline">Open the Dask dashboard</a>'
            )
        self.scale(self.workers.value)
        for button in (self.scale_button, self.adapt_button, self.close_button):
            button.disabled = False
        self.start_button.disabled = True
        self.repeater.start()
        return self.cluster

    def scale(self, n: int) -> None:
        if self.cluster is not None:
            self.cluster.scale(n)
            self.refresh()

    def adapt(self, minimum: int, maximum: int) -> None:
        if self.cluster is not None:
            self.cluster.adapt(minimum=minimum, maximum=max(minimum, maximum))
            self.refresh()

    def refresh(self) -> str:
        """Redraw the worker states (from dask-jobqueue and the scheduler, no Slurm call)."""
        if self.cluster is None:
            return self.status.value
        connected = len(self.cluster.scheduler_info.get("workers", {}))
        self.status.value = html.escape(worker_summary(_job_states(self.cluster), connected))
        return self.status.value

    async def _refresh(self) -> None:
        self.refresh()

    def close_cluster(self) -> None:
        """Close the client and the cluster; every worker job is cancelled."""
        self.repeater.stop()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None
        self.status.value = "Cluster closed; its worker jobs are cancelled."
        self.dashboard.value = ""
        self.start_button.disabled = False
        for button in (self.scale_button, self.adapt_button, self.close_button):
            button.disabled = True
