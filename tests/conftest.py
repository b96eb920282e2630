"""Shared fixtures. Index:

- `repo`         the checkout's root directory
- `demo_site`    the demo `Site` parsed from hub_config/site.toml
- `fake_slurm`   a `FakeSlurm` client (unit tests only): scripted job table, records every call

- `real_hub`     (session) the embedded Slurm plus a test hub + proxy of its own; see realsite.py
- `hub_client`   a `HubClient` for `real_hub`: log in through PAM, start/stop servers, routes
- `page`         (browser tests) a fresh 1280×800 page in Debian's headless chromium
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from factoryhub.capacity import Capacity, parse_partitions, parse_sinfo_nodes
from factoryhub.site import Site, load_site
from factoryhub.slurm import (
    Associations,
    JobInfo,
    SchedulerUnavailable,
    SlurmClient,
    UserJob,
)

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def job_info(job_id: str = "7", state: str = "PENDING", **fields: str) -> JobInfo:
    """A squeue row for tests: a learner's session job, fields overridable."""
    values = dict(
        reason="None",
        nodes="",
        name="fh:test:alice:",
        user="alice",
        time_left="59:00",
        start="N/A",
        comment="",
    )
    values.update(fields)
    return JobInfo(job_id=job_id, state=state, **values)


def user_job(job_id: str = "7", state: str = "PENDING", **fields: str) -> UserJob:
    """A row of a learner's own `squeue` (the job monitor's), fields overridable."""
    values = dict(
        reason="Priority",
        nodes="",
        name="fh-batch-train",
        partition="gpu",
        cpus="4",
        tres="gres:gpu:h100:2",
        time_used="0:00",
        time_limit="1:00:00",
        time_left="1:00:00",
        start="N/A",
        submit="2030-01-01T00:00:00",
    )
    values.update(fields)
    return UserJob(job_id=job_id, state=state, **values)


class FakeSlurm(SlurmClient):
    """A Slurm client whose answers the test sets; it never runs a command."""

    def __init__(self) -> None:
        super().__init__(bin_dir="/fake", timeout=1)
        self.jobs: dict[str, JobInfo] = {}
        self.user_rows: list[UserJob] = []  # what `user_jobs` answers
        self.calls: list[tuple[str, object]] = []
        self.down = False
        self.next_id = 100
        self.room = True  # whether an immediate allocation is granted
        self.accounting: Associations | None = None  # sacctmgr's answer; None: no database
        self.listed = ("alice", "bob", "carol")  # the users a reading of everyone lists
        self.addresses = {"cn01": "10.0.0.1"}
        self.expected_start = "2030-01-01T00:00:00"
        self.live = Capacity(
            parse_partitions(
                "PartitionName=cpu MaxTime=12:00:00 DefaultTime=01:00:00 State=UP\n"
                "PartitionName=gpu MaxTime=1-00:00:00 DefaultTime=01:00:00 State=UP\n"
                "PartitionName=debug MaxTime=00:30:00 DefaultTime=00:15:00 State=UP\n"
            ),
            parse_sinfo_nodes(
                "cn01|cpu*|0/32/0/32|(null)|gpu:0|idle|64000|0|\n"
                "gn01|gpu|16/0/0/16|gpu:h100:4|gpu:h100:4(IDX:0-3)|alloc|128000|64000|\n"
                "cn01|debug|0/32/0/32|(null)|gpu:0|idle|64000|0|\n"
            ),
        )

    def set_job(self, job_id: str, state: str, **fields: str) -> None:
        self.jobs[job_id] = job_info(job_id, state, **fields)

    def _check(self) -> None:
        if self.down:
            raise SchedulerUnavailable("squeue failed (exit 1): Unable to contact slurm controller")

    async def submit(self, script: str, *, user: str, env: dict, cwd: str) -> str:
        self.calls.append(("submit", (script, user, dict(env), cwd)))
        self._check()
        self.next_id += 1
        return str(self.next_id)

    async def allocate_now(self, options, *, user: str, env: dict, cwd: str) -> str | None:
        self.calls.append(("salloc", (list(options), user, dict(env), cwd)))
        self._check()
        if not self.room:
            return None
        self.next_id += 1
        return str(self.next_id)

    async def launch_step(
        self, job_id, options, command, *, user, env, cwd, log_path, stdout=None
    ) -> None:
        self.calls.append(("srun", (job_id, list(options), list(command), user, dict(env))))

    async def associations(self, user: str) -> Associations | None:
        self.calls.append(("sacctmgr", user))
        return self.accounting

    async def all_associations(self) -> dict[str, Associations] | None:
        self.calls.append(("sacctmgr", "*"))
        return None if self.accounting is None else dict.fromkeys(self.listed, self.accounting)

    async def query(self, job_ids) -> dict[str, JobInfo]:
        ids = set(job_ids)
        self.calls.append(("query", frozenset(ids)))
        self._check()
        return {i: job for i, job in self.jobs.items() if i in ids}

    async def cancel(self, job_id: str, user: str = "") -> None:
        self.calls.append(("cancel", job_id))
        self._check()
        if job_id in self.jobs:
            self.set_job(job_id, "CANCELLED", reason="None")
        self.user_rows = [
            UserJob(**{**r.__dict__, "state": "CANCELLED"}) if r.job_id == job_id else r
            for r in self.user_rows
        ]

    async def user_jobs(self, user: str) -> list[UserJob]:
        self.calls.append(("user_jobs", user))
        self._check()
        return list(self.user_rows)

    async def job_output_path(self, job_id: str) -> str:
        self.calls.append(("output_path", job_id))
        self._check()
        return f"/nonexistent/{job_id}.out"

    async def capacity(self) -> Capacity:
        self.calls.append(("capacity", None))
        self._check()
        return self.live

    async def sbatch_test_only(self, argv: list[str], *, user: str, cwd: str) -> str:
        self.calls.append(("test_only", tuple(argv)))
        self._check()
        return f"sbatch: Job 9 to start at {self.expected_start} using 1 processors on nodes x"

    async def queue_position(self, job_id: str, partition: str) -> int | None:
        self.calls.append(("position", job_id))
        self._check()
        return 3

    async def controller_up(self) -> bool:
        self.calls.append(("ping", None))
        return not self.down

    async def node_addresses(self) -> dict[str, str]:
        self._check()
        return dict(self.addresses)

    def count(self, kind: str) -> int:
        return sum(1 for name, _ in self.calls if name == kind)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_site() -> Site:
    return load_site(REPO / "hub_config" / "site.toml")


@pytest.fixture
def fake_slurm() -> FakeSlurm:
    return FakeSlurm()


def _all_but_logs(folder: str, names: list[str]) -> list[str]:
    """For `shutil.copytree`: keep folders and logs (no database, secret or pid file)."""
    return [n for n in names if not n.endswith(".log") and not Path(folder, n).is_dir()]


@pytest.fixture(scope="session")
def real_hub(tmp_path_factory):
    from realsite import cancel_test_jobs, start_test_hub

    from factoryhub.demo.hubprocess import stop_hub

    # The hub's state (its database, logs) on a file system of its own, so that F17 can fill
    # it up without filling the machine's; in a folder the hub's unprivileged account can reach
    # (pytest's own temporary folders are root's, mode 0700).
    state = Path("/var/lib/factoryhub-test") / f"hub-{os.getpid()}"
    state.mkdir(parents=True, exist_ok=True)
    state.parent.chmod(0o755)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m,mode=0711", "factoryhub-test", str(state)],
        check=True,
    )
    try:
        hub = start_test_hub(state)
        yield hub
        stop_hub(hub)
        cancel_test_jobs()
    finally:
        # what the test hub logged, and srun's messages per step, outlive its tmpfs
        kept = Path(__file__).resolve().parent.parent / "reports" / "test-hub"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(state, kept, ignore=_all_but_logs)
        subprocess.run(["umount", "--lazy", str(state)], check=False)
        with contextlib.suppress(OSError):
            state.rmdir()


@pytest.fixture(scope="session")
def hub_client(real_hub):
    from realsite import HubClient

    return HubClient(real_hub)


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()
