"""`factoryhub site check` against the real embedded cluster: the demo's own site file (with a
state and catalogue directory made right for it) has nothing to say; each deliberately broken
copy is found, one sentence each, with exit status 2."""

import os
import shutil
import socket
import subprocess
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from realsite import FACTORYHUB, REPO

from factoryhub.demo.accounting import ensure_associations
from factoryhub.site import load_site

pytestmark = pytest.mark.integration


@pytest.fixture
def folders():
    base = Path(tempfile.mkdtemp(prefix="fh-sitecheck-"))
    base.chmod(0o755)
    state, catalogue = base / "state", base / "catalogue"
    state.mkdir(mode=0o700)
    shutil.chown(state, "factoryhub")
    catalogue.mkdir(mode=0o755)
    yield state, catalogue
    shutil.rmtree(base)


def _check(tmp_path: Path, raw: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return subprocess.run(
        [FACTORYHUB, "site", "check", "--site", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )


def _demo(state: Path, catalogue: Path) -> dict:
    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    raw["hub"].update(state_dir=str(state), catalogue_dir=str(catalogue))
    return raw


def test_the_demo_site_agrees_with_its_cluster(tmp_path, folders):
    raw = _demo(*folders)
    ensure_associations(load_site(REPO / "hub_config" / "site.toml").access, [])
    done = _check(tmp_path, raw)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing found" in done.stdout


BROKEN = [
    (
        lambda raw: raw["partitions"].update(
            a100={"label": "A100", "max_walltime": "01:00:00", "max_cpus": 1, "max_memory_gb": 1}
        ),
        "partition 'a100' of site.toml is not a Slurm partition"
        " (Slurm has: cpu, debug, gpu, training)",
    ),
    (
        lambda raw: raw["partitions"]["gpu"].update(gpu_types=["a100"]),
        "partitions.gpu.gpu_types names 'a100', a GPU type no node of gpu has",
    ),
    (
        lambda raw: raw["partitions"]["debug"].update(max_walltime="02:00:00"),
        "partitions.debug.max_walltime = 02:00:00 is above Slurm's MaxTime for debug",
    ),
    (
        lambda raw: raw["partitions"]["cpu"].update(max_cpus=128),
        "partitions.cpu.max_cpus = 128 is more than any node of cpu has (32 CPUs)",
    ),
    (
        lambda raw: raw["access"]["accounts"].update({"no-such-project": ["*"]}),
        "[access] grants the account 'no-such-project', which the accounting database does not"
        " have",
    ),
]


@pytest.mark.parametrize(("breaks", "sentence"), BROKEN)
def test_each_broken_site_file_is_found(tmp_path, folders, breaks, sentence):
    raw = _demo(*folders)
    breaks(raw)
    done = _check(tmp_path, raw)
    assert done.returncode == 2, done.stdout + done.stderr
    assert sentence in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_state_directory_others_can_read_is_found(tmp_path, folders):
    state, catalogue = folders
    os.chmod(state, 0o755)  # noqa: S103 - the mistake the check must find
    done = _check(tmp_path, _demo(state, catalogue))
    assert done.returncode == 2
    assert f"[hub] state_dir {state} (the hub's database and tokens) has mode 0755" in done.stdout


def test_a_site_file_that_cannot_be_read_is_one_sentence(tmp_path):
    done = _check(tmp_path, {"hub": {"porrt": 1}})
    assert done.returncode == 3
    assert done.stdout.startswith("error: cannot read the site file: unknown key hub.porrt")
    assert "Traceback" not in done.stdout + done.stderr


# --- --from-nodes: a probe job on each partition tries to reach the running test hub ---


def _from_nodes(site_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            FACTORYHUB,
            "site",
            "check",
            "--site",
            str(site_path),
            "--from-nodes",
            "--as",
            "tlearner1",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd="/",
    )


def test_nodes_reach_the_running_hub(real_hub):
    done = _from_nodes(real_hub.site_path)
    assert "Traceback" not in done.stdout + done.stderr
    for partition in ("cpu", "gpu", "debug"):  # each probe ran and reached everything
        assert f"could not check partition {partition} " not in done.stdout, done.stdout
    assert "from a node of partition" not in done.stdout, done.stdout
    assert "is not reachable" not in done.stdout
    (reached,) = [line for line in done.stdout.splitlines() if line.endswith(" reachable")]
    for partition, node in (("cpu", "cn0"), ("gpu", "gn0"), ("debug", "cn0")):
        assert f"{partition} ({node}" in reached, done.stdout
    assert ": 127.0.0.1:18081 and 127.0.0.1:18000 reachable" in reached


def test_a_hub_port_nothing_listens_on_is_found_from_every_node(real_hub, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as unused:  # a port, free once closed
        port = unused.getsockname()[1]
    raw = tomllib.loads(real_hub.site_path.read_text())
    raw["hub"]["hub_port"] = port
    site_path = tmp_path / "site.toml"
    site_path.write_text(tomli_w.dumps(raw))
    done = _from_nodes(site_path)
    assert done.returncode == 2, done.stdout + done.stderr
    for partition, nodes in (("cpu", "cn0"), ("gpu", "gn0")):
        assert (
            f"from a node of partition {partition} ({nodes}"  # cn01 or cn02: whichever ran it
            in done.stdout
        ), done.stdout
    assert (
        f"), the hub's API at 127.0.0.1:{port} is not reachable: connection refused (nothing"
        " listens there): its sessions can never report to the hub" in done.stdout
    )
    assert "the hub's public address" not in done.stdout  # the proxy still answers
