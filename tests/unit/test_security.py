import re
from pathlib import Path

import pytest
from packaging.version import Version
from traitlets.config import Config

from factoryhub import security
from factoryhub.security import NPM_FLOORS, PYTHON_FLOORS, below_floor, check_floors
from factoryhub.spawners.hubconfig import apply_site

NODE_PREFIX = Path("/opt/factoryhub/node")


def test_installed_versions_meet_every_security_floor():
    assert check_floors(NODE_PREFIX) == []


def test_a_package_below_its_floor_is_named_with_its_advisory():
    problems = below_floor({"jupyterhub": "4.1.5"}, PYTHON_FLOORS)
    assert any("jupyterhub 4.1.5 is below 5.5.1" in p and "GHSA" in p for p in problems)
    assert any("distributed is not installed" in p for p in problems)
    assert below_floor({"configurable-http-proxy": "4.5.0"}, NPM_FLOORS)
    assert not below_floor({"configurable-http-proxy": "5.3.0"}, NPM_FLOORS)


def test_every_exposed_package_has_a_floor_named_by_its_advisory():
    floors = {**PYTHON_FLOORS, **NPM_FLOORS}
    exposed = {
        "jupyterhub",
        "jupyter-server",
        "jupyter-server-proxy",
        "jupyterlab",
        "tornado",
        "configurable-http-proxy",
    }
    assert exposed <= set(floors)
    for name, (_floor, advisories) in floors.items():
        assert re.search(r"(GHSA(-[0-9a-z]{4}){3}|CVE-\d{4}-\d+)", advisories), name
    # jupyter-server's newest advisory (Referer logged with tokens) was fixed in 2.21.0
    assert Version(PYTHON_FLOORS["jupyter-server"][0]) >= Version("2.21.0")


def test_the_hub_refuses_to_load_its_config_below_a_floor(monkeypatch, demo_site, repo):
    monkeypatch.setattr(security, "installed_python", lambda: {"jupyter-server": "2.20.0"})
    with pytest.raises(SystemExit) as refused:
        apply_site(Config(), demo_site, repo / "hub_config" / "site.toml")
    assert "jupyter-server 2.20.0 is below 2.21.0" in str(refused.value)
    assert "GHSA-c3mw-737p-c7g2" in str(refused.value)
