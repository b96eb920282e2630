"""The hub's database setting (site.toml [hub] db_url, db_password_file): the URL's checks
(factoryhub.hubdatabase) and the URL the hub's config gives JupyterHub (spawners/database)."""

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from traitlets.config import Config

from factoryhub.hubdatabase import db_url_problem, password_of
from factoryhub.site import SiteError, parse_site, public_site_data
from factoryhub.spawners.database import hub_db_url
from factoryhub.spawners.hubconfig import apply_site

SITE = """
[hub]
state_dir = "/var/lib/fh"
{hub}
[partitions.cpu]
label = "CPU"
[environments.default]
label = "Default"
prefix = "/opt/factoryhub/venv"
[session]
partition = "cpu"
environment = "default"
"""


def site_with(hub: str):
    return parse_site(SITE.format(hub=hub))


@pytest.mark.parametrize(
    ("url", "password_file"),
    [
        ("", ""),
        ("postgresql://factoryhub@db.example.org:5432/factoryhub", ""),
        ("postgresql://factoryhub@127.0.0.1/hub", "/etc/factoryhub/db-password"),
        ("postgresql+psycopg://hub@[::1]:5433/hub", "/run/credentials/db"),
        ("postgresql:///factoryhub?host=/var/run/postgresql", ""),  # peer, over the socket
    ],
)
def test_accepted_settings(url, password_file):
    assert db_url_problem(url, password_file) is None


@pytest.mark.parametrize(
    ("url", "password_file", "sentence"),
    [
        ("mysql://hub@db/hub", "", "mysql:// is not a database FactoryHub supports"),
        ("postgres://hub@db/hub", "", "write postgresql://, not postgres://"),
        ("sqlite:////var/lib/fh/hub.sqlite", "", "leave it empty for SQLite"),
        ("db.example.org/hub", "", "a URL without a scheme is not a database"),
        ("postgresql+psycopg2://hub@db/hub", "", "postgresql+psycopg2:// is not a database"),
        ("postgresql://hub:s3cret@db/hub", "", "holds a password: site.toml is no place"),
        ("postgresql://hub:@db/hub", "", "holds a password"),
        ("postgresql://hub@db:port/hub", "", "not a URL SQLAlchemy can read"),
        ("postgresql://hub@db:5432/", "", "names no database"),
        ("postgresql://hub@db:5432", "", "names no database"),
        ("postgresql://hub@db/hub\nx", "", "control character"),
        ("postgresql://hub@db/hub", "db-password", "is not an absolute path"),
        ("", "/etc/factoryhub/db-password", "SQLite needs no password"),
    ],
)
def test_refused_settings_say_why(url, password_file, sentence):
    assert sentence in db_url_problem(url, password_file)


def test_the_site_file_refuses_a_password_in_the_url():
    with pytest.raises(SiteError, match=r"hub\.db_url holds a password"):
        site_with('db_url = "postgresql://hub:s3cret@db/hub"')


def test_no_database_setting_keeps_sqlite_in_the_state_directory(demo_site, repo):
    c = Config()
    apply_site(c, demo_site, repo / "hub_config" / "site.toml")
    assert c.JupyterHub.db_url == "sqlite:////var/lib/factoryhub/jupyterhub.sqlite"


def test_a_url_without_password_file_is_handed_over_as_written():
    site = site_with('db_url = "postgresql:///factoryhub?host=/var/run/postgresql"')
    assert hub_db_url(site) == "postgresql:///factoryhub?host=/var/run/postgresql"


def _password_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "db-password"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("password", ["plain", "p@ss:w/rd%?#&", "ünï cødé"])
def test_the_password_file_joins_the_url(tmp_path, password):
    path = _password_file(tmp_path, password + "\n", 0o640)
    site = site_with(
        f'db_url = "postgresql://hub@db.example.org:5432/hub"\ndb_password_file = "{path}"'
    )
    url = make_url(hub_db_url(site))
    assert (url.username, url.password, url.host, url.port) == (
        "hub",
        password,
        "db.example.org",
        5432,
    )
    assert url.database == "hub"
    assert password not in repr(url)  # SQLAlchemy hides it wherever it shows the URL


@pytest.mark.parametrize(
    ("text", "mode", "sentence"),
    [
        ("secret\n", 0o644, "readable by every account"),
        ("", 0o600, "is empty"),
        ("\n", 0o600, "is empty"),
        ("one\ntwo\n", 0o600, "more than one line"),
    ],
)
def test_an_unusable_password_file_stops_the_hub_with_a_sentence(tmp_path, text, mode, sentence):
    path = _password_file(tmp_path, text, mode)
    site = site_with(f'db_url = "postgresql://hub@db/hub"\ndb_password_file = "{path}"')
    with pytest.raises(SystemExit, match=sentence) as raised:
        hub_db_url(site)
    assert "secret" not in str(raised.value)


def test_a_missing_password_file_stops_the_hub_with_a_sentence(tmp_path):
    site = site_with(
        f'db_url = "postgresql://hub@db/hub"\ndb_password_file = "{tmp_path / "nope"}"'
    )
    with pytest.raises(SystemExit, match="cannot be read by the hub"):
        hub_db_url(site)


def test_password_of_keeps_spaces_inside_the_line():
    assert password_of(" a b \r\n") == " a b "


def test_the_public_site_never_shows_the_database(tmp_path):
    site = site_with(f'db_url = "postgresql://hub@db/hub"\ndb_password_file = "{tmp_path}/p"')
    public = str(public_site_data(site))
    assert site.hub.db_url and "postgresql" not in public and str(tmp_path) not in public


def _journal_mode(path: Path) -> str:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA journal_mode").fetchone()[0]


def test_the_hubs_sqlite_database_is_put_in_write_ahead_log_mode(tmp_path):
    from factoryhub.spawners.database import write_ahead_log

    db = tmp_path / "jupyterhub.sqlite"
    write_ahead_log(f"sqlite:///{db}")  # the hub's own state directory: made in WAL mode
    assert _journal_mode(db) == "wal"
    write_ahead_log(f"sqlite:///{db}")  # again, at the next start: nothing changes
    assert _journal_mode(db) == "wal"


def test_a_database_the_process_does_not_own_is_left_alone(tmp_path):
    import os

    from factoryhub.spawners.database import write_ahead_log

    theirs = tmp_path / "hub-state"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)  # another account's state directory (root builds a config)
    write_ahead_log(f"sqlite:///{theirs / 'jupyterhub.sqlite'}")
    assert not (theirs / "jupyterhub.sqlite").exists()
    write_ahead_log("postgresql://hub@db.example.org/jupyterhub")  # not SQLite: nothing to do
