"""The hub's database on PostgreSQL (site.toml [hub] db_url, db_password_file): a test hub of
its own (hub id "pgtest", ports 18100/18101/18181) on a PostgreSQL cluster made for the run
with Debian's PostgreSQL, run by its `postgres` account, reached over TCP with a password
(scram-sha-256) the hub reads from its password file. The restart tests of test_restart.py run
again here against this hub, unchanged: this module's `real_hub` and `hub_client` stand in for
the session's hub on SQLite."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from realsite import REPO, HubClient, cancel_test_jobs, start_test_hub

from factoryhub.demo.hubprocess import HUB_USER, ensure_service_accounts, stop_hub

# Collected here a second time: with this module's fixtures, on PostgreSQL.
from integration.test_restart import (  # noqa: F401
    test_a_session_that_ended_while_the_hub_was_down_is_cleared,
    test_hub_restart_keeps_the_server_and_its_job,
)

pytestmark = pytest.mark.integration

PARENT = Path("/var/lib/factoryhub-test")
PG_PORT = 18432
ROLE = DATABASE = "fhtest_hub"


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of the test's own: its folder, and the hub's role's password."""

    folder: Path
    password: str

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def connect(self) -> psycopg.Connection:
        """Connect as the hub's role, as the hub does: TCP, password."""
        return psycopg.connect(
            host="127.0.0.1", port=PG_PORT, dbname=DATABASE, user=ROLE, password=self.password
        )


def _bin() -> Path:
    """Debian's PostgreSQL programs (the newest installed major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail("PostgreSQL is not installed: run deploy/install.sh --test")
    return found[-1].parent


def _as_postgres(*argv: str, stdin: str | None = None) -> None:
    """A PostgreSQL program as the `postgres` account (never root), its output shown on error."""
    done = subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert done.returncode == 0, f"{argv[0]}: {done.stdout}{done.stderr}"


def _stop_cluster(folder: Path) -> None:
    if (folder / "data" / "postmaster.pid").exists():
        _as_postgres(str(_bin() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "stop")
    shutil.rmtree(folder, ignore_errors=True)


def _start_cluster(folder: Path, password: str) -> Cluster:
    postgres = pwd.getpwnam("postgres")
    folder.mkdir(mode=0o700)
    os.chown(folder, postgres.pw_uid, postgres.pw_gid)
    cluster = Cluster(folder, password)
    programs = _bin()
    # Peer authentication over the socket (for `postgres`), passwords over TCP (for the hub).
    _as_postgres(
        str(programs / "initdb"),
        *("-D", str(cluster.data), "-U", "postgres", "-A", "peer"),
        *("--auth-host=scram-sha-256", "--no-sync", "--no-instructions"),
    )
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"listen_addresses = '127.0.0.1'\nport = {PG_PORT}\n"
            f"unix_socket_directories = '{folder}'\n"
            # a cluster that ends with the test: no need to survive a power cut
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        )
    log = str(folder / "postgresql.log")
    _as_postgres(str(programs / "pg_ctl"), "-D", str(cluster.data), "-l", log, "-w", "start")
    _as_postgres(
        *(str(programs / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"),
        *("-h", str(folder), "-p", str(PG_PORT), "-d", "postgres"),
        stdin=f"CREATE ROLE {ROLE} LOGIN PASSWORD '{password}';\n"
        f"CREATE DATABASE {DATABASE} OWNER {ROLE};\n",
    )
    return cluster


@pytest.fixture(scope="module")
def postgres() -> Iterator[Cluster]:
    for leftover in PARENT.glob("pg-*"):  # what an interrupted run left (port held)
        if leftover.is_dir():
            _stop_cluster(leftover)
    PARENT.mkdir(parents=True, exist_ok=True)
    folder = PARENT / f"pg-{os.getpid()}"
    try:
        yield _start_cluster(folder, secrets.token_urlsafe(18))
    finally:
        _stop_cluster(folder)


@pytest.fixture(scope="module")
def password_file(postgres: Cluster) -> Iterator[Path]:
    """The role's password, for the hub's account only (root's file, the hub's group, 0640)."""
    ensure_service_accounts()
    path = PARENT / f"pg-{os.getpid()}.password"
    path.write_text(postgres.password + "\n")
    os.chown(path, 0, pwd.getpwnam(HUB_USER).pw_gid)
    path.chmod(0o640)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def real_hub(postgres: Cluster, password_file: Path):
    state = PARENT / f"pghub-{os.getpid()}"
    state.mkdir(parents=True, exist_ok=True)
    hub = None
    try:
        hub = start_test_hub(
            state,
            hub_id="pgtest",
            port_base=18100,
            db_url=f"postgresql://{ROLE}@127.0.0.1:{PG_PORT}/{DATABASE}",
            db_password_file=str(password_file),
        )
        yield hub
    finally:
        try:
            if hub is not None:
                stop_hub(hub)
        finally:
            cancel_test_jobs()
            kept = REPO / "reports" / "test-hub-postgres"
            kept.mkdir(parents=True, exist_ok=True)
            if (state / "hub.log").exists():
                shutil.copy(state / "hub.log", kept / "hub.log")
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def hub_client(real_hub) -> HubClient:
    return HubClient(real_hub)


def test_the_hub_keeps_its_records_in_postgresql(hub_client, real_hub, postgres):
    hub_client.login_token("tlearner3")  # a login: a user and a token written now
    with postgres.connect() as db:
        tables = {row[0] for row in db.execute("SELECT tablename FROM pg_tables")}
        users = {row[0] for row in db.execute("SELECT name FROM users")}
        tokens = db.execute(
            "SELECT count(*) FROM api_tokens JOIN users ON users.id = api_tokens.user_id"
            " WHERE users.name = %s",
            ("tlearner3",),
        ).fetchone()[0]
    assert {"users", "spawners", "api_tokens", "alembic_version"} <= tables
    assert {"tadmin", "tlearner3"} <= users and tokens >= 1
    # JupyterHub's schema upgrade, run as the admin guide says, reaches the same database
    jupyterhub = real_hub.hub_argv()[0]
    upgrade = subprocess.run(
        ["runuser", "-u", HUB_USER, "--", jupyterhub, "upgrade-db", "-f", str(real_hub.hub_config)],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert upgrade.returncode == 0, upgrade.stderr[-2000:]
    assert not (real_hub.state_dir / "jupyterhub.sqlite").exists()
    assert postgres.password not in (real_hub.state_dir / "hub.log").read_text()
