from pathlib import Path

import pytest

from factoryhub.demo.accounting import (
    AccountingError,
    accounting_enabled,
    cluster_name,
    parse_qos_conf,
    plan_associations,
)
from factoryhub.demo.embedded import gpu_device_files, node_names, render_slurm_conf
from factoryhub.site import AccessSettings


def test_layout_from_the_shipped_slurm_conf(repo):
    conf = render_slurm_conf((repo / "deploy/slurm/slurm.conf.in").read_text(), "myhost")
    assert "@HOST@" not in conf and "NodeHostname=myhost" in conf
    assert node_names(conf) == ["cn01", "cn02", "gn01", "gn02", "tn01", "tn02"]
    for partition in ("cpu", "gpu", "debug", "training"):
        assert f"PartitionName={partition} " in conf
    assert "DefMemPerCPU=" in conf  # without it every job takes a whole node
    assert "SlurmdParameters=config_overrides" in conf
    # the workshops' partition: every job there names a reservation
    (training,) = [line for line in conf.splitlines() if line.startswith("PartitionName=training")]
    assert "ReqResv=YES" in training.split()


def test_gpu_device_files_expand_ranges(repo):
    files = gpu_device_files((repo / "deploy/slurm/gres.conf").read_text())
    assert files == [Path(f"/dev/factoryhub-gpu{i}") for i in range(8)]


def test_site_toml_partitions_exist_in_slurm(repo, demo_site):
    conf = (repo / "deploy/slurm/slurm.conf.in").read_text()
    for name in demo_site.partitions:
        assert f"PartitionName={name} " in conf


def test_the_shipped_site_keeps_accounting_in_slurmdbd(repo, demo_site):
    conf = (repo / "deploy/slurm/slurm.conf.in").read_text()
    assert accounting_enabled(conf) and cluster_name(conf) == "factory"
    assert not accounting_enabled(conf.replace("storage/slurmdbd", "storage/none"))
    assert "AccountingStorageEnforce=associations,limits,qos" in conf
    qos = parse_qos_conf((repo / "deploy/slurm/qos.conf").read_text())
    assert set(qos) == set(demo_site.access.qos)  # every QoS site.toml grants exists
    assert "MaxTRESPerJob=gres/gpu=2" in qos["normal"]


@pytest.mark.parametrize(
    "line",
    ["normal MaxWall=1:00:00 ; rm -rf /", "normal Account=root", "Bad MaxWall=1", "x MaxWall="],
)
def test_qos_conf_takes_only_allow_listed_settings(line):
    with pytest.raises(AccountingError, match="not understood"):
        parse_qos_conf(line)


ACCESS = AccessSettings(
    accounts={"training": ("*",), "ai-research": ("alice", "trainer")},
    qos={"normal": ("*",), "long": ("trainer",)},
)


def test_new_users_sharing_a_grant_are_added_in_one_command():
    plan = plan_associations(ACCESS, ["bob", "carol", "alice"], {})
    assert plan == [
        [
            "add",
            "user",
            "name=alice",
            "account=training,ai-research",
            "qos=normal",
            "defaultqos=normal",
            "defaultaccount=training",
        ],
        [
            "add",
            "user",
            "name=bob,carol",
            "account=training",
            "qos=normal",
            "defaultqos=normal",
            "defaultaccount=training",
        ],
    ]


def test_only_what_differs_is_changed_and_nothing_is_removed():
    existing = {
        "alice": {"training": frozenset({"normal"}), "ai-research": frozenset({"normal"})},
        "trainer": {"training": frozenset({"normal"}), "old-project": frozenset({"normal"})},
    }
    defaults = {"alice": "ai-research", "trainer": "training"}
    plan = plan_associations(ACCESS, ["alice", "trainer"], existing, defaults)
    assert plan == [
        [
            "add",
            "user",
            "name=trainer",
            "account=ai-research",
            "qos=normal,long",
            "defaultqos=normal",
        ],
        ["modify", "user", "alice", "set", "defaultaccount=training"],
        ["modify", "user", "where", "user=trainer", "account=training", "set", "qos=normal,long"],
    ]
    assert plan_associations(ACCESS, ["alice"], existing, {"alice": "training"}) == []


@pytest.mark.parametrize("name", ["bob,root", "a=b", "Bob", "x y", ""])
def test_names_that_are_not_slurm_names_are_refused(name):
    with pytest.raises(AccountingError, match="not a user, account or QoS name"):
        plan_associations(ACCESS, [name], {})


def test_learners_see_only_their_own_jobs_but_every_node(repo):
    conf = render_slurm_conf((repo / "deploy/slurm/slurm.conf.in").read_text(), "myhost")
    (line,) = [x for x in conf.splitlines() if x.startswith("PrivateData=")]
    private = set(line.removeprefix("PrivateData=").split(","))
    assert {"jobs", "usage", "users", "accounts"} <= private
    assert not private & {"nodes", "partitions", "reservations"}  # the widgets show capacity


def test_each_qos_caps_the_cpus_one_learner_holds(repo, demo_site):
    qos = parse_qos_conf((repo / "deploy/slurm/qos.conf").read_text())
    caps = {}
    for name, settings in qos.items():
        (per_user,) = [s for s in settings if s.startswith("MaxTRESPerUser=")]
        tres = dict(t.split("=") for t in per_user.removeprefix("MaxTRESPerUser=").split(","))
        caps[name] = int(tres["cpu"])
    cpu_nodes = 2 * 32  # cn01, cn02
    assert caps["normal"] < cpu_nodes and caps["long"] > caps["normal"]
    # one session of the largest size site.toml offers still fits under the cap
    assert demo_site.partitions["cpu"].max_cpus <= caps["normal"]


def test_homes_are_made_private_once(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from factoryhub.demo import accounts

    home = tmp_path / "alice"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    monkeypatch.setattr(accounts.pwd, "getpwnam", lambda name: SimpleNamespace(pw_dir=str(home)))
    assert accounts.ensure_private_home("alice") is True
    assert home.stat().st_mode & 0o777 == 0o700
    assert accounts.ensure_private_home("alice") is False
