from pathlib import Path

from factoryhub.embedded import gpu_device_files, node_names, render_slurm_conf


def test_layout_from_the_shipped_slurm_conf(repo):
    conf = render_slurm_conf((repo / "deploy/slurm/slurm.conf.in").read_text(), "myhost")
    assert "@HOST@" not in conf and "NodeHostname=myhost" in conf
    assert node_names(conf) == ["cn01", "cn02", "gn01", "gn02"]
    for partition in ("cpu", "gpu", "debug"):
        assert f"PartitionName={partition} " in conf
    assert "DefMemPerCPU=" in conf  # without it every job takes a whole node
    assert "SlurmdParameters=config_overrides" in conf


def test_gpu_device_files_expand_ranges(repo):
    files = gpu_device_files((repo / "deploy/slurm/gres.conf").read_text())
    assert files == [Path(f"/dev/factoryhub-gpu{i}") for i in range(8)]


def test_site_toml_partitions_exist_in_slurm(repo, demo_site):
    conf = (repo / "deploy/slurm/slurm.conf.in").read_text()
    for name in demo_site.partitions:
        assert f"PartitionName={name} " in conf
