"""A learner against the hub, on the real Slurm, hub and proxy (security issue 13, findings 1, 4,
5 and 8): forged job records, a route pointed at another service, secrets in a learner's
processes, and root-run services.

Two accounts of the tests' own: `fhatk` attacks, `fhvic` is attacked; the demo's are left alone.
"""

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import realsite
from realsite import REPO, job_of, squeue_row, wait_until

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.demo.daemons import running_pid
from factoryhub.scheduler.actas import Rules
from factoryhub.site import load_site

pytestmark = pytest.mark.integration

ATTACKER, VICTIM = "fhatk", "fhvic"


@pytest.fixture(scope="module")
def pair():
    site = load_site(REPO / "hub_config" / "site.toml")
    accounts = tuple(DemoAccount(n, f"{n}-isolation-test") for n in (ATTACKER, VICTIM))
    ensure_accounts(accounts, site.hub.allowed_group, site.access)
    realsite.PASSWORDS.update({a.name: a.password for a in accounts})
    return accounts


def _as(user: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", *argv],
        capture_output=True,
        text=True,
        cwd=os.path.expanduser(f"~{user}"),
        timeout=60,
    )


def _forged_rows(victim_job: str, ghost_job: str) -> str:
    """Text rows in the hub's former `squeue` format describing the victim's jobs as the
    attacker would like them: elsewhere, pending, ended, and an old orphan of the hub's."""
    return "\n".join(
        [
            "fhport:45678",
            f"{victim_job}|RUNNING|None|127.0.0.2|fh:test:{VICTIM}:|{VICTIM}|59:00|N/A|fhport:4444",
            f"{victim_job}|PENDING|BeginTime||fh:test:{VICTIM}:|{VICTIM}|59:00|N/A|",
            f"{victim_job}|COMPLETED|None|cn01|fh:test:{VICTIM}:|{VICTIM}|0:00|N/A|",
            f"{ghost_job}|RUNNING|None|cn01|fh:test:{VICTIM}:ghost|{VICTIM}|59:00|"
            "2020-01-01T00:00:00|",
            "1|RUNNING",  # a malformed row
        ]
    )


def _route_target(hub_client, user: str) -> str:
    return hub_client.routes()[f"/user/{user}"]["target"]


def test_forged_job_records_leave_another_learners_session_and_jobs_alone(hub_client, pair):
    victim_token = hub_client.login_token(VICTIM)
    hub_client.start(VICTIM, victim_token, options={"partition": "cpu", "cpus": 1})
    victim_job, target = job_of(VICTIM), _route_target(hub_client, VICTIM)
    # the victim's own batch job: what the old sweep cancelled when a forged row named it
    own = _as(
        VICTIM, "sbatch", "--parsable", "-p", "cpu", "-t", "10", "-J", "own", "--wrap", "sleep 600"
    )
    assert own.returncode == 0, own.stderr
    ghost = own.stdout.strip()

    attacker_token = hub_client.login_token(ATTACKER)
    hub_client.start(ATTACKER, attacker_token, options={"partition": "cpu", "cpus": 1})
    attacker_job = job_of(ATTACKER)
    rows = _forged_rows(victim_job, ghost)
    # every field of a job its owner controls carries the rows: comment, name, output paths,
    # working directory (a folder named by them)
    forged_dir = Path(os.path.expanduser(f"~{ATTACKER}")) / rows.replace("/", "_")[:200]
    assert _as(ATTACKER, "mkdir", "-p", str(forged_dir)).returncode == 0
    done = _as(ATTACKER, "scontrol", "update", f"jobid={attacker_job}", f"comment={rows}")
    assert done.returncode == 0, done.stderr
    second = _as(
        ATTACKER,
        "sbatch",
        "--parsable",
        "-p",
        "cpu",
        "-t",
        "10",
        "-J",
        rows,
        f"--comment={rows}",
        f"--output=/tmp/{rows.replace('/', '_')[:100]}",
        f"--chdir={forged_dir}",
        "--wrap",
        "sleep 600",
    )
    assert second.returncode == 0, second.stderr

    poll = hub_client.hub.site.slurm
    time.sleep(2 * poll.poll_interval + poll.sweep_interval + poll.orphan_grace + 1)

    assert squeue_row(victim_job)["state"] == "RUNNING"
    assert squeue_row(ghost)["state"] in ("RUNNING", "PENDING")  # not swept
    assert _route_target(hub_client, VICTIM) == target and "127.0.0.2" not in target
    assert hub_client.server(VICTIM, victim_token)["ready"]
    status = httpx.get(
        f"{hub_client.base}/user/{VICTIM}/api/status",
        headers={"Authorization": f"token {victim_token}"},
    )
    assert status.status_code == 200
    # the hub still answers, and still knows the attacker's own session as it was
    assert hub_client.server(ATTACKER, attacker_token)["ready"]
    log = (hub_client.hub.state_dir / "hub.log").read_text()
    assert "127.0.0.2" not in log and "unexpected squeue line" not in log

    subprocess.run(["scancel", second.stdout.strip(), ghost], check=False)
    hub_client.stop(ATTACKER, attacker_token)
    hub_client.stop(VICTIM, victim_token)


def test_a_route_to_another_service_of_the_node_is_refused(hub_client, pair):
    token = hub_client.login_token(ATTACKER)
    events = hub_client.start_events(
        ATTACKER, token, name="liar", options={"partition": "cpu", "environment": "liar"}
    )
    messages = " | ".join(e.get("message", "") for e in events)
    assert not events[-1].get("ready") and "not this session's JupyterLab" in messages, messages
    assert f"/user/{ATTACKER}/liar" not in hub_client.routes()
    wait_until(
        lambda: (
            subprocess.run(
                ["squeue", "-h", "-u", ATTACKER, "-n", f"fh:test:{ATTACKER}:liar", "-o", "%i"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            == ""
        ),
        30,
        "the lying session's job ended",
    )


def _uids(pid: int) -> list[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("Uid:"))
    return [int(v) for v in line.split()[1:]]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _service_processes(hub) -> dict[str, int]:
    hub_pid = running_pid(hub.hub_pidfile)
    proxy_pid = running_pid(hub.proxy_pidfile)
    assert hub_pid and proxy_pid
    found = {"jupyterhub": hub_pid, "proxy supervisor": proxy_pid}
    found["configurable-http-proxy"] = int(hub.proxy_child_pidfile.read_text())
    for child in _children(hub_pid):
        if "factoryhub.service" in Path(f"/proc/{child}/cmdline").read_text(errors="replace"):
            found["service"] = child
    assert "service" in found, found
    return found


def test_no_hub_proxy_or_service_process_runs_as_root(real_hub):
    for name, pid in _service_processes(real_hub).items():
        assert 0 not in _uids(pid), f"{name} (pid {pid}) runs as root"


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _secrets(hub) -> set[str]:
    """What the hub, the proxy and the service hold that no learner may see."""
    processes = _service_processes(hub)
    secrets = {hub.proxy_token(), (hub.state_dir / "jupyterhub_cookie_secret").read_text().strip()}
    secrets.add(_environ(processes["service"])["JUPYTERHUB_API_TOKEN"])
    secrets.add(_environ(processes["jupyterhub"])["CONFIGPROXY_AUTH_TOKEN"])
    return {s for s in secrets if len(s) >= 16}


def _acts(user: str, since: str) -> list[dict]:
    lines = Path(Rules().audit_log).read_text().splitlines()
    acts = [json.loads(line) for line in lines]
    return [a for a in acts if a.get("user") == user and a["time"] >= since]


def _hold_node(user: str, node: str) -> str:
    done = _as(
        user,
        "sbatch",
        "--parsable",
        "-p",
        "cpu",
        "-w",
        node,
        "-c",
        "32",
        "-t",
        "10",
        "-o",
        "/dev/null",
        "--wrap",
        "sleep 600",
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _queue_and_stop(hub_client, token: str) -> None:
    """A start that must queue (sbatch): the victim's own CPU cap is used up."""
    with hub_client.api(token) as api:
        r = api.post(f"/users/{VICTIM}/servers/q", json={"user_options": {"partition": "cpu"}})
        assert r.status_code in (201, 202), r.text
    wait_until(
        lambda: realsite.server_job(VICTIM, "PD") is None and _named(f"fh:test:{VICTIM}:q"),
        60,
        "the queued session's job",
    )
    hub_client.stop(VICTIM, token, name="q")


def _named(name: str) -> bool:
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True)
    return bool(out.stdout.strip())


def test_no_learner_process_sees_a_secret_of_the_hub_proxy_or_service(hub_client, pair):
    since = time.strftime("%Y-%m-%dT%H:%M:%S")
    secrets = _secrets(hub_client.hub)
    token = hub_client.login_token(VICTIM)
    # every path that runs a command as the learner: estimates Slurm must answer (service and
    # form) and a queued start (sbatch) while both CPU nodes are full, a start at once (salloc
    # then srun, one act), stops (scancel), a failed start (the end of its log, read with tail)
    blockers = [_hold_node(ATTACKER, "cn01"), _hold_node(VICTIM, "cn02")]
    wait_until(
        lambda: all(squeue_row(j).get("state") == "RUNNING" for j in blockers),
        30,
        "both CPU nodes full",
    )
    service = f"{hub_client.base}/services/factoryhub/estimate"
    r = httpx.get(
        service,
        params={"partition": "cpu", "cpus": "1"},
        headers={"Authorization": f"token {token}"},
    )
    assert r.status_code == 200, r.text
    assert "Your session" in hub_client.spawn_page(VICTIM)
    _queue_and_stop(hub_client, token)
    subprocess.run(["scancel", *blockers], check=True)
    hub_client.start(VICTIM, token, options={"partition": "cpu", "cpus": 1})
    failed = hub_client.start_events(VICTIM, token, name="b", options={"environment": "broken"})
    assert not failed[-1].get("ready")

    learner_processes = subprocess.run(
        ["pgrep", "-u", VICTIM], capture_output=True, text=True
    ).stdout.split()
    assert learner_processes  # the session's server, at least
    for pid in learner_processes:
        values = set(_environ(int(pid)).values())
        assert not values & secrets, f"process {pid} of {VICTIM} holds a secret"
    hub_client.stop(VICTIM, token)
    acts = _acts(VICTIM, since)
    programs = {Path(a["program"]).name for a in acts}
    assert {"salloc+srun", "sbatch", "scancel", "tail"} <= programs, programs
    estimates = [a for a in acts if "--test-only" in a["args"]]
    assert estimates
    for act in acts:
        assert "CONFIGPROXY_AUTH_TOKEN" not in act["env"]
    for act in estimates:  # an estimate carries nothing of the hub's or the service's
        assert set(act["env"]) <= {
            "PATH",
            "LANG",
            "LC_ALL",
            "TZ",
            "SLURM_CONF",
            "HOME",
            "USER",
            "LOGNAME",
        }, act["env"]
