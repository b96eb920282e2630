"""Shared data sets: who may read one, the notebooks' loader, the session's ~/datasets links
(never replacing the learner's own), and the demo's root set-up, which follows no link."""

import json
import logging
import os
from dataclasses import replace

import pytest

from factoryhub import datasets
from factoryhub.datasets import DatasetError, datasets_for, may_read
from factoryhub.demo.datasets import DatasetSetupError, open_folder, write_file
from factoryhub.session.services import link_datasets
from factoryhub.site import SITE_ENV, Dataset, public_site_data

log = logging.getLogger("test")


def test_a_set_is_open_to_its_groups_only(demo_site):
    digits = demo_site.datasets["digits"]
    assert may_read(digits, ("alice", "fh-digits")) and not may_read(digits, ("carol",))
    (view,) = datasets_for(demo_site, ("carol",))
    assert view.name == "digits" and not view.allowed


def _env(site, folder):
    site = replace(
        site,
        datasets={
            "digits": Dataset(str(folder), groups=("root",)),
            "secret": Dataset("/x", groups=("nobody-group",)),
        },
    )
    return {SITE_ENV: json.dumps(public_site_data(site))}


def test_the_loader_finds_the_folder_or_says_why_not(demo_site, tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "my_groups", lambda: ("root",))
    env = _env(demo_site, tmp_path)
    assert datasets.path("digits", env) == tmp_path
    assert datasets.available(env) == ["digits"]
    with pytest.raises(DatasetError, match="open to the groups nobody-group only"):
        datasets.path("secret", env)
    with pytest.raises(DatasetError, match="no data set 'mnist' on this site"):
        datasets.path("mnist", env)
    with pytest.raises(DatasetError, match="inside a FactoryHub session"):
        datasets.path("digits", {})


def test_the_session_links_allowed_sets_and_leaves_the_learners_files(demo_site, tmp_path):
    site = replace(
        demo_site,
        datasets={
            "digits": Dataset("/srv/d", groups=("g",)),
            "mine": Dataset("/srv/m", groups=("g",)),
            "other": Dataset("/srv/o", groups=("h",)),
        },
    )
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mine").write_text("the learner's own file")
    assert link_datasets(site, tmp_path, ("g",), log) == ["digits"]
    assert os.readlink(tmp_path / "datasets" / "digits") == "/srv/d"
    assert (tmp_path / "datasets" / "mine").read_text() == "the learner's own file"
    assert not (tmp_path / "datasets" / "other").exists()
    assert link_datasets(site, tmp_path, ("g",), log) == []  # already there


def test_the_demo_setup_refuses_a_link_on_the_way(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "srv").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DatasetSetupError, match="srv: not a folder root may use"):
        open_folder(str(tmp_path / "srv" / "datasets" / "digits"), start=str(tmp_path))
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_demo_setup_writes_no_file_through_a_link(tmp_path):
    target = tmp_path / "target"
    target.write_text("root's file")
    fd = open_folder(str(tmp_path / "d"), start=str(tmp_path))
    try:
        (tmp_path / "d" / "digits.csv.gz").symlink_to(target)
        with pytest.raises(DatasetSetupError, match="not a file root may write"):
            write_file(fd, "digits.csv.gz", b"data", 0)
        write_file(fd, "README.rst", b"hello", 0)
    finally:
        os.close(fd)
    assert target.read_text() == "root's file"
    assert (tmp_path / "d" / "README.rst").stat().st_mode & 0o777 == 0o640
