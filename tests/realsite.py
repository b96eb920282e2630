"""The real site for integration, browser and fault tests: the embedded Slurm, and a hub + proxy
of their own (ports 18000/18001/18081, a temporary state directory, hub id "test") with accounts
of their own, so a running demo, its learners and their homes are left alone. Nothing here is
faked: logins go through PAM, sessions are Slurm jobs.

The tests' accounts stand in for the demo's (`STANDS_IN_FOR`): the test site gives each the
hub role, Slurm accounts and QoS its demo counterpart has. Each run starts them with homes as
new (no workspace, notebook or log of an earlier run) and a password of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import tomli_w
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.demo.daemons import running_pid
from factoryhub.demo.datasets import ensure_datasets, load_members
from factoryhub.demo.embedded import ensure_slurm
from factoryhub.demo.hubprocess import HubInstance, start_hub, stop_hub
from factoryhub.site import Site, another_hub, load_site

REPO = Path(__file__).resolve().parent.parent
# test account -> the demo account whose role, Slurm accounts and QoS it has on the test site
STANDS_IN_FOR = {
    "tlearner1": "alice",
    "tlearner2": "bob",
    "tlearner3": "carol",
    "ttrainer": "trainer",
    "tadmin": "admin",
}
TEST_ACCOUNTS = tuple(STANDS_IN_FOR)
# Logins through PAM: one password per run (tests of their own accounts add theirs here).
PASSWORDS = {name: secrets.token_urlsafe(18) for name in TEST_ACCOUNTS}


FACTORYHUB = "/opt/factoryhub/venv/bin/factoryhub"
SMTP_PORT = 18025  # the test SMTP server (aiosmtpd) support requests are delivered to
SUPPORT_ADDRESS = "support@test.invalid"
TEST_CATALOGUE = Path("/srv/factoryhub-test/catalogue")  # readable by the learners' sessions


def slow_environment() -> Path:
    """A Python prefix whose `jupyterhub-singleuser` sleeps 15 s before it starts the real one."""
    prefix = Path("/srv/factoryhub-test/slow-env")
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("python", "jupyterhub-singleuser"):
        script = prefix / "bin" / name
        real = f"/opt/factoryhub/venv/bin/{name}"
        delay = "sleep 15\n" if name == "jupyterhub-singleuser" else ""
        script.write_text(f'#!/bin/bash\n{delay}exec {real} "$@"\n')
        script.chmod(0o755)
    return prefix


def liar_environment() -> Path:
    """A Python prefix whose `jupyterhub-singleuser` serves nothing and reports the test hub's
    own API port as its session's: a learner pointing their route at another service."""
    prefix = Path("/srv/factoryhub-test/liar-env")
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    script = prefix / "bin" / "jupyterhub-singleuser"
    script.write_text(
        "#!/bin/bash\n"
        'scontrol update jobid="$SLURM_JOB_ID" comment=fhport:18081\n'
        'echo "port reported" >&"${FACTORYHUB_READY_FD:-2}"\n'
        "exec sleep 300\n"
    )
    script.chmod(0o755)
    return prefix


def stubborn_environment() -> Path:
    """A Python prefix whose `jupyterhub-singleuser` ignores SIGTERM and never starts: only
    Slurm's SIGKILL ends it (a server whose shutdown hangs, as one did in CI)."""
    prefix = Path("/srv/factoryhub-test/stubborn-env")
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    script = prefix / "bin" / "jupyterhub-singleuser"
    script.write_text("#!/bin/bash\ntrap '' TERM\nexec sleep 271\n")  # 271: findable
    script.chmod(0o755)
    return prefix


def as_test_accounts(raw: dict) -> dict:
    """site.toml data with the tests' accounts where the demo's are named (hub admins and
    trainers, [access] accounts and QoS), and no demo accounts or passwords (pure)."""
    test_name = {demo: test for test, demo in STANDS_IN_FOR.items()}

    def renamed(names: list[str]) -> list[str]:
        return [test_name.get(name, name) for name in names]

    hub = dict(raw.get("hub", {}))
    for key in ("admin_users", "trainers"):
        if key in hub:
            hub[key] = renamed(hub[key])
    access = {
        table: {name: renamed(users) for name, users in grants.items()}
        for table, grants in raw.get("access", {}).items()
    }
    return {**raw, "hub": hub, "access": access}


SITE_NOTE = "This is the test site: its sessions end with the tests."


def site_templates(state_dir: Path) -> Path:
    """The test site's template directory (site.toml `[hub] template_dirs`): a spawn form that
    extends FactoryHub's and adds a note (tests/browser/test_site_pages.py looks for it)."""
    folder = state_dir / "site-templates"
    folder.mkdir(exist_ok=True)
    (folder / "form.html").write_text(
        '{% extends "factoryhub/form.html" %}\n'
        f'{{% block intro %}}<p id="site-note">{SITE_NOTE}</p>{{% endblock intro %}}\n'
    )
    return folder


def write_test_site(
    state_dir: Path, hub_id: str = "test", port_base: int = 18000, **hub: str
) -> Path:
    """The demo site with the test hub's ports, state directory, accounts and a fast poll;
    `hub_id`, `port_base` and `[hub]` settings for a second test hub (test_postgres.py)."""
    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    raw = as_test_accounts(another_hub(raw, hub_id, port_base, str(state_dir)))
    raw["hub"].update(hub)
    raw["hub"]["catalogue_dir"] = str(TEST_CATALOGUE)
    raw["slurm"]["poll_interval"] = 2.0
    raw["slurm"]["command_timeout"] = 5.0  # a frozen controller is noticed quickly (F7)
    raw["slurm"].update(sweep_interval=3.0, orphan_grace=5.0)  # orphans found within seconds
    # The idle culler looks every 5 s; its thresholds stay the site's (hours) unless a test
    # of culling shortens them in this file for its own sessions (tests/integration/test_culling)
    raw["culling"]["every_seconds"] = 5
    # Accounts, QoS and budgets read again every 5 s, not every minute: a grant or budget a
    # test makes shows in the hub within seconds (tests/integration/test_budget.py)
    raw.setdefault("limits", {})["accounting_refresh_seconds"] = 5
    # An environment without a server in it: its jobs die before reporting a port (F14).
    raw["environments"]["broken"] = {"label": "Broken (tests)", "prefix": "/opt/no-such-env"}
    # One whose server takes 15 s to start: a job that runs before its port is known (F2).
    raw["environments"]["slow"] = {"label": "Slow (tests)", "prefix": str(slow_environment())}
    # One whose server ignores SIGTERM and never reports a port (test_spawn.py).
    raw["environments"]["stubborn"] = {
        "label": "Stubborn (tests)",
        "prefix": str(stubborn_environment()),
    }
    # One that points its session's route at another service of the node (the hub's API).
    raw["environments"]["liar"] = {"label": "Liar (tests)", "prefix": str(liar_environment())}
    # Support requests go to the tests' own SMTP server (tests/integration/test_support.py).
    raw["support"] = {
        **raw.get("support", {}),
        **{"host": "127.0.0.1", "port": SMTP_PORT, "mail_to": SUPPORT_ADDRESS},
    }
    # The site's own templates, before FactoryHub's: a note in the spawn form.
    raw["hub"]["template_dirs"] = [str(site_templates(state_dir))]
    path = state_dir / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def start_test_hub(state_dir: Path, **site: str | int) -> HubInstance:
    """A test hub (`site`: `write_test_site`'s settings) with its proxy, its service routed."""
    ensure_slurm(REPO / "deploy")
    cancel_test_jobs()  # anything an interrupted run left
    shutil.rmtree(TEST_CATALOGUE, ignore_errors=True)  # each run publishes its own courses
    site_path = write_test_site(state_dir, **site)
    hub = HubInstance(load_site(site_path), site_path, REPO / "hub_config" / "jupyterhub_config.py")
    ensure_test_accounts(hub.site)
    try:
        start_hub(hub)
        client = HubClient(hub)
        wait_until(lambda: "/services/factoryhub" in client.routes(), 30, "estimate service routed")
    except BaseException:
        stop_hub(hub)  # a start that failed leaves no proxy or hub for the next run to meet
        raise
    return hub


def ensure_test_accounts(site: Site) -> None:
    """The tests' accounts, with `ensure_accounts` as the demo's are made, homes as new."""
    for name in TEST_ACCOUNTS:
        renew_home(name)
    accounts = tuple(DemoAccount(name, PASSWORDS[name]) for name in TEST_ACCOUNTS)
    ensure_accounts(accounts, site.hub.allowed_group, site.access)
    # the data sets' groups, with the test accounts standing in for the demo's members
    demo_members = load_members(REPO / "hub_config" / "demo-datasets.toml")
    test_name = {demo: test for test, demo in STANDS_IN_FOR.items()}
    members = {
        g: [test_name[u] for u in users if u in test_name] for g, users in demo_members.items()
    }
    ensure_datasets(site, members)


def renew_home(user: str) -> None:
    """A test account's home as a new account's (a copy of /etc/skel): no JupyterLab workspace,
    notebook, course copy or log an earlier run left. Only ever the tests' own accounts."""
    if user not in TEST_ACCOUNTS:
        raise ValueError(f"{user!r} is not one of the tests' accounts")
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return  # `ensure_accounts` makes it, with a new home
    home = Path(account.pw_dir)
    if home.parent != Path("/home") or home.name != user:
        raise ValueError(f"{user}'s home {home} is not /home/{user}: left alone")
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree("/etc/skel", home, symlinks=True, dirs_exist_ok=True)
    for path in [home, *home.rglob("*")]:
        os.lchown(path, account.pw_uid, account.pw_gid)
    home.chmod(0o700)


def cancel_test_jobs() -> None:
    """Cancel the test hub's sessions (any user's) and every job of the tests' accounts."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True).stdout
    ids = [line.split()[0] for line in out.splitlines() if " fh:test:" in line]
    if ids:
        subprocess.run(["scancel", *ids], check=False)
    for name in TEST_ACCOUNTS:  # scancel takes one --user at a time ("a,b" is refused)
        if _exists(name):
            subprocess.run(["scancel", f"--user={name}"], check=False)


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def stop_everything(hub: HubInstance, timeout: float = 60) -> None:
    """Every server of the test hub stopped (the hub restarted first if a test left it dead)
    and the tests' jobs cancelled: what a failed test leaves behind."""
    if not running_pid(hub.hub_pidfile):
        start_hub(hub)
    client = HubClient(hub)
    admin = client.login_token("tadmin")
    with client.api(admin) as api:
        users = api.get("/users", params={"state": "active"}).json()
        for user in users:
            for server in user.get("servers", {}):
                name = user["name"]
                if server:  # removed too: stopped named servers count against the limit
                    api.request("DELETE", f"/users/{name}/servers/{server}", json={"remove": True})
                else:
                    api.delete(f"/users/{name}/server")
    wait_until(
        lambda: all(
            client.server(user["name"], admin, server) is None
            for user in users
            for server in user.get("servers", {})
        ),
        timeout,
        "every server of the test hub stopped",
    )
    cancel_test_jobs()


def job_id_in(events: list[dict]) -> str:
    """The Slurm job id a spawn's progress events name ("… Slurm job N")."""
    for event in events:
        match = re.search(r"Slurm job (\d+)", event.get("message", ""))
        if match:
            return match.group(1)
    raise AssertionError(f"no job id in {[e.get('message') for e in events]}")


def squeue_row(job_id: str) -> dict[str, str]:
    """State, user, name, GPUs, reason, QoS and account of a job as root sees it ({} once
    Slurm forgot it)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%u|%b|%r|%q|%a|%j"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not out:
        return {}
    state, user, gres, reason, qos, account, name = out.split("|", 6)
    return {
        **{"state": state, "user": user, "name": name, "gres": gres, "reason": reason},
        **{"qos": qos, "account": account},
    }


class HubClient:
    """What a learner does with the hub, over HTTP, through the proxy."""

    def __init__(self, hub: HubInstance) -> None:
        self.hub = hub
        self.base = hub.site.hub.url

    @contextlib.contextmanager
    def _logged_in(self, user: str) -> Iterator[httpx.Client]:
        """A browser-like client logged in through the real login form (PAM)."""
        with httpx.Client(base_url=self.base, follow_redirects=True, timeout=60) as web:
            web.get("/hub/login")
            xsrf = _xsrf(web)
            r = web.post(
                "/hub/login", data={"username": user, "password": PASSWORDS[user], "_xsrf": xsrf}
            )
            assert r.status_code == 200 and "/hub/login" not in str(r.url), r.text[:300]
            yield web

    def login_token(self, user: str) -> str:
        """Log in through the real login form (PAM) and create an API token."""
        with self._logged_in(user) as web:
            r = web.post(
                f"/hub/api/users/{user}/tokens",
                json={"note": "test"},
                headers={"X-XSRFToken": _xsrf(web)},
            )
            assert r.status_code == 201, r.text
            return r.json()["token"]

    def spawn_page(self, user: str) -> str:
        """The spawn form's HTML as the learner's browser gets it."""
        with self._logged_in(user) as web:
            r = web.get(f"/hub/spawn/{user}")
        assert r.status_code == 200, r.text[:300]
        return r.text

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.base}/hub/api", headers={"Authorization": f"token {token}"}, timeout=60
        )

    def start(
        self,
        user: str,
        token: str,
        name: str = "",
        options: dict | None = None,
        timeout: float = 120,
    ) -> list[dict]:
        """Request a server, follow the progress stream until ready; return the events."""
        events = self.start_events(user, token, name, options, timeout)
        assert events and events[-1].get("ready"), events
        return events

    def start_events(
        self,
        user: str,
        token: str,
        name: str = "",
        options: dict | None = None,
        timeout: float = 120,
    ) -> list[dict]:
        """Request a server and return every progress event until the spawn ends."""
        path = f"/users/{user}/servers/{name}" if name else f"/users/{user}/server"
        with self.api(token) as api:
            r = api.post(path, json={"user_options": options or {}})
            if r.status_code == 500 and r.json().get("message"):
                # the spawn failed before the hub's slow-spawn timeout: the reply says why
                return [{"failed": True, "message": r.json()["message"]}]
            assert r.status_code in (201, 202), r.text
            events = []
            with api.stream("GET", f"{path}/progress", timeout=timeout) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
            return events

    def server(self, user: str, token: str, name: str = "") -> dict | None:
        with self.api(token) as api:
            return api.get(f"/users/{user}").json()["servers"].get(name)

    def remove_named_servers(self, user: str, token: str, timeout: float = 60) -> None:
        """Every named server of `user` removed, stopped ones too: visiting a spawn page makes
        one, and JupyterHub counts them all against named_server_limit_per_user."""

        def names() -> list[str]:
            with self.api(token) as api:
                model = api.get(f"/users/{user}", params={"include_stopped_servers": "1"}).json()
            return [name for name in model.get("servers", {}) if name]

        with self.api(token) as api:
            for name in names():
                api.request("DELETE", f"/users/{user}/servers/{name}", json={"remove": True})
        wait_until(lambda: not names(), timeout, f"{user}'s named servers removed")

    def stop(self, user: str, token: str, name: str = "", timeout: float = 60) -> None:
        """Stop the server; a named one is removed too (JupyterHub counts stopped named servers
        against named_server_limit_per_user, and the test accounts live for the whole run)."""
        with self.api(token) as api:
            if name:
                r = api.request("DELETE", f"/users/{user}/servers/{name}", json={"remove": True})
            else:
                r = api.delete(f"/users/{user}/server")
            assert r.status_code in (202, 204), r.text
        wait_until(lambda: self.server(user, token, name) is None, timeout, "server stopped")

    def publish_course(self, folder: Path) -> None:
        """Publish a course into this hub's catalogue with the trainer's command line."""
        done = subprocess.run(
            [FACTORYHUB, "course", "publish", str(folder), "--site", str(self.hub.site_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def job_of(self, user: str, server: str = "") -> str:
        """The id of the live job carrying `user`'s server on this hub (by its job name)."""
        return job_of(user, server, self.hub.site.hub.id)

    def routes(self) -> dict:
        api = f"http://127.0.0.1:{self.hub.site.hub.proxy_api_port}/api/routes"
        token = self.hub.proxy_token()
        return httpx.get(api, headers={"Authorization": f"token {token}"}).json()


def _xsrf(web: httpx.Client) -> str:
    """The hub's XSRF cookie (JupyterHub may set it for both / and /hub/)."""
    cookies = sorted(
        (c for c in web.cookies.jar if c.name == "_xsrf"), key=lambda c: c.path != "/hub/"
    )
    return cookies[0].value


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


async def run_in_kernel(base: str, prefix: str, token: str, code: str, timeout: float = 60) -> str:
    """Start a kernel in the learner's server (through the proxy), run `code`, return stdout."""
    async with kernel_in(base, prefix, token) as execute:
        return await execute(code, timeout)


@contextlib.asynccontextmanager
async def kernel_in(base: str, prefix: str, token: str):
    """A kernel in the learner's server; yields `execute(code, timeout) -> stdout`. The kernel
    is deleted at the end (a kernel the test killed already is simply gone)."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=f"{base}{prefix}api", headers=headers, timeout=60) as api:
        r = await api.post("/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        url = f"{base.replace('http', 'ws', 1)}{prefix}api/kernels/{kernel}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers=headers))

        async def execute(code: str, timeout: float = 60) -> str:
            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps(_execute_request(msg_id, code)))
            return await asyncio.wait_for(_collect_stdout(ws, msg_id), timeout)

        try:
            yield execute
        finally:
            ws.close()
            await api.delete(f"/kernels/{kernel}")


def _execute_request(msg_id: str, code: str) -> dict:
    return {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "test",
            "session": uuid.uuid4().hex,
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
    }


async def _collect_stdout(ws, msg_id: str) -> str:
    out = []
    while True:
        raw = await ws.read_message()
        assert raw is not None, "kernel websocket closed"
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            out.append(msg["content"]["text"])
        elif kind == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


_LEFT = re.compile(r"You have ([\d.]+) (GPU|CPU)-hours left on ([\w.-]+)")


def hours_left(text: str) -> dict[tuple[str, str], float]:
    """{("training", "GPU"): 9999.4, …}: every "You have … hours left on …" sentence in `text`."""
    return {(m[3], m[2]): float(m[1]) for m in _LEFT.finditer(text)}


def budget_reading(base: str, token: str) -> dict[tuple[str, str], float]:
    """What the hub service's budget API says is left of each of the token's accounts."""
    answer = httpx.get(
        f"{base}/services/factoryhub/api/budget",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return hours_left(" ".join(line for a in answer.json()["accounts"] for line in a["lines"]))


def assert_between_readings(shown: dict, before: dict, after: dict) -> None:
    """`shown` is a budget reading of the service made between `before` and `after`: the same
    accounts, and each figure between theirs. Usage only grows on this site (no decay; Slurm adds
    running jobs' usage each minute, and the service renews its reading every 5 s), so two
    readings moments apart may differ, and a reading between them lies between them (CI failed
    when the tests compared with a reading made later: 999.9 shown, 998.9 by then)."""
    assert shown and shown.keys() == before.keys() == after.keys(), (shown, before, after)
    for key, left in shown.items():
        assert after[key] <= left <= before[key], (key, shown, before, after)


def notebook_model(cells: list[str]) -> dict:
    """A notebook of code cells, as the Jupyter contents API takes it."""
    code = [
        {
            "cell_type": "code",
            "source": c,
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "id": f"c{i}",
        }
        for i, c in enumerate(cells)
    ]
    metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    content = {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": code}
    return {"type": "notebook", "content": content}


def server_job(user: str, state: str) -> str | None:
    """The id of `user`'s default test server's job in Slurm state `state` (PD, R…), if any."""
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-t", state, "-o", "%i|%j"], capture_output=True, text=True
    ).stdout
    ids = [
        i
        for i, name in (line.split("|", 1) for line in out.splitlines())
        if name == f"fh:test:{user}:"
    ]
    return ids[0] if ids else None


def job_of(user: str, server: str = "", hub_id: str = "test") -> str:
    """The id of the live test job carrying `user`'s server (by its job name)."""
    out = subprocess.run(
        ["squeue", "-h", "-u", user, "-o", "%i|%j"], capture_output=True, text=True
    ).stdout
    ids = [
        i
        for i, name in (line.split("|", 1) for line in out.splitlines())
        if name == f"fh:{hub_id}:{user}:{server}"
    ]
    assert len(ids) == 1, f"expected one job for {user}:{server}, found {ids}"
    return ids[0]
