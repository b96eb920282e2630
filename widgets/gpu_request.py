"""The GPU request: ask for compute from a notebook and run a script or notebook as a Slurm
batch job of the learner, with the spawner's own validation and start estimate."""

from __future__ import annotations

import asyncio
import html
import json
import os
import time
from collections.abc import Mapping
from datetime import datetime

import ipywidgets as widgets

from factoryhub.budget import AccountBudget, budget_from_json, budget_refusal, charged_account
from factoryhub.capacity import Capacity
from factoryhub.durations import format_minutes, parse_minutes
from factoryhub.estimate import Estimate, estimate_start, phrase_start
from factoryhub.jobscript import site_hooks
from factoryhub.maintenance import blocking_window, maintenance_notice
from factoryhub.request import (
    RequestError,
    ResourceRequest,
    UserAccess,
    access_for,
    parse_request,
    qos_label,
)
from factoryhub.scheduler.slurm import SchedulerUnavailable, SlurmError

from .advice import suggest
from .background import shows_failure, spawn
from .batch import JOBS_DIR, BatchJob, parse_run, render_batch_script
from .context import SessionContext, session_context
from .hubservice import ServiceUnavailable, call_service
from .monitor import JobMonitor


def _default_partition(ctx: SessionContext) -> str:
    gpu = [name for name, part in ctx.site.learner_partitions().items() if part.max_gpus]
    return gpu[0] if gpu else ctx.site.session.partition


def batch_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The kernel's environment minus the session's own Slurm and hub variables (the hub's
    token has no business in a batch job)."""
    return {
        k: v for k, v in environ.items() if not k.startswith(("SLURM_", "JUPYTERHUB_", "SBATCH_"))
    }


class GPURequest(widgets.VBox):
    """Choose resources and what to run; see the estimate and the limits; submit."""

    def __init__(
        self, context: SessionContext | None = None, monitor: JobMonitor | None = None
    ) -> None:
        self.context = ctx = context or session_context()
        self.monitor = monitor
        self.access: UserAccess = access_for(ctx.site, ctx.user)
        self.request: ResourceRequest | None = None
        self.estimate = Estimate("unknown", "")
        self.job_id = ""
        site = ctx.site
        partitions = [(f"{p.label or n} ({n})", n) for n, p in site.learner_partitions().items()]
        self.partition = widgets.Dropdown(
            description="Partition", options=partitions, value=_default_partition(ctx)
        )
        self.gpu_type = widgets.Dropdown(description="GPU type", options=[])
        self.gpus = widgets.BoundedIntText(description="GPUs", min=0, max=64, value=1)
        self.cpus = widgets.BoundedIntText(description="CPUs", min=1, max=1024, value=1)
        self.memory_gb = widgets.BoundedIntText(
            description="Memory (GB)", min=1, max=4096, value=site.session.memory_gb
        )
        self.walltime = widgets.Text(description="Walltime")
        # shown once Slurm says the learner has more than one QoS (load_access)
        self.qos = widgets.Dropdown(description="QoS", options=[], layout={"display": "none"})
        self.run_path = widgets.Text(
            description="Run", placeholder="train.py, job.sh or a notebook.ipynb"
        )
        self.parameters = widgets.Textarea(
            description="Parameters", placeholder='papermill parameters, e.g. {"epochs": 2}'
        )
        self.message = widgets.HTML()
        self.estimate_line = widgets.HTML()
        self.maintenance_line = widgets.HTML()  # the partition's next maintenance window
        # the learner's accounts' budgets (the hub service reads them: sshare shows a learner
        # only their own usage), said in words and held against the request before submitting
        self.budgets: dict[str, AccountBudget] = {}
        self.budget_line = widgets.HTML()
        self.submit_button = widgets.Button(description="Submit job", button_style="primary")
        self.submit_button.on_click(
            lambda _: spawn(self.submit(), on_error=shows_failure(self.message, "Submitting"))
        )
        self._fields = (
            self.gpu_type,
            self.gpus,
            self.cpus,
            self.memory_gb,
            self.walltime,
            self.qos,
        )
        for control in self._fields:
            control.observe(self._changed, names="value")
        self.partition.observe(self._partition_changed, names="value")
        self._partition_changed()
        super().__init__(
            [
                widgets.HTML("<b>Request compute</b>"),
                self.partition,
                widgets.HBox([self.gpu_type, self.gpus]),
                widgets.HBox([self.cpus, self.memory_gb]),
                self.walltime,
                self.qos,
                self.run_path,
                self.parameters,
                self.estimate_line,
                self.maintenance_line,
                self.budget_line,
                self.message,
                self.submit_button,
            ]
        )
        spawn(
            self.load_access(),
            on_error=shows_failure(self.message, "Reading your accounts and QoS"),
        )

    def options(self) -> dict[str, object]:
        """The request as `user_options`: the same schema as the spawn form and REST API."""
        options: dict[str, object] = {
            "partition": self.partition.value,
            "cpus": self.cpus.value,
            "memory_gb": self.memory_gb.value,
            "walltime": self.walltime.value,
            "gpus": self.gpus.value,
        }
        if self.gpus.value and self.gpu_type.value:
            options["gpu_type"] = self.gpu_type.value
        if self.qos.value:
            options["qos"] = self.qos.value
        return options

    def check(self) -> ResourceRequest | None:
        """Validate the current values; show why not and what is possible instead."""
        options = self.options()
        try:
            self.request = parse_request(options, self.context.site, self.access)
        except RequestError as exc:
            self.request = None
            advice = suggest(options, exc, self.context.site, self.access)
            self.message.value = f"<span class='fh-error'>{html.escape(str(exc))}</span>" + (
                f"<br>{html.escape(advice)}" if advice else ""
            )
        else:
            self.message.value = ""
            self._check_budget(self.request)
        self.submit_button.disabled = self.request is None
        return self.request

    def _check_budget(self, request: ResourceRequest) -> None:
        account = charged_account(request.account, self.access.accounts)
        why = budget_refusal(
            self.budgets.get(account),
            cpus=request.cpus,
            gpus=request.gpus,
            walltime_minutes=request.walltime_minutes,
        )
        if why:
            self.request = None
            said = html.escape(why[0].upper() + why[1:])
            self.message.value = f"<span class='fh-error'>{said}</span>"

    async def load_budget(self) -> None:
        """The learner's accounts' budgets from the hub service (GET api/budget)."""
        try:
            answer = await asyncio.to_thread(call_service, self.context.site, "GET", "api/budget")
        except ServiceUnavailable as exc:
            self.budget_line.value = f"Budget unknown: {html.escape(str(exc))}"
            return
        found = [a for a in answer.get("accounts", []) if isinstance(a, dict)]
        self.budgets = {a["account"]: budget_from_json(a) for a in found}
        lines = [line for a in found for line in a.get("lines", [])]
        self.budget_line.value = "<br>".join(html.escape(str(line)) for line in lines)
        self.check()

    async def refresh_estimate(self) -> Estimate:
        """Ask when the current request would start (capacity first, then Slurm)."""
        request = self.check()
        if request is None:
            self.estimate_line.value = self.maintenance_line.value = ""
            return self.estimate
        ctx = self.context
        capacity, limits = await ctx.capacity(), self.access.qos_limits
        self.estimate = await estimate_start(request, capacity, ctx.client, ctx.user, limits)
        if request == self.request:  # the learner may have changed the request meanwhile
            self._show_estimate(request, capacity, datetime.now())
        return self.estimate

    def _show_estimate(
        self, request: ResourceRequest, capacity: Capacity | None, now: datetime
    ) -> None:
        """The start, and the partition's next maintenance window in its own line: when the
        window holds the job back the start says only that (the window's line says the rest,
        of a job, not of a session as the form's estimate does)."""
        minutes, said = request.walltime_minutes, self.estimate.message
        notice = window = None
        if capacity is not None:
            notice = maintenance_notice(capacity, request.partition, minutes, now, "job")
            window = blocking_window(capacity, request.partition, minutes, now)
        if notice and window and self.estimate.start == window.end:
            said = f"after the maintenance, {phrase_start(window.end, now)}"
        self.estimate_line.value = f"Start: <b>{html.escape(said)}</b>"
        self.maintenance_line.value = html.escape(notice) if notice else ""

    async def submit(self) -> str:
        """Submit the job as the learner; returns its id ("" when refused, with the reason)."""
        ctx = self.context
        request = self.check()
        try:
            run = parse_run(self.run_path.value, self.parameters.value, ctx.home)
        except RequestError as exc:
            self.message.value = f"<span class='fh-error'>{html.escape(str(exc))}</span>"
            return ""
        if request is None:
            return ""
        jobs_dir = ctx.home / JOBS_DIR
        jobs_dir.mkdir(parents=True, exist_ok=True)
        params_file = ""
        if run.parameters:
            params_file = f"{JOBS_DIR}/params-{run.stem}-{time.time_ns()}.json"
            (ctx.home / params_file).write_text(json.dumps(run.parameters), encoding="utf-8")
        prefix = ctx.site.environments[request.environment].prefix
        hooks = site_hooks(ctx.site, request.environment)
        script = render_batch_script(BatchJob(request, run, prefix, params_file, hooks))
        try:
            self.job_id = await ctx.client.submit(
                script, user=ctx.user, env=batch_environment(os.environ), cwd=str(ctx.home)
            )
        except SchedulerUnavailable:
            self.message.value = "The scheduler is not answering; nothing was submitted."
            return ""
        except SlurmError as exc:
            self.message.value = f"Slurm refused the job: {html.escape(str(exc))}"
            return ""
        self.message.value = f"Submitted as job <b>{self.job_id}</b>."
        if self.monitor is not None:
            await self.monitor.refresh()
        return self.job_id

    async def load_access(self) -> None:
        """What the learner may use, from Slurm (accounts, QoS and their limits, reservations);
        started when the widget is made, awaitable to be sure it is done."""
        self.access = await self.context.access()
        self.qos.options = [(qos_label(q, self.access), q) for q in self.access.qos]
        self.qos.value = self.access.qos[0] if self.access.qos else None  # the default QoS
        self.qos.layout.display = "" if len(self.access.qos) > 1 else "none"
        await self.load_budget()
        await self.refresh_estimate()

    def _partition_changed(self, _change: object = None) -> None:
        part = self.context.site.partitions[self.partition.value]
        self.gpu_type.options = list(part.gpu_types)
        self.gpu_type.value = part.gpu_types[0] if part.gpu_types else None
        self.gpu_type.disabled = not part.gpu_types
        # the site's default is Slurm's text ("30:00" = 30 min); the learner's field is not
        self.walltime.value = format_minutes(parse_minutes(part.default_walltime))
        self._changed()

    def _changed(self, _change: object = None) -> None:
        self.check()
        spawn(
            self.refresh_estimate(),
            on_error=shows_failure(self.estimate_line, "Estimating the start"),
        )
