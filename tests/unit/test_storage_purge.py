"""Storage tiers (factoryhub.storage) and the scratch purge (factoryhub.purge): the folders a
site gives, and a purge that deletes old files and never follows a link."""

import os
import time
import tomllib

import pytest

from factoryhub.purge import purge_tier
from factoryhub.site import SiteError, site_from_data
from factoryhub.storage import StorageSettings, StorageTier, project_members, storage_plan

DAY = 86400


def test_the_plan_gives_each_learner_scratch_and_each_project_its_group(demo_site):
    plan = {f.path: f for f in storage_plan(demo_site.storage, ["alice", "bob", "../x"])}
    assert sorted(plan) == [
        "/project/ai-research",
        "/project/training",
        "/scratch/alice",
        "/scratch/bob",
    ]
    assert (plan["/scratch/alice"].owner, plan["/scratch/alice"].mode) == ("alice", 0o700)
    project = plan["/project/ai-research"]
    assert (project.owner, project.group, project.mode) == ("root", "fh-ai-research", 0o2770)
    assert project.quota_mb == 200 and plan["/scratch/bob"].quota_mb == 100


def test_project_members_come_from_the_slurm_account(demo_site):
    accounts = demo_site.access.accounts
    assert project_members("ai-research", accounts, ["carol"]) == ["alice", "bob", "trainer"]
    assert project_members("training", accounts, ["carol", "alice"]) == ["alice", "carol"]


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        ({"scratch": {"path": "scratch"}}, "storage.scratch.path"),
        ({"scratch": {"path": "/s", "quota_mb": -1}}, "0 or more"),
        ({"embedded_images": "", "scratch": {"path": "/s", "size_mb": 10}}, "embedded_images"),
        ({"projects": {"Bad Name": "g"}}, "storage.projects"),
    ],
)
def test_bad_storage_settings_are_refused(repo, storage, message):
    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["storage"] = {**raw["storage"], **storage}
    with pytest.raises(SiteError, match=message):
        site_from_data(raw)


def _old(path, days: float, now: float) -> None:
    os.utime(path, (now - days * DAY,) * 2, follow_symlinks=False)


def test_the_purge_deletes_old_files_and_follows_no_link(tmp_path):
    now = time.time()
    tier, outside = tmp_path / "scratch", tmp_path / "outside"
    (tier / "alice" / "run").mkdir(parents=True)
    outside.mkdir()
    (outside / "precious").write_text("not alice's")
    _old(outside / "precious", 30, now)
    old, new = tier / "alice" / "run" / "old.bin", tier / "alice" / "new.bin"
    old.write_text("old")
    new.write_text("new")
    _old(old, 15, now)
    (tier / "alice" / "to-dir").symlink_to(outside)
    (tier / "alice" / "to-file").symlink_to(outside / "precious")
    (tier / "alice" / "fresh-link").symlink_to(outside / "precious")
    _old(tier / "alice" / "to-dir", 30, now)
    _old(tier / "alice" / "to-file", 30, now)
    (tier / "link-at-top").symlink_to(outside)  # a top-level link is no learner's folder

    report = purge_tier(str(tier), 14, now)

    assert not old.exists() and new.read_text() == "new"
    assert not os.path.lexists(tier / "alice" / "to-dir")
    assert not os.path.lexists(tier / "alice" / "to-file")
    assert os.path.islink(tier / "alice" / "fresh-link")
    assert (outside / "precious").read_text() == "not alice's"
    assert os.path.islink(tier / "link-at-top")
    assert sorted(report.deleted) == sorted(
        f"{tier}/alice/{p}" for p in ("run/old.bin", "to-dir", "to-file")
    )
    assert report.bytes == 3


def test_a_purge_of_a_tier_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "scratch").symlink_to(tmp_path / "real")
    with pytest.raises(OSError):
        purge_tier(str(tmp_path / "scratch"), 14, time.time())


def test_the_tier_model_defaults_describe_no_quota():
    storage = StorageSettings()
    assert storage.home == StorageTier(path="/home") and storage_plan(storage, ["a"]) == []


def test_a_fresh_machine_gets_the_login_group_and_its_members_are_left_alone(
    demo_site, monkeypatch
):
    """`slurm start` on a machine with no learner yet: the open project's folder is the
    login group's, which did not exist (a KeyError stopped `make test` before this)."""
    from factoryhub.demo import storage

    made: list[list[str]] = []

    def no_group(name):
        raise KeyError(name)

    monkeypatch.setattr(storage.grp, "getgrnam", no_group)
    monkeypatch.setattr(storage, "_run", made.append)
    monkeypatch.setattr(storage, "_user_exists", lambda user: True)
    storage.ensure_project_groups(demo_site, ["alice"])
    login = demo_site.hub.allowed_group
    assert ["groupadd", login] in made
    assert not any(argv[0] == "usermod" and argv[-2] == login for argv in made)
    assert all(argv[0] in ("groupadd", "usermod") for argv in made)
