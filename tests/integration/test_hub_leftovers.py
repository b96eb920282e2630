"""A start that finds an earlier run's proxy still holding its ports (its pid files gone with
its state directory: a run killed half-way) stops it instead of talking to it: every route the
hub added would otherwise be refused with 403 (CI met this: "JupyterHub not ready after 90 s"
in every later run). A proxy that is not the hub's is refused with a sentence."""

import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest
import tomli_w
from realsite import REPO

from factoryhub.demo.daemons import running_pid
from factoryhub.demo.hubprocess import (
    PROXY_USER,
    HubInstance,
    _proxy_is_ours,
    leftovers,
    start_proxy,
    stop_hub,
    stop_leftovers,
)
from factoryhub.site import another_hub, load_site

pytestmark = pytest.mark.integration


def _instance(port_base: int) -> HubInstance:
    parent = Path("/var/lib/factoryhub-test")
    parent.mkdir(exist_ok=True)
    state = Path(tempfile.mkdtemp(prefix="leftover-", dir=parent))
    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    path = state / "site.toml"
    path.write_text(tomli_w.dumps(another_hub(raw, "leftover", port_base, str(state))))
    return HubInstance(load_site(path), path, REPO / "hub_config" / "jupyterhub_config.py")


def test_an_earlier_runs_proxy_is_found_and_stopped():
    first, second = _instance(18400), _instance(18400)
    try:
        start_proxy(first)
        supervisor = running_pid(first.proxy_pidfile, PROXY_USER)
        assert supervisor
        shutil.rmtree(first.state_dir)  # the earlier run's pid files and token are gone
        second.prepare()
        assert not _proxy_is_ours(second)  # it answers, but not to this hub's token
        assert supervisor in leftovers(second)
        stopped = stop_leftovers(second)
        assert supervisor in stopped and not leftovers(second)
        start_proxy(second)
        assert _proxy_is_ours(second)
    finally:
        stop_hub(second)
        stop_leftovers(second)
        shutil.rmtree(first.state_dir, ignore_errors=True)
        shutil.rmtree(second.state_dir, ignore_errors=True)


def test_a_proxy_that_takes_another_token_is_refused_with_a_sentence():
    first, second = _instance(18410), _instance(18410)
    try:
        start_proxy(first)
        with pytest.raises(RuntimeError, match="refuses this hub's token"):
            start_proxy(second)  # started without looking for leftovers: the check catches it
    finally:
        stop_hub(first)
        stop_hub(second)
        stop_leftovers(second)
        shutil.rmtree(first.state_dir, ignore_errors=True)
        shutil.rmtree(second.state_dir, ignore_errors=True)
