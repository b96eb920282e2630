import re

import pytest

from factoryhub.site import SiteError, parse_site

GOOD = """
[session]
partition = "cpu"
environment = "default"
[partitions.cpu]
max_cpus = 8
[environments.default]
label = "Py"
prefix = "/opt/env"
"""


def test_demo_site_describes_a_small_factory(demo_site):
    assert {"cpu", "gpu", "debug"} <= set(demo_site.partitions)
    assert demo_site.partitions["gpu"].max_gpus == 4
    assert demo_site.partitions["gpu"].gpu_types == ("h100",)
    assert demo_site.partitions["debug"].max_walltime == "00:30:00"


def test_minimal_site_takes_defaults():
    site = parse_site(GOOD)
    assert site.partition("cpu").max_cpus == 8
    assert site.hub.hub_port == 8081
    assert site.slurm.command_timeout == 20.0
    assert site.hub.concurrent_spawn_limit == 200


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD + "\n[hub]\nporrt = 1\n", "unknown key hub.porrt"),
        (
            GOOD.replace("max_cpus = 8", "max_cpus = 'eight'"),
            "partitions.cpu.max_cpus: expected int",
        ),
        (GOOD.replace("max_cpus = 8", "max_cpus = true"), "partitions.cpu.max_cpus: expected int"),
        (GOOD.replace('partition = "cpu"', 'partition = "gpu"'), "session.partition 'gpu'"),
        (GOOD + "\n[[demo_accounts]]\nname = 'x'\npassword = 'y'\n", "unknown key demo_accounts"),
        ("[hub\n", "not valid TOML"),
        (GOOD + "\n[hub]\nconcurrent_spawn_limit = -1\n", "hub.concurrent_spawn_limit: a whole"),
    ],
)
def test_bad_sites_name_the_key(text, message):
    with pytest.raises(SiteError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_site(text)


def test_a_partition_kept_for_workshops_is_no_learners_choice(demo_site):
    assert demo_site.partitions["training"].workshops_only
    assert not demo_site.partitions["cpu"].workshops_only  # the default: every learner's
    assert list(demo_site.learner_partitions()) == ["cpu", "gpu", "debug"]
    kept = GOOD + "\n[partitions.training]\nworkshops_only = true\n"
    assert list(parse_site(kept).learner_partitions()) == ["cpu"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("max_cpus = 8", "max_cpus = 8\nworkshops_only = true"),
            "session.partition 'cpu' is kept for workshops (workshops_only)",
        ),
        (
            GOOD.replace("max_cpus = 8", "max_cpus = 8\nworkshops_only = 'yes'"),
            "partitions.cpu.workshops_only: expected bool",
        ),
    ],
)
def test_workshops_only_is_checked(text, message):
    with pytest.raises(SiteError, match=re.escape(message)):
        parse_site(text)


def test_another_hub_has_its_own_tag_ports_and_state(repo):
    import tomllib

    from factoryhub.site import another_hub, site_from_data

    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    site = site_from_data(another_hub(raw, "bench", 28000, "/tmp/bench-state"))
    hub = site.hub
    assert (hub.id, hub.url, hub.proxy_api_port, hub.hub_port, hub.service_port) == (
        "bench",
        "http://127.0.0.1:28000",
        28001,
        28081,
        28082,
    )
    assert hub.state_dir == "/tmp/bench-state" and hub.admin_users == ("admin",)
    assert raw["hub"]["id"] != "bench"  # the original data is left as it was
