"""FactoryHub's own SQLite files: private from the start, never reached through a link."""

import os
import sqlite3

import pytest

from factoryhub.sqlitefiles import create_private, transaction


def test_a_new_file_is_its_owners_alone_and_an_existing_one_is_kept(tmp_path):
    path = tmp_path / "service.sqlite"
    create_private(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with transaction(path) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("INSERT INTO t VALUES (1)")
    create_private(path)  # the next start: nothing made again, nothing lost
    with transaction(path, rows=True) as db:
        assert [dict(r) for r in db.execute("SELECT x FROM t")] == [{"x": 1}]


def test_a_link_in_its_place_is_refused_and_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    link = tmp_path / "service.sqlite"
    os.symlink(target, link)  # dangling: following it would create the target
    with pytest.raises(OSError, match="not a regular file"):
        create_private(link)
    assert not target.exists()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError, match="not a regular file"):
        create_private(tmp_path / "fifo")


def test_a_use_that_raises_is_rolled_back(tmp_path):
    path = tmp_path / "db.sqlite"
    create_private(path)
    with transaction(path) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(sqlite3.IntegrityError), transaction(path) as db:
        db.execute("INSERT INTO t VALUES (1)")
        raise sqlite3.IntegrityError("half-way")
    with transaction(path) as db:
        assert db.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
