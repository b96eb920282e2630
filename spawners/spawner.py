"""`SlurmSpawner`: a learner's JupyterLab as a Slurm job of the learner, following JupyterHub's
Spawner contract (start/poll/stop/progress/get_state/load_state) and nothing more.

The spawn path is a straight line: options → `parse_request` → `render_job_script` →
`SlurmClient.submit` as the learner (job id persisted at once) → wait for the job to run and
report its port through its Slurm comment → host from the node's NodeAddr → ready.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import time
from functools import lru_cache

from jupyterhub import orm
from jupyterhub.spawner import Spawner
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Any, Float, Unicode, default

from factoryhub import jobnames
from factoryhub.capacity import Capacity
from factoryhub.courses.catalogue import (
    COURSE_ENV,
    COURSE_SOURCE_ENV,
    catalogue_dir,
)
from factoryhub.estimate import Estimate, estimate_start
from factoryhub.handshake import parse_port_report
from factoryhub.jobscript import SessionJob, session_command, site_hooks
from factoryhub.jobstate import Phase, classify_state
from factoryhub.reasons import explain_refusal
from factoryhub.request import (
    FIELDS,
    RequestError,
    ResourceRequest,
    bounded_options,
)
from factoryhub.scheduler.livesite import (
    CAPACITY_MAX_AGE,
    NODE_ADDRESS_MAX_AGE,
    capacity_cache,
    node_addresses,
    shared_client,
)
from factoryhub.scheduler.slurm import (
    JobInfo,
    QosLimits,
    SchedulerUnavailable,
    SlurmClient,
    SlurmError,
)
from factoryhub.site import SITE_ENV, WARN_ENV, Site, load_site, public_site_data

from .launch import Launch, ReadyPipe, free_mib, passed_environment, step_error, step_log
from .logtail import read_tail_as
from .options import (
    DISK_FULL,
    UNAVAILABLE,
    apply_request,
    confirm_query,
    live_options_form,
    refuse,
    warning_seconds,
)
from .progress import ProgressLog, describe_job
from .readiness import ask_for_proof
from .refusals import is_refusal, quiet_refusals
from .sweeper import cancel_session_workers, ensure_sweep, starting
from .watcher import JobWatcher, Snapshot, shared_watcher


class SessionFailed(RuntimeError):
    """The session's job ended before its server was ready. JupyterHub shows
    `jupyterhub_message` as is: in the progress stream, and as the REST API's JSON `message`
    when the job fails before the hub's slow-spawn timeout."""

    @property
    def jupyterhub_message(self) -> str:
        return str(self)


@lru_cache(maxsize=8)
def _cached_site(path: str, mtime: float) -> Site:
    return load_site(path)


POSITION_MAX_AGE = 5.0  # seconds between queue-position queries of a waiting spawn
# With a wake-up from the step, how often the job is looked at anyway: a session that cannot
# write to it (a container's: the descriptor does not cross) is found at this look.
WAKE_FALLBACK = 1.0


class SlurmSpawner(Spawner):
    """Runs each single-user server as a Slurm batch job owned by the learner."""

    site_path = Unicode(
        "/etc/factoryhub/site.toml",
        help="""Path of the site description (site.toml): partitions and their limits,
        environments, session defaults, Slurm settings. Re-read when the file changes.""",
    ).tag(config=True)

    hub_id = Unicode(
        "",
        help="""Tag that marks this hub's jobs (their names start with fh:<hub_id>:), so a
        restarted hub re-adopts exactly its own jobs. Defaults to [hub].id in site.toml.""",
    ).tag(config=True)

    server_ip = Unicode(
        "0.0.0.0",  # noqa: S104 - the session must be reachable from the hub host
        help="""Address the session's server binds to on the compute node. The hub connects to
        the node's NodeAddr as reported by Slurm, never to an address the job reports.""",
    ).tag(config=True)

    stop_timeout = Float(
        60.0,
        help="Seconds stop() waits for a cancelled job to leave the queue before giving up.",
    ).tag(config=True)

    slurm_client = Any(
        help="The SlurmClient to use; built from site.toml's [slurm] unless set (tests inject).",
    )

    prove_session = Any(
        ask_for_proof,
        help="""Async callable (base URL, API token, log=logger) -> bool asking the server at a
        reported port to prove it is this session's before the hub routes to it (tests inject).""",
    )

    @default("slurm_client")
    def _default_client(self) -> SlurmClient:
        settings = self.site.slurm  # one client per installation: its caches serve every server
        return shared_client(settings.bin_dir, settings.command_timeout)

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return apply_request

    @default("options_form")
    def _default_options_form(self):
        return live_options_form

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.job_id = ""
        self.job_node = ""
        self.request: ResourceRequest | None = None
        self.progress_log = ProgressLog()
        quiet_refusals(self.log)  # a learner's refusal: one INFO line, not ERROR tracebacks

    # -- settings ---------------------------------------------------------------------------

    @property
    def site(self) -> Site:
        return _cached_site(self.site_path, os.stat(self.site_path).st_mtime)

    @property
    def watcher(self) -> JobWatcher:
        return shared_watcher(self.slurm_client, self.log)

    async def live_capacity(self, max_age: float = CAPACITY_MAX_AGE) -> Capacity | None:
        """The scheduler's partitions and free capacity (shared, at most `max_age` s old)."""
        return await capacity_cache(self.slurm_client).get(max_age)

    async def estimate(
        self,
        request: ResourceRequest,
        capacity: Capacity | None,
        limits: tuple[QosLimits, ...] = (),
    ) -> Estimate:
        """When `request` would start for this learner (see `estimate_start`)."""
        return await estimate_start(request, capacity, self.slurm_client, self.user.name, limits)

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, object]:
        """Form fields → one value each (bounded); `apply_user_options` checks them, and a bad
        field re-renders the form with the message."""
        try:
            return bounded_options({k: v for k, v in formdata.items() if k in FIELDS})
        except RequestError as exc:  # the form comes back with the choices and the sentence
            self.log.info("%s: form refused: %s", self._log_name, exc)
            raise refuse(self.user.name, 400, str(exc), formdata, exc.field) from None

    # -- state ------------------------------------------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        if self.job_id:
            state["job_id"] = self.job_id
            state["job_node"] = self.job_node
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        job_id = str(state.get("job_id", ""))
        if job_id.isdigit():
            self.job_id = job_id
            self.job_node = str(state.get("job_node", ""))
            self.watcher.track(job_id, self.user.name, self.job_name())

    def clear_state(self) -> None:
        super().clear_state()
        self._open_progress_log()  # the next spawn's followers never replay this one's events
        if self.job_id:
            self.watcher.untrack(self.job_id)
            step_log(self.site.hub.state_dir, self.job_id).unlink(missing_ok=True)
        self.job_id = ""
        self.job_node = ""

    def _persist_state(self) -> None:
        """Write the state to the hub database now, so a hub killed mid-spawn finds the job."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            object_session(self.orm_spawner).commit()

    # -- start ------------------------------------------------------------------------------

    def job_name(self) -> str:
        hub_id = self.hub_id or self.site.hub.id
        return jobnames.session_job_name(hub_id, self.user.name, self.name or "")

    def job_environment(self) -> dict[str, str]:
        """The environment `sbatch` runs with, exported to the job: JupyterHub's, nothing of
        root's besides locale settings."""
        prefix = self.site.environments[self.request.environment].prefix
        env = passed_environment()
        env.update(self.get_env())
        env["PATH"] = f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin"
        env[SITE_ENV] = json.dumps(public_site_data(self.site))  # for the session's widgets
        env[WARN_ENV] = str(warning_seconds(self.request, self.site))  # for JupyterLab's warning
        if self.request.course:  # synced into the learner's home by the session (as them)
            env[COURSE_ENV] = self.request.course
            env[COURSE_SOURCE_ENV] = str(catalogue_dir(self.site) / self.request.course)
        return env

    def session_command(self) -> tuple[str, ...]:
        prefix = self.site.environments[self.request.environment].prefix
        args = tuple(self.get_args())
        if self.name:  # a named server (a course, a GPU lab) reopens its own tabs, never the
            # default server's: JupyterLab workspaces of its own (the name is checked on apply)
            home = pwd.getpwnam(self.user.name).pw_dir
            args += (f"--LabApp.workspaces_dir={home}/.jupyter/lab/servers/{self.name}",)
        return session_command(prefix, tuple(self.cmd), args)

    async def start(self) -> tuple[str, int]:
        self._ensure_sweep()
        if self.request is None:
            await apply_request(self, self.user_options)
        try:
            account = pwd.getpwnam(self.user.name)
        except KeyError:
            raise web.HTTPError(400, f"{self.user.name} has no Unix account on this site") from None
        self._refuse_when_the_disk_is_full()
        self.ip, self.port = self.server_ip, 0
        self._open_progress_log()
        self._position = (0.0, None)
        try:
            return await self._submit_and_wait(account.pw_dir)
        finally:
            self.progress_log.close()

    async def _submit_and_wait(self, home: str) -> tuple[str, int]:
        job = SessionJob(
            request=self.request,
            job_name=self.job_name(),
            command=self.session_command(),
            log_dir=self.site.session.log_dir,
            signal=f"B:USR1@{warning_seconds(self.request, self.site)}",
            hooks=site_hooks(self.site, self.request.environment),
        )
        launch = Launch(
            client=self.slurm_client,
            job=job,
            user=self.user.name,
            home=home,
            environment=self.job_environment(),
            state_dir=self.site.hub.state_dir,
            bin_dir=self.site.slurm.bin_dir,
        )
        partition = self.request.partition
        ready: ReadyPipe | None = None
        with starting(self.job_name()):  # no orphan for the sweep until its id is recorded
            try:
                started = self.site.slurm.immediate_start and await launch.immediately(self._adopt)
                if started:
                    ready = started[1]
                    self.log.info("%s allocated at once as job %s", self._log_name, self.job_id)
                    self.progress_log.add(
                        10, f"Room in {partition} now: started as Slurm job {self.job_id}"
                    )
                else:
                    self.progress_log.add(5, f"Submitting to the {partition} partition")
                    await launch.queued(self._adopt)
                    self.log.info("%s submitted as job %s", self._log_name, self.job_id)
                    self.progress_log.add(10, f"Submitted as Slurm job {self.job_id}")
            except SchedulerUnavailable as exc:
                self.log.warning("starting %s: %s", self._log_name, exc)
                raise web.HTTPError(503, UNAVAILABLE) from None
            except SlurmError as exc:
                why = explain_refusal(str(exc))
                raise web.HTTPError(400, f"Slurm refused the session: {why}") from None
        try:
            return await self._wait_until_listening(ready)
        finally:
            if ready is not None:
                ready.close()

    def _refuse_when_the_disk_is_full(self) -> None:
        """No job without a record (F17): refuse before the scheduler is asked at all."""
        hub = self.site.hub
        if (free := free_mib(hub.state_dir)) < hub.min_free_mb:
            self.log.error("refusing %s: %d MiB free in %s", self._log_name, free, hub.state_dir)
            raise web.HTTPError(503, DISK_FULL)

    async def _adopt(self, job_id: str) -> None:
        """Make `job_id` this server's job, persisted before anything else happens (I1); a job
        whose id cannot be recorded is cancelled at once; an id that is already another
        session's job is refused, and nothing of it recorded or cancelled."""
        if self.watcher.owned_by_another(job_id, self.user.name, self.job_name()):
            self.log.error(
                "%s was said to be granted job %s, another session's job: refused",
                self._log_name,
                job_id,
            )
            raise SessionFailed(
                "Slurm's answer to your session's start named another session's job; nothing"
                " was started for you. Please start again, and tell the site's support."
            )
        self.job_id = job_id
        try:
            self._persist_state()
        except Exception:
            self.log.exception(
                "recording job %s of %s failed; cancelling it", job_id, self._log_name
            )
            await self._cancel_quietly()
            self.job_id = ""
            raise web.HTTPError(503, DISK_FULL) from None
        self.watcher.track(job_id, self.user.name, self.job_name())

    async def _wait_until_listening(self, ready: ReadyPipe | None) -> tuple[str, int]:
        """Look at the job every `start_poll_interval`; with a step that will say its port
        (`ready`, immediate allocations only), every `WAKE_FALLBACK` seconds instead, and take
        the port it says with the job's state of the last look. Every look is one `squeue` of
        the whole site: 200 starts looking every quarter second, and again once woken to read
        the comment, kept one running all the time (P7: ~200 in the 20 s of a room's starts,
        17 s of CPU on a 2-core machine)."""
        interval, max_age = self.site.slurm.start_poll_interval, self.site.slurm.start_poll_interval
        said: int | None = None  # the port the step said (proven like the comment's)
        while True:
            snap = await self.watcher.snapshot(max_age=max_age)
            info = snap.jobs.get(self.job_id)
            if snap.ok and self.job_id in snap.asked and info is None:
                raise SessionFailed(
                    f"The scheduler no longer knows your session's Slurm job {self.job_id} (it"
                    " was restarted and lost it before the job started). Nothing is running"
                    " for you; please start again."
                )
            if info is not None:
                address = await self._address_if_ready(info, said)
                if address is not None:
                    return address
            elif not snap.ok:
                self.progress_log.add(15, "The scheduler is not answering; still waiting")
            if ready is not None and await ready.wait(max(interval, WAKE_FALLBACK)):
                said = ready.port
                ready.close()  # one wake-up is all it gives (closed once more by the caller)
                ready = None
                if said is not None and info is not None:
                    address = await self._address_if_ready(info, said)
                    if address is not None:
                        return address
                max_age = 0.0  # a fresh look now
            else:
                max_age = interval
                if ready is None:
                    await asyncio.sleep(interval)

    async def _queue_position(self, info: JobInfo) -> int | None:
        """The job's place in its partition's queue, asked at most every few seconds."""
        taken, value = self._position
        if time.monotonic() - taken >= POSITION_MAX_AGE:
            try:
                value = await self.slurm_client.queue_position(info.job_id, self.request.partition)
            except SlurmError:
                value = None
            self._position = (time.monotonic(), value)
        return value

    async def _address_if_ready(
        self, info: JobInfo, said: int | None = None
    ) -> tuple[str, int] | None:
        """The server's address once the job runs and its port is known: the one its step
        `said`, else its comment's; None while not yet."""
        phase = classify_state(info.state)
        position = await self._queue_position(info) if phase is Phase.QUEUED else None
        self.progress_log.add(*describe_job(info, phase, position))
        if phase in (Phase.ENDING, Phase.ENDED):
            log = f"{self.site.session.log_dir}/session-{info.job_id}.log"
            tail = await read_tail_as(self.user.name, log)
            raise SessionFailed(
                f"Your session's Slurm job {info.job_id} ended ({info.state}, {info.reason})"
                f" before JupyterLab was ready. The end of ~/{log}:\n{tail}"
            )
        port = said if said is not None else parse_port_report(info.comment)
        if phase is Phase.RUNNING and port is None:
            await self._fail_if_step_failed(info.job_id)
        if phase is not Phase.RUNNING or port is None:
            return None
        host = await self._node_address(info.nodes)
        if host is None:  # never an address from the job: only a node Slurm lists has one
            self.log.warning(
                "job %s runs on %.80r, a node Slurm lists no address for", info.job_id, info.nodes
            )
            return None
        await self._require_proof(info, host, port)
        self.job_node = info.nodes
        self.progress_log.add(95, f"JupyterLab is listening on {info.nodes}")
        return host, port

    async def _node_address(self, node: str) -> str | None:
        """`node`'s address from the shared reading of every node's, read anew when the node
        is not in it (a node added since)."""
        shared = node_addresses(self.slurm_client)
        for max_age in (NODE_ADDRESS_MAX_AGE, 0.0):
            if (host := ((await shared.get(max_age)) or {}).get(node)) is not None:
                return host
        return None

    async def _require_proof(self, info: JobInfo, host: str, port: int) -> None:
        """No route to a port the session cannot prove is its own server (another service
        of the node, another learner's): the job is ended and the learner told."""
        base_url = self.server.base_url if self.server is not None else self.user.url
        base = f"http://{host}:{port}{base_url}"
        if await self.prove_session(base, self.api_token, log=self.log):
            return
        self.log.warning(
            "%s: job %s reported port %d on %s, where no server proves to be the session's;"
            " cancelling",
            self._log_name,
            info.job_id,
            port,
            info.nodes,
        )
        await self._cancel_quietly()
        raise SessionFailed(
            f"Your session's Slurm job {info.job_id} reported port {port}, but the server there"
            " is not this session's JupyterLab. The job was ended; please start again."
        )

    async def _fail_if_step_failed(self, job_id: str) -> None:
        """An immediate allocation whose `srun` failed before the server came up would hold its
        resources until the start timeout: end it now, and say why."""
        if error := step_error(step_log(self.site.hub.state_dir, job_id)):
            await self._cancel_quietly()
            raise SessionFailed(
                f"Your session's Slurm job {job_id} could not start JupyterLab: {error}"
            )

    # -- poll, stop, progress ---------------------------------------------------------------

    def _ensure_sweep(self) -> None:
        """Start this hub's orphan sweep once per process (see `sweeper`)."""
        if isinstance(self.orm_spawner, orm.Spawner):
            hub_id = self.hub_id or self.site.hub.id
            session = object_session(self.orm_spawner)
            ensure_sweep(hub_id, self.site.slurm, self.slurm_client, session, self.log)

    async def poll(self) -> int | None:
        """None while the job may still carry the server; an exit status once it cannot."""
        self._ensure_sweep()
        if not self.job_id:
            return 0
        snap = await self.watcher.snapshot(max_age=self.site.slurm.poll_interval)
        if not snap.ok or self.job_id not in snap.asked:
            return None  # unknown: keep the server, look again next poll
        info = snap.jobs.get(self.job_id)
        if info is None:
            return 0
        phase = classify_state(info.state)
        if phase is Phase.ENDED:
            return 0 if info.state.startswith("COMPLETED") else 1
        if self._server_lost(phase):
            # The server is gone but the job is not over: a spawn the hub stopped waiting for
            # (killed mid-spawn), a job requeued after it started, or one ending on a failed
            # node (it would be requeued). Cancel it so it cannot come back as a server no
            # route leads to (I1, F1, F12); the learner simply starts again.
            self.log.warning(
                "%s: job %s is %s without its server; cancelling",
                self._log_name,
                self.job_id,
                info.state,
            )
            await self._cancel_quietly()
            return 1
        return None

    def _server_lost(self, phase: Phase) -> bool:
        if phase is Phase.ENDING:
            return True
        if not self.job_node:  # never got to ready
            return not self._spawn_pending
        return phase is Phase.QUEUED

    async def _cancel_quietly(self) -> None:
        try:
            await self.slurm_client.cancel(self.job_id, self.user.name)
        except SlurmError as exc:
            self.log.error("cancelling job %s failed: %s", self.job_id, exc)

    async def stop(self, now: bool = False) -> None:
        """Cancel the job and wait until it has left the queue."""
        if not self.job_id:
            return
        deadline = time.monotonic() + self.stop_timeout
        while True:
            try:
                await self.slurm_client.cancel(self.job_id, self.user.name)
                break
            except SchedulerUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
        while time.monotonic() < deadline:
            snap = await self.watcher.snapshot(max_age=0.5)
            if self._left_queue(snap):
                self.log.info("%s: job %s left the queue", self._log_name, self.job_id)
                await cancel_session_workers(
                    self.slurm_client, self.job_id, self.user.name, self.log
                )
                return
            await asyncio.sleep(0.5)
        raise TimeoutError(
            f"job {self.job_id} still in the queue {self.stop_timeout:g} s after scancel"
        )

    def _left_queue(self, snap: Snapshot) -> bool:
        """True when the scheduler answered and the job is over or no longer known."""
        if not snap.ok or self.job_id not in snap.asked:
            return False
        info = snap.jobs.get(self.job_id)
        return info is None or classify_state(info.state) is Phase.ENDED

    def _open_progress_log(self) -> None:
        """The log the next spawn writes to, made when the last one has closed. JupyterHub
        serves the progress stream from the spawn request on, while it still applies the
        options (which can wait on Slurm), so a follower may attach before `start` runs: it must
        find the log `start` will write to, not one that `start` replaces."""
        if self.progress_log.closed:
            self.progress_log = ProgressLog()

    async def progress(self):
        async for event in self.progress_log.follow():
            yield event

    def options_from_query(self, query_data: dict[str, list[str]]) -> dict:
        """A GET of /hub/spawn with query arguments (any site can send a browser there) never
        starts a server: the spawn form is shown prefilled, and its POST, with the hub's XSRF
        token, starts it (see `confirm_query`)."""
        try:
            confirm_query(self, query_data)
        except Exception as exc:
            if is_refusal(exc) and isinstance(exc, web.HTTPError):
                self.log.info("%s: a link's request refused: %s", self._log_name, exc)
            elif is_refusal(exc):
                self.log.info("%s: a link's request, shown for confirmation", self._log_name)
            raise
