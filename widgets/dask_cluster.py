"""Dask on Slurm from a notebook: dask-jobqueue's `SLURMCluster` with the site's defaults for a
partition, its dashboard behind the learner's Jupyter server, and no worker job left behind.

Workers are Slurm jobs named ``fh-dask-<session job>-<kernel pid>``. They end when the cluster
closes (dask-jobqueue cancels them, then one `scancel --name` catches any straggler), when the
kernel dies (the reaper process, see `reaper`), or when the session ends (the hub cancels the
session's workers: the hub's orphan sweep). Scheduler and workers speak TLS with
throw-away certificates, so other users on a node cannot join or drive the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dask_jobqueue import SLURMCluster

from factoryhub import jobnames
from factoryhub.scheduler.slurm import Associations, SlurmError
from factoryhub.site import Site

from .batch import JOBS_DIR
from .context import SessionContext, session_context
from .dashboard import dashboard_url, private_directory, serve_on_socket, socket_path
from .reaper import cancel_workers

DEATH_TIMEOUT = 60  # seconds a worker waits for a vanished scheduler before its job ends


def cluster_options(
    site: Site, partition: str, *, account: str, job_name: str, home: Path
) -> dict[str, object]:
    """`SLURMCluster` arguments from the site's defaults for `partition` (pure)."""
    part = site.partitions[partition]
    prefix = site.environments[site.session.environment].prefix
    return {
        "queue": partition,
        "account": account or None,
        "cores": part.dask_worker_cores,
        "processes": 1,
        "memory": f"{part.dask_worker_memory_gb}GB",
        "walltime": part.default_walltime,
        "job_name": job_name,
        "log_directory": str(home / JOBS_DIR),
        "python": f"{prefix}/bin/python",
        "death_timeout": DEATH_TIMEOUT,
        "security": True,
        "shared_temp_directory": str(home / ".factoryhub" / "dask"),
        "scheduler_options": {"dashboard_address": "127.0.0.1:0"},
        "job_extra_directives": ["--nodes=1"],
    }


def default_account(site: Site, user: str, associations: Associations | None) -> str:
    """The account worker jobs charge (pure): the learner's default account in the accounting
    database where it lists one, else the first of site.toml's [access] for them, else none
    (Slurm's own default)."""
    if associations is not None and associations.accounts:
        return associations.accounts[0]  # sacctmgr lists the user's default first
    accounts = site.access.accounts_of(user)
    return accounts[0] if accounts else ""


def learners_account(ctx: SessionContext) -> str:
    """`default_account` with the learner's associations from `sacctmgr`, read from code that
    cannot await (the cluster is made in a cell, inside the kernel's running loop)."""
    with ThreadPoolExecutor(1) as pool:
        found = pool.submit(asyncio.run, ctx.client.associations(ctx.user)).result()
    return default_account(ctx.site, ctx.user, found)


class SessionCluster(SLURMCluster):
    """A `SLURMCluster` that belongs to this session: private dashboard, reaped workers."""

    def __init__(
        self,
        partition: str | None = None,
        context: SessionContext | None = None,
        **overrides: object,
    ) -> None:
        ctx = context or session_context()
        self.context = ctx
        self.partition = partition or ctx.site.session.partition
        name = jobnames.worker_job_name(ctx.session_job, os.getpid())
        options = cluster_options(
            ctx.site,
            self.partition,
            account=str(overrides.pop("account", "") or learners_account(ctx)),
            job_name=name,
            home=ctx.home,
        )
        certificates = Path(options["shared_temp_directory"])
        certificates.parent.mkdir(exist_ok=True)
        private_directory(certificates)  # the cluster's TLS keys: the learner's eyes only
        self.worker_job_name = name
        self.socket = socket_path()
        self._reaper = self._start_reaper(name, ctx.site.slurm.bin_dir)
        super().__init__(**{**options, **overrides})

    @staticmethod
    def _start_reaper(job_name: str, bin_dir: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "factoryhub.widgets.reaper", str(os.getpid()), job_name]
        return subprocess.Popen(  # its own session: a SIGKILL of this kernel spares it
            [*argv, bin_dir],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def _start(self) -> None:
        await super()._start()
        await serve_on_socket(self.scheduler.http_server, self.socket)

    @property
    def dashboard_link(self) -> str:
        return dashboard_url(self.context.service_prefix)

    async def _close(self) -> None:
        try:
            await super()._close()
        finally:
            ctx = self.context
            with contextlib.suppress(SlurmError):  # stragglers: a job dask-jobqueue lost
                await cancel_workers(ctx.client, self.worker_job_name, ctx.user)
            self._reaper.terminate()
            self.socket.unlink(missing_ok=True)
