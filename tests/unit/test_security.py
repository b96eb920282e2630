from pathlib import Path

from factoryhub.security import NPM_FLOORS, PYTHON_FLOORS, below_floor, check_floors

NODE_PREFIX = Path("/opt/factoryhub/node")


def test_installed_versions_meet_every_security_floor():
    assert check_floors(NODE_PREFIX) == []


def test_a_package_below_its_floor_is_named_with_its_advisory():
    problems = below_floor({"jupyterhub": "4.1.5"}, PYTHON_FLOORS)
    assert any("jupyterhub 4.1.5 is below 5.5.1" in p and "GHSA" in p for p in problems)
    assert any("distributed is not installed" in p for p in problems)
    assert below_floor({"configurable-http-proxy": "4.5.0"}, NPM_FLOORS)
    assert not below_floor({"configurable-http-proxy": "5.3.0"}, NPM_FLOORS)
