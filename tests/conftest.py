"""Shared fixtures and the test suites. Index:

- `repo`         the checkout's root directory
- `demo_site`    the demo `Site` parsed from hub_config/site.toml
- `fake_slurm`   a `FakeSlurm` client (unit tests only): scripted job table, records every call
- `screenshots`  where browser tests save pictures (`screenshot_dir`)

- `real_hub`     (session) the embedded Slurm plus a test hub + proxy and test accounts of
                 their own; see realsite.py
- `hub_client`   a `HubClient` for `real_hub`: log in through PAM, start/stop servers, routes
- `page`         (browser tests) a fresh 1280×800 page in Debian's headless chromium

Suites: `tests/unit` needs nothing but Python and is what plain `pytest` runs. The others carry
the marker of their folder, `integration` (the real Slurm, hub and proxy, run as root),
`browser` (those and Chromium) and `faults` (faults injected into the real Slurm and hub); they
run when asked: `FACTORYHUB_TESTS=all` (what `make test` sets) or a comma-separated list of
suites, any `-m` expression, or their folder or file named on the command line. After a test of
the real site fails, every server of the test hub is stopped and the tests' jobs cancelled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from factoryhub.budget import AccountBudget
from factoryhub.capacity import Capacity, parse_partitions, parse_sinfo_nodes
from factoryhub.jobrecords import JobTable
from factoryhub.scheduler.actas import ALLOCATION_ENV
from factoryhub.scheduler.slurm import (
    Associations,
    Completed,
    JobInfo,
    SchedulerUnavailable,
    UserJob,
)
from factoryhub.site import Site, load_site

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
SUITES = ("integration", "browser", "faults")  # each one's tests live in tests/<suite>/
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
_FAILED = pytest.StashKey[bool]()
_HUB = pytest.StashKey[object]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_HUB] = None


def asked_suites(setting: str) -> set[str]:
    """The suites `FACTORYHUB_TESTS` asks for: "all", or names separated by commas."""
    names = {name.strip() for name in setting.split(",") if name.strip()}
    if "all" in names:
        return set(SUITES)
    if unknown := names - set(SUITES):
        raise pytest.UsageError(
            f"FACTORYHUB_TESTS: unknown suite {sorted(unknown)[0]!r} (all, {', '.join(SUITES)})"
        )
    return names


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _named_on_command_line(config: pytest.Config) -> list[Path]:
    """Paths given as arguments that lie in a suite's folder (`pytest tests/integration`)."""
    given = [Path(config.invocation_params.dir, a.split("::")[0]).resolve() for a in config.args]
    return [p for p in given if any(_inside(p, TESTS / suite) for suite in SUITES)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(TESTS).parts[0] if _inside(item.path, TESTS) else ""
        if folder in SUITES and item.get_closest_marker(folder) is None:
            raise pytest.UsageError(
                f"{item.nodeid}: tests in tests/{folder}/ carry pytestmark = pytest.mark.{folder}"
            )
    if config.option.markexpr:
        return  # `-m` chooses
    asked = asked_suites(os.environ.get("FACTORYHUB_TESTS", ""))
    named = _named_on_command_line(config)
    kept, left = [], []
    for item in items:
        suites = {m.name for m in item.iter_markers() if m.name in SUITES}
        wanted = suites <= asked or any(_inside(item.path, path) for path in named)
        (kept if wanted else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept


def pytest_report_header(config: pytest.Config) -> list[str]:
    import factoryhub

    asked = asked_suites(os.environ.get("FACTORYHUB_TESTS", ""))
    return [
        f"factoryhub: {Path(factoryhub.__file__).parent}",
        f"suites asked by FACTORYHUB_TESTS: {', '.join(sorted(asked)) or 'none (unit only)'}",
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


@pytest.fixture(autouse=True)
def _nothing_left_running(request: pytest.FixtureRequest):
    """After a failed test of the real site: stop every server of the test hub and cancel the
    tests' jobs, so that the next test starts from nothing."""
    yield
    hub = request.config.stash[_HUB]
    of_the_real_site = any(request.node.get_closest_marker(suite) for suite in SUITES)
    if hub is None or not of_the_real_site or not request.node.stash.get(_FAILED, False):
        return
    from realsite import stop_everything

    try:
        stop_everything(hub)
    except Exception as exc:  # the test's own failure is the one to report
        warnings.warn(f"clean-up after {request.node.nodeid} failed: {exc}", stacklevel=1)


def screenshot_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where browser tests save screenshots: `reports/screenshots/`, or `docs/images/` (the
    guides' pictures, tracked) when `FACTORYHUB_REFRESH_DOCS=1` asks to refresh them."""
    refresh = environ.get("FACTORYHUB_REFRESH_DOCS", "") == "1"
    folder = REPO / "docs" / "images" if refresh else REPO / "reports" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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


class FakeSlurm:
    """A Slurm client whose answers the test sets; it never runs a command. It implements
    `factoryhub.slurmapi.SlurmAPI` on its own (no real client underneath: a method it lacked
    would be an AttributeError, never a real command), and records every call in `calls`."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobInfo] = {}
        self.user_rows: list[UserJob] = []  # what `user_jobs` answers
        self.calls: list[tuple[str, object]] = []
        self.down = False
        self.next_id = 100
        self.room = True  # whether an immediate allocation is granted
        self.step_says = ""  # what a step's srun writes to its log
        self.accounting: Associations | None = None  # sacctmgr's answer; None: no database
        self.listed = ("alice", "bob", "carol")  # the users a reading of everyone lists
        self.budgets: dict[str, AccountBudget] | None = None  # sshare's answer; None: no database
        self.addresses = {"cn01": "10.0.0.1"}
        self.version = "slurm 22.05.8"  # what `scontrol --version` prints
        self.expected_start = "2030-01-01T00:00:00"
        self.energy: dict[str, float] = {}  # joules per job, what `sacct` measured
        self.answers: dict[str, Completed] = {}  # by program name, for `run` and `run_as`
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

    def _answer(self, program: str) -> Completed:
        return self.answers.get(Path(program).name, Completed(0, "", ""))

    async def run(self, argv, *, stdin=None, env=None, cwd=None) -> Completed:
        self.calls.append(("run", tuple(argv)))
        self._check()
        return self._answer(argv[0])

    async def run_as(self, user, program, args, *, stdin="", env=None, cwd="") -> Completed:
        self.calls.append(("run_as", (user, program, tuple(args))))
        self._check()
        return self._answer(program)

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
        if self.step_says:  # what srun writes to its log, as the real one would
            with open(log_path, "a") as log:
                log.write(self.step_says)

    async def allocate_and_launch(
        self, allocation, step, command, *, user, env, cwd, log_path, stdout=None
    ) -> tuple[str | None, bool]:
        allocation_env = {k: v for k, v in env.items() if k in ALLOCATION_ENV}  # as the helper
        job_id = await self.allocate_now(allocation, user=user, env=allocation_env, cwd=cwd)
        if job_id is None:
            return None, False
        await self.launch_step(
            job_id, step, command, user=user, env=env, cwd=cwd, log_path=log_path
        )
        return job_id, True

    async def associations(self, user: str) -> Associations | None:
        self.calls.append(("sacctmgr", user))
        return self.accounting

    async def all_associations(self) -> dict[str, Associations] | None:
        self.calls.append(("sacctmgr", "*"))
        return None if self.accounting is None else dict.fromkeys(self.listed, self.accounting)

    async def account_budgets(self) -> dict[str, AccountBudget] | None:
        self.calls.append(("sshare", None))
        return None if self.budgets is None else dict(self.budgets)

    async def job_table(self) -> JobTable:
        self.calls.append(("job_table", None))
        self._check()
        return JobTable(dict(self.jobs), {row.job_id: row for row in self.user_rows})

    async def query(self, job_ids) -> dict[str, JobInfo]:
        ids = set(job_ids)
        self.calls.append(("query", frozenset(ids)))
        self._check()
        return {i: job for i, job in self.jobs.items() if i in ids}

    async def tagged_jobs(self, prefix: str) -> list[JobInfo]:
        self.calls.append(("tagged_jobs", prefix))
        self._check()
        return [job for job in self.jobs.values() if job.name.startswith(prefix)]

    async def cancel(self, job_id: str, user: str = "") -> None:
        self.calls.append(("cancel", job_id))
        self._check()
        if job_id in self.jobs:
            self.jobs[job_id] = replace(self.jobs[job_id], state="CANCELLED", reason="None")
        self.user_rows = [
            replace(row, state="CANCELLED") if row.job_id == job_id else row
            for row in self.user_rows
        ]

    async def cancel_named(self, name: str, user: str) -> None:
        self.calls.append(("cancel_named", (name, user)))
        self._check()
        for job_id, job in list(self.jobs.items()):
            if job.name == name and job.user == user:
                self.jobs[job_id] = replace(job, state="CANCELLED", reason="None")

    async def set_comment(self, job_id: str, comment: str) -> None:
        self.calls.append(("set_comment", (job_id, comment)))
        self._check()
        if job_id in self.jobs:
            self.jobs[job_id] = replace(self.jobs[job_id], comment=comment)

    async def job_end(self, job_id: str) -> str:
        self.calls.append(("job_end", job_id))
        self._check()
        info = self.jobs.get(job_id)
        return info.end if info is not None and info.end != "N/A" else ""

    async def user_jobs(self, user: str) -> list[UserJob]:
        self.calls.append(("user_jobs", user))
        self._check()
        return list(self.user_rows)

    async def job_output_path(self, job_id: str) -> str:
        self.calls.append(("output_path", job_id))
        self._check()
        return f"/nonexistent/{job_id}.out"

    async def consumed_energy(self, job_ids) -> dict[str, float]:
        ids = set(job_ids)
        self.calls.append(("sacct", frozenset(ids)))
        if self.down:
            return {}  # the real client answers {} whenever sacct fails
        return {i: joules for i, joules in self.energy.items() if i in ids}

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

    async def slurm_version(self) -> str:
        self._check()
        return self.version

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


@pytest.fixture(scope="session")
def screenshots() -> Path:
    return screenshot_dir()


def _all_but_logs(folder: str, names: list[str]) -> list[str]:
    """For `shutil.copytree`: keep folders and logs (no database, secret or pid file)."""
    return [n for n in names if not n.endswith(".log") and not Path(folder, n).is_dir()]


@pytest.fixture(scope="session")
def real_hub(request: pytest.FixtureRequest):
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
    hub = None
    try:
        hub = start_test_hub(state)
        request.config.stash[_HUB] = hub
        yield hub
    finally:
        request.config.stash[_HUB] = None
        try:
            if hub is not None:
                stop_hub(hub)
        finally:
            cancel_test_jobs()
            # what the test hub logged, and srun's messages per step, outlive its tmpfs
            kept = REPO / "reports" / "test-hub"
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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        yield page
        browser.close()
