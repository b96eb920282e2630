"""`factoryhub hub setup` as an admin runs it on a service node, on the real machine: a hub of
its own (id `testsetup`, ports 18600/18601/18681/18682) from a test site.toml. The installed
command writes the hub's files (checked: modes, owners, contents), starts the proxy and the
hub under the supervisor from exactly those files (the running processes' config, environment
and arguments are the files'), `/hub/api/` answers through the proxy and a test learner logs
in through PAM; a second run changes nothing (contents, modes, owners, mtimes); no account was
made and the embedded site's slurm.conf is the same byte for byte."""

import hashlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from realsite import FACTORYHUB, REPO, HubClient, write_test_site

from factoryhub.demo.embedded import HUB_USER, SLURM_ETC
from factoryhub.demo.hubprocess import CONFIG_ROOT, HubInstance, hub_status, stop_hub
from factoryhub.site import load_site

pytestmark = pytest.mark.integration

HUB_ID = "testsetup"
PORT = 18600  # proxy API 18601, hub 18681, service 18682
CONFIG = REPO / "hub_config" / "jupyterhub_config.py"


def _setup(site: Path, *extra: str) -> subprocess.CompletedProcess:
    argv = [FACTORYHUB, "hub", "setup", "--site", str(site), "--config", str(CONFIG), *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def _env_file(path: Path) -> dict[str, str]:
    """systemd's KEY="value" lines as a dict."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line)
    return {key: value.strip('"') for key, value in pairs}


def _state(paths: list[Path]) -> dict[str, tuple]:
    out = {}
    for path in paths:
        seen = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path)] = (seen.st_uid, seen.st_mode, seen.st_mtime_ns, digest)
    return out


def _slurm_conf() -> str:
    return hashlib.sha256((SLURM_ETC / "slurm.conf").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def set_up(real_hub):
    """The hub after one run of `factoryhub hub setup --start`: (hub, first output, the
    accounts and slurm.conf digest before it). The test accounts are `real_hub`'s."""
    state = Path("/var/lib/factoryhub-test") / f"setup-{os.getpid()}"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.mkdir(exist_ok=True)
    site = state.parent / f"setup-{os.getpid()}-site" / "site.toml"  # root's, as on a site
    site.parent.mkdir(exist_ok=True)
    shutil.move(write_test_site(state, HUB_ID, PORT), site)
    hub = HubInstance(load_site(site), site, CONFIG)
    accounts = {entry.pw_name for entry in pwd.getpwall()}
    slurm_conf = _slurm_conf()
    try:
        done = _setup(site, "--start")
        yield hub, done, accounts, slurm_conf
    finally:
        stop_hub(hub)
        kept = REPO / "reports" / "test-hub-setup"
        kept.mkdir(parents=True, exist_ok=True)
        for log in ("hub.log", "proxy.log"):
            if (state / log).exists():
                shutil.copy(state / log, kept / log)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(site.parent, ignore_errors=True)
        shutil.rmtree(hub.hub_config.parent, ignore_errors=True)
        shutil.rmtree(hub.proxy_dir, ignore_errors=True)


def test_setup_writes_the_hubs_files_with_their_owners_and_modes(set_up):
    hub, done, _, _ = set_up
    assert done.returncode in (0, 1), done.stdout + done.stderr  # site check: no error
    assert "factoryhub site check:" in done.stdout, done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    folder = CONFIG_ROOT / HUB_ID
    hub_uid = pwd.getpwnam(HUB_USER).pw_uid
    expected = {
        folder: (0, 0o755),
        folder / "jupyterhub_config.py": (0, 0o644),
        folder / "site.toml": (0, 0o644),
        folder / "hub.env": (0, 0o600),
        folder / "proxy.env": (0, 0o600),
        hub.state_dir: (hub_uid, 0o700),
        hub.state_dir / "proxy-token": (hub_uid, 0o600),
    }
    for path, (uid, mode) in expected.items():
        seen = path.lstat()
        assert not stat.S_ISLNK(seen.st_mode), path
        assert (seen.st_uid, stat.S_IMODE(seen.st_mode)) == (uid, mode), path
    assert (folder / "jupyterhub_config.py").read_bytes() == CONFIG.read_bytes()
    assert (folder / "site.toml").read_bytes() == hub.site_path.read_bytes()
    token = (hub.state_dir / "proxy-token").read_text().strip()
    hub_env, proxy_env = _env_file(folder / "hub.env"), _env_file(folder / "proxy.env")
    assert len(token) == 64 and hub_env["CONFIGPROXY_AUTH_TOKEN"] == token
    assert proxy_env["CONFIGPROXY_AUTH_TOKEN"] == token
    assert hub_env["FACTORYHUB_SITE"] == str(folder / "site.toml")
    assert hub_env["USER"] == HUB_USER and proxy_env["USER"] == "factoryhub-proxy"
    args = shlex.split(proxy_env["PROXY_ARGS"])
    assert args[args.index("--port") + 1] == str(PORT)
    assert args[args.index("--api-port") + 1] == str(PORT + 1)
    assert args[args.index("--default-target") + 1] == f"http://127.0.0.1:{PORT + 81}"


def _process(pid: int) -> tuple[list[str], dict[str, str]]:
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
    pairs = (e.decode().split("=", 1) for e in (proc / "environ").read_bytes().split(b"\0") if e)
    return argv, dict(pairs)


def test_the_hub_runs_from_exactly_those_files_and_a_learner_logs_in(set_up):
    hub, done, _, _ = set_up
    assert done.returncode in (0, 1), done.stdout + done.stderr
    folder = CONFIG_ROOT / HUB_ID
    status = hub_status(hub)
    assert all(status.values()), status
    hub_argv, hub_environ = _process(status["jupyterhub"])
    assert hub_argv[-2:] == ["-f", str(folder / "jupyterhub_config.py")], hub_argv
    for key, value in _env_file(folder / "hub.env").items():
        assert hub_environ.get(key) == value, key
    proxy_argv, proxy_environ = _process(status["proxy"])
    proxy_env = _env_file(folder / "proxy.env")
    assert proxy_argv[-len(shlex.split(proxy_env["PROXY_ARGS"])) :] == shlex.split(
        proxy_env["PROXY_ARGS"]
    )
    assert proxy_environ["CONFIGPROXY_AUTH_TOKEN"] == proxy_env["CONFIGPROXY_AUTH_TOKEN"]
    api = httpx.get(f"http://127.0.0.1:{PORT}/hub/api/", timeout=30)  # through the proxy
    assert api.status_code == 200 and "version" in api.json(), api.text[:300]
    assert HubClient(hub).login_token("tlearner1")  # PAM, through the login form


def test_a_second_run_changes_nothing_and_nothing_of_slurm_or_accounts(set_up):
    hub, _, accounts, slurm_conf = set_up
    folder = CONFIG_ROOT / HUB_ID
    files = [folder, *sorted(folder.iterdir()), hub.state_dir, hub.state_dir / "proxy-token"]
    before = _state(files)
    again = _setup(hub.site_path)
    assert again.returncode in (0, 1), again.stdout + again.stderr
    assert "nothing to change" in again.stdout, again.stdout
    assert "made " not in again.stdout and "changed " not in again.stdout, again.stdout
    assert _state(files) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(f).name for f in files[1:-2])
    assert {entry.pw_name for entry in pwd.getpwall()} == accounts  # no (demo) account made
    assert _slurm_conf() == slurm_conf
    assert all(hub_status(hub).values())  # a second run leaves the running hub alone
