"""A pool account's next holder on the real hub (security, I6): the site's pool of training
accounts gives the same Unix account to a learner of one workshop and, once it is purged, to a
learner of the next. Whatever the first learner kept (the hub's login cookie, an API token, a
process left running) must not open the account for them again: on the code before, the cookie
(14 days) and the token let the earlier learner in as the next learner's seat, and a process
that outlived its job (this site's proctrack/linuxproc lets a `setsid -f` child of a job live
on, shown here) survived end and purge as the account the next learner was given."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from realsite import _xsrf
from workshopkit import COURSE, remove_by_hand, unique

pytestmark = pytest.mark.integration

SEAT = "tholder01"


def _cmd(site: Path, *args: str) -> subprocess.CompletedProcess:
    argv = ["/opt/factoryhub/venv/bin/factoryhub", "workshop", "--site", str(site), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture
def holder_site(real_hub, hub_client, tmp_path):
    """The test hub's site.toml with a pool of one training account, made for this test."""
    subprocess.run(["userdel", "--remove", SEAT], capture_output=True, check=False)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", SEAT], check=True)
    hub_client.publish_course(Path(__file__).parents[2] / "notebooks" / COURSE)
    tmp_path.chmod(0o755)
    site = tmp_path / "site.toml"
    raw = tomllib.loads(Path(real_hub.site_path).read_text())
    raw["workshops"] = {"account_pool": [SEAT]}
    site.write_text(tomli_w.dumps(raw))
    names: list[str] = []
    try:
        yield site, names
    finally:
        for name in names:
            remove_by_hand(name)
        subprocess.run(["pkill", "-KILL", "-u", SEAT], capture_output=True, check=False)
        subprocess.run(["userdel", "--remove", SEAT], capture_output=True, check=False)


def _processes() -> list[str]:
    # as `end` counts them: a zombie (reaped by init in its own time) runs nothing and holds nothing
    states = "D,R,S,T,t,W,P,I"
    found = subprocess.run(
        ["pgrep", "-U", SEAT, "--runstates", states], capture_output=True, text=True
    )
    return found.stdout.split()


def _create(site: Path, names: list[str], tag: str) -> str:
    name = unique(tag)
    names.append(name)
    made = _cmd(site, "create", name, "--course", COURSE, "--start", "now", "--end", "now+30min",
                "--seats", "1")  # fmt: skip
    assert made.returncode == 0, made.stderr
    return re.search(r"access code (\S+)", made.stdout).group(1)


def test_the_next_holder_of_a_pool_account_shuts_out_the_earlier_learner(real_hub, holder_site):
    site, names = holder_site
    base = real_hub.site.hub.url
    code = _create(site, names, "h")
    with httpx.Client(base_url=base, timeout=60) as ada:  # her browser: the hub's cookie
        ada.get(f"/hub/workshop/{names[0]}")
        joined = ada.post(
            f"/hub/workshop/{names[0]}", data={"code": code, "name": "Ada", "_xsrf": _xsrf(ada)}
        )
        assert joined.status_code == 302, joined.text
        home = ada.get("/hub/home")
        assert home.status_code == 200 and SEAT in home.text
        token = ada.post(
            f"/hub/api/users/{SEAT}/tokens",
            json={"note": "ada's script"},
            headers={"X-XSRFToken": _xsrf(ada)},
        ).json()["token"]

        left = subprocess.run(  # what a job of hers could leave behind: a process of the seat
            ["runuser", "-u", SEAT, "--", "setsid", "-f", "sleep", "3600"], cwd="/", check=True
        )
        assert left.returncode == 0 and _processes() != []

        for step in (("end", names[0]), ("purge", names[0], "--retention-days", "0")):
            done = _cmd(site, *step)
            assert done.returncode == 0, done.stderr

        assert _processes() == []  # end and purge left no process of the account
        # the next workshop takes the account from the pool; Bob joins on it
        code = _create(site, names, "i")
        with httpx.Client(base_url=base, timeout=60) as bob:
            bob.get(f"/hub/workshop/{names[1]}")
            his = bob.post(
                f"/hub/workshop/{names[1]}",
                data={"code": code, "name": "Bob", "_xsrf": _xsrf(bob)},
                headers={"Accept": "application/json"},
            )
        assert his.status_code == 200 and his.json()["seat"] == SEAT, his.text
        assert his.json()["rejoined"] is False
        mine = httpx.get(
            f"{base}/hub/api/user", headers={"Authorization": f"token {his.json()['token']}"}
        )
        assert mine.status_code == 200 and mine.json()["name"] == SEAT

        # Ada's browser and script no longer open the account
        again = ada.get("/hub/home")
        assert again.status_code == 302 and "/hub/login" in again.headers["location"]
        hers = httpx.get(f"{base}/hub/api/user", headers={"Authorization": f"token {token}"})
        assert hers.status_code in (401, 403), hers.text
