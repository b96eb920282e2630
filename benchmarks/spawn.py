"""P1–P3 and P5 of `make bench`: time to ready for N learners pressing start at once, and the
steady state with N running servers — FactoryHub, stock batchspawner 1.3.0 (its own virtual
environment, benchmarks/peer/) and the machine's floor, in the same run, alternating.

- Time to ready: from each learner's spawn request (REST, as a browser's form post does) to the
  first 200 of their server through the proxy, waiting on the hub's progress event stream.
- The floor: the same single-user server (jupyterhub-singleuser) with no hub behind it, launched
  with an immediate allocation (`salloc --immediate`, then `srun`), plus a route in a
  configurable-http-proxy; ready at its first 200 through the proxy.
- Steady state: scheduler job queries counted by slurmctld itself (`sdiag`) and the hub
  process's CPU time, over a window with N servers running.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import tomli_w

from factoryhub.demo.accounts import DemoAccount, ensure_accounts
from factoryhub.demo.daemons import running_pid, spawn_daemon, stop_daemon, wait_for
from factoryhub.demo.hubprocess import CHP, HubInstance, start_hub, stop_hub
from factoryhub.scheduler.slurm import parse_allocation
from factoryhub.site import another_hub, load_site

REPO = Path(__file__).resolve().parent.parent
VENV = Path("/opt/factoryhub/venv/bin")
PEER = Path("/opt/factoryhub/peer-venv/bin")
GROUP = "factoryhub"
TOKEN = secrets.token_hex(24)  # the benchmark's service token on both hubs
# The same session on every side: one CPU, 1 GB, one hour, in the default partition.
FACTORYHUB_OPTIONS = {"partition": "cpu", "cpus": 1, "memory_gb": 1, "walltime": "01:00:00"}
SLURM_REQUEST = ["--partition=cpu", "--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--mem=1G"]


def learners(n: int) -> list[str]:
    names = [f"learner{i:02d}" for i in range(1, n + 1)]
    accounts = tuple(DemoAccount(name, secrets.token_urlsafe(16)) for name in names)
    ensure_accounts(accounts, GROUP, load_site(REPO / "hub_config" / "site.toml").access)
    return names


@dataclass
class Hub:
    """A running hub of one kind, reached through its own proxy."""

    name: str
    api: str  # http://…/hub/api
    proxy: str  # http://… (public)
    pidfile: Path
    poll_interval: float

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {TOKEN}"}


# -- the hubs ----------------------------------------------------------------------------------


def start_factoryhub(
    scratch: Path,
    hub_id: str = "bench",
    port_base: int = 28000,
    hub_changes: dict[str, object] | None = None,
    extra_config: str = "",
) -> tuple[Hub, HubInstance]:
    """FactoryHub with the demo site's settings (its defaults), on ports of its own; P7's
    hub changes [hub] keys (its own catalogue) and adds configuration (the lean server)."""
    state = scratch / hub_id
    state.mkdir(mode=0o700)
    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    raw = another_hub(raw, hub_id, port_base, str(state))
    raw["hub"].update(hub_changes or {})
    site_path = state / "site.toml"
    site_path.write_text(tomli_w.dumps(raw))
    config = state / "jupyterhub_config.py"
    config.write_text(  # the hub's account may not read the checkout: no load_subconfig of it
        "import os\nfrom pathlib import Path\n"
        "from factoryhub.spawners.hubconfig import apply_site\n"
        "from factoryhub.site import load_site\n"
        "c = get_config()\nsite = Path(os.environ['FACTORYHUB_SITE'])\n"
        "apply_site(c, load_site(site), site)\n"
        f"c.JupyterHub.services.append({{'name': 'bench', 'api_token': {TOKEN!r}}})\n"
        "c.JupyterHub.load_roles.append({'name': 'bench', 'services': ['bench'], 'scopes':"
        " ['admin:users', 'admin:servers', 'access:servers', 'read:users', 'tokens']})\n"
        + extra_config
    )
    instance = HubInstance(load_site(site_path), site_path, config)
    start_hub(instance)
    hub = Hub(
        "factoryhub",
        instance.hub_api,
        f"http://127.0.0.1:{port_base}",
        instance.hub_pidfile,
        instance.site.slurm.poll_interval,
    )
    return hub, instance


def start_batchspawner(scratch: Path) -> Hub:
    """Stock batchspawner's hub: JupyterHub from the peer's environment, its own proxy."""
    state = scratch / "batchspawner"
    state.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "FACTORYHUB"))}
    env.update(
        PATH=f"{PEER}:/usr/local/bin:/usr/bin:/bin",
        BENCH_STATE=str(state),
        BENCH_PORT_BASE="29000",
        BENCH_TOKEN=TOKEN,
        CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(24),
    )
    pidfile = state / "daemon.pid"
    config = REPO / "benchmarks" / "peer" / "jupyterhub_config.py"
    argv = [str(PEER / "jupyterhub"), "-f", str(config)]
    spawn_daemon(argv, pidfile, state / "hub.log", env=env, cwd=state)
    api, proxy = "http://127.0.0.1:29081/hub/api", "http://127.0.0.1:29000"
    hub = Hub("batchspawner", api, proxy, pidfile, 30)  # JupyterHub's default poll interval
    wait_for(lambda: _answers(f"{hub.api}/"), 90, "batchspawner's JupyterHub", interval=0.2)
    return hub


def stop_batchspawner(hub: Hub) -> None:
    stop_daemon(hub.pidfile, timeout=30)
    proxy = hub.pidfile.parent / "proxy.pid"
    if running_pid(proxy):
        stop_daemon(proxy)


def _answers(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


# -- time to ready through a hub -------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """One learner's spawn: seconds to the first 200 through the proxy, and how many progress
    messages the learner's page showed before "ready" (what they were told while waiting)."""

    seconds: float
    messages: int


async def _ready_through_hub(client: httpx.AsyncClient, hub: Hub, user: str) -> Ready:
    """Seconds from the spawn request to the server's first 200 through the proxy."""
    started = time.perf_counter()
    options = FACTORYHUB_OPTIONS if hub.name == "factoryhub" else {}
    r = await client.post(f"{hub.api}/users/{user}/server", json={"user_options": options})
    if r.status_code not in (201, 202):
        raise RuntimeError(f"{hub.name}: spawn of {user} answered {r.status_code}: {r.text[:300]}")
    url, messages = await _wait_for_ready_event(client, hub, user)
    r = await client.get(f"{hub.proxy}{url}api/status")
    if r.status_code != 200:
        raise RuntimeError(f"{hub.name}: {user}'s server answered {r.status_code} when ready")
    return Ready(time.perf_counter() - started, messages)


async def _wait_for_ready_event(
    client: httpx.AsyncClient, hub: Hub, user: str, headers: dict[str, str] | None = None
) -> tuple[str, int]:
    """The server's URL from the progress event stream's `ready` event, and the number of
    messages before it (asked with `headers`, else the client's)."""
    messages = 0
    url = f"{hub.api}/users/{user}/server/progress"
    async with client.stream("GET", url, headers=headers) as events:
        async for line in events.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return event["url"], messages
            messages += 1
            if event.get("failed"):
                raise RuntimeError(f"{hub.name}: spawn of {user} failed: {event.get('message')}")
    raise RuntimeError(f"{hub.name}: progress of {user} ended without ready")


async def _stop_all(client: httpx.AsyncClient, hub: Hub, users: list[str]) -> None:
    await asyncio.gather(*(client.delete(f"{hub.api}/users/{u}/server") for u in users))
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        listed = await asyncio.gather(*(client.get(f"{hub.api}/users/{u}") for u in users))
        if not any(r.json().get("servers") for r in listed):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"{hub.name}: servers still listed 180 s after stop")


async def hub_run(hub: Hub, users: list[str], steady_s: float = 0) -> dict[str, object]:
    """All `users` press start at once; optionally hold them running for `steady_s` (P5)."""
    limits = httpx.Limits(max_connections=4 * len(users) + 10)
    async with httpx.AsyncClient(
        headers=hub.headers(), timeout=httpx.Timeout(900), limits=limits
    ) as client:
        await client.post(f"{hub.api}/users", json={"usernames": users})  # 201, or 409 if known
        log = hub.pidfile.parent / "hub.log"
        log_start = log.stat().st_size if log.exists() else 0
        try:
            outcomes = await asyncio.gather(
                *(_ready_through_hub(client, hub, u) for u in users), return_exceptions=True
            )
            stalls = loop_stalls(log, log_start)
            steady = await asyncio.to_thread(steady_state, hub, steady_s) if steady_s else None
        finally:
            await _stop_all(client, hub, users)
    wait_for_no_jobs(users)
    failures = [f"{u}: {o}"[:300] for u, o in zip(users, outcomes, strict=True) if _failed(o)]
    ready = [o for o in outcomes if not _failed(o)]
    return {
        "times_s": sorted(o.seconds for o in ready),
        "messages_min": min((o.messages for o in ready), default=0),
        "loop_stalls_s": stalls,
        "failures": failures,
        "steady": steady,
    }


_STALL = re.compile(r"Event loop was unresponsive for at least ([0-9.]+)s")


def loop_stalls(log: Path, start: int) -> list[float]:
    """The hub's own "Event loop was unresponsive" warnings (JupyterHub checks its loop every
    few seconds and logs a stall over 1 s) written since byte `start` of its log."""
    if not log.exists():
        return []
    with log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    return [float(m) for m in _STALL.findall(text)]


def _failed(outcome: object) -> bool:
    """A learner whose server never answered when ready (the error is kept, never hidden)."""
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
        raise outcome  # KeyboardInterrupt, SystemExit: stop the benchmark
    return isinstance(outcome, Exception)


# -- the floor -------------------------------------------------------------------------------


async def _floor_one(
    user: str, port: int, proxy: tuple[str, str], hub_api: str
) -> tuple[float, str]:
    """The single-user server every hub here runs (jupyterhub-singleuser, from FactoryHub's
    environment), bare: as `user` through an immediate allocation, with the environment a hub
    would give it but no spawner behind, and a proxy route. Ready at the first 200 of its `api`
    endpoint (the one JupyterHub checks) through the proxy."""
    prefix = f"/floor/{user}/"
    started = time.perf_counter()
    job_id = await floor_allocate(user, SLURM_REQUEST)
    env = {
        "PATH": f"{VENV}:/usr/bin:/bin",
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        # The server asks a hub's API for its version as it starts: FactoryHub's (any real hub
        # would do; nothing else of it is used, and the token is nobody's).
        "JUPYTERHUB_API_URL": hub_api,
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{user}",
        "JUPYTERHUB_USER": user,
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}{prefix}",
    }
    server = [str(VENV / "jupyterhub-singleuser"), "--ServerApp.ip=127.0.0.1"]
    await floor_serve(user, job_id, server, port, prefix, proxy, env)
    return time.perf_counter() - started, job_id


async def floor_allocate(user: str, request: list[str]) -> str:
    """An immediate allocation as `user` (runuser, no hub), named "floor": its job id."""
    as_user = ["/usr/sbin/runuser", "-u", user, "--"]
    salloc = [*as_user, "salloc", "--immediate", "--no-shell", "--time=10", *request]
    proc = await asyncio.create_subprocess_exec(
        *salloc, "--job-name=floor", stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    job_id = parse_allocation(err.decode())
    if not job_id:
        raise RuntimeError(f"floor: no immediate allocation for {user}: {err.decode()[:200]}")
    return job_id


async def floor_serve(
    user: str,
    job_id: str,
    server: list[str],
    port: int,
    prefix: str,
    proxy: tuple[str, str],
    env: dict[str, str],
) -> None:
    """`server` as a detached step of `job_id` (as `user`, setsid --fork srun), then its proxy
    route once it listens on `port`; done at its first 200 of `<prefix>api` through the proxy."""
    as_user = ["/usr/sbin/runuser", "-u", user, "--"]
    srun = ["srun", f"--jobid={job_id}", "--ntasks=1", "--input=none", "--output=/dev/null"]
    launch = [*as_user, "setsid", "--fork", *srun, *server]
    step = await asyncio.create_subprocess_exec(
        *launch, cwd=f"/home/{user}", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    await step.wait()
    deadline = time.monotonic() + 300
    while not _listening(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"floor: {user}'s server not listening after 300 s")
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(timeout=60) as client:
        proxy_api, proxy_token = proxy
        route = f"{proxy_api}/api/routes{prefix.rstrip('/')}"
        headers = {"Authorization": f"token {proxy_token}"}
        r = await client.post(route, json={"target": f"http://127.0.0.1:{port}"}, headers=headers)
        r.raise_for_status()
        r = await client.get(f"http://127.0.0.1:27000{prefix}api")
        if r.status_code != 200:
            raise RuntimeError(f"floor: {user}'s server answered {r.status_code}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_floor_proxy(scratch: Path) -> tuple[Path, str, str]:
    state = scratch / "floor"
    state.mkdir(mode=0o700)
    token = secrets.token_hex(24)
    argv = [str(CHP), "--ip", "127.0.0.1", "--port", "27000", "--api-port", "27001"]
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token}
    pidfile = state / "proxy.pid"
    spawn_daemon(argv, pidfile, state / "proxy.log", env=env)
    api = "http://127.0.0.1:27001"
    wait_for(lambda: _answers(f"{api}/api/routes"), 20, "the floor's proxy")
    return pidfile, api, token


async def floor_run(users: list[str], proxy: tuple[str, str], hub_api: str) -> dict[str, object]:
    results = await asyncio.gather(
        *(_floor_one(u, 30000 + i, proxy, hub_api) for i, u in enumerate(users))
    )
    subprocess.run(["scancel", *(job for _, job in results)], check=False)
    wait_for_no_jobs(users)
    return {"times_s": sorted(t for t, _ in results), "failures": [], "steady": None}


# -- the scheduler's side --------------------------------------------------------------------


def resume_nodes_drained_by_kills() -> list[str]:
    """Nodes Slurm drained because a cancelled job's processes outlived its kill signals
    ("Kill task failed": seen once with stock batchspawner's 50 jobs cancelled at once on this
    2-core site) are resumed so the next run has the whole partition; each is reported."""
    argv = ["sinfo", "--noheader", "--list-reasons", "--format=%N|%E|%H"]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    events = []
    for line in out.splitlines():
        nodes, reason, when = [*line.split("|"), "", ""][:3]
        if "kill task failed" in reason.lower():
            subprocess.run(["scontrol", "update", f"nodename={nodes}", "state=resume"], check=True)
            events.append(f"{when}: {nodes} drained ({reason}); resumed")
    return events


def wait_for_no_jobs(users: list[str], timeout: float = 240) -> None:
    """Longer than slurm.conf's UnkillableStepTimeout (180 s): a job whose kill Slurm gives up
    on leaves the queue then (its node drained, resumed by the next repetition)."""

    def gone() -> bool:
        argv = ["squeue", "--noheader", "--format=%i", f"--user={','.join(users)}"]
        return not subprocess.run(argv, capture_output=True, text=True).stdout.strip()

    wait_for(gone, timeout, "the benchmark's jobs to leave the queue", interval=0.5)


def job_queries() -> int:
    """Job-information RPCs slurmctld has served since its counters were reset (`sdiag`)."""
    out = subprocess.run(["sdiag"], capture_output=True, text=True, check=True).stdout
    pattern = r"REQUEST_JOB_INFO(?:_SINGLE)?\s+\(\s*\d+\)\s+count:(\d+)"
    return sum(int(n) for n in re.findall(pattern, out))


def cpu_seconds(pid: int) -> float:
    """CPU time of the hub process and of the commands it ran and waited for (its `squeue`,
    `sudo`, …): utime, stime, cutime, cstime of /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def steady_state(hub: Hub, window_s: float) -> dict[str, float]:
    """Scheduler job queries and hub CPU over `window_s` with the servers running."""
    pid = running_pid(hub.pidfile) or 0
    queries, cpu, started = job_queries(), cpu_seconds(pid), time.monotonic()
    time.sleep(window_s)
    elapsed = time.monotonic() - started
    queries, cpu = job_queries() - queries, cpu_seconds(pid) - cpu
    return {
        "window_s": elapsed,
        "job_queries": queries,
        "poll_interval_s": hub.poll_interval,
        "queries_per_poll_interval": queries / (elapsed / hub.poll_interval),
        "hub_cpu_s_per_min": cpu * 60 / elapsed,
    }


# -- the series ------------------------------------------------------------------------------


def percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"p50": statistics.median(ordered), "p95": p95, "last": ordered[-1]}


def spawn_series(
    scratch: Path, sizes: dict[str, tuple[int, int]], steady_s: float
) -> tuple[dict[str, dict], list[str]]:
    """For each named size (learners, repetitions): floor, FactoryHub and batchspawner in turn,
    repetition after repetition; P5 on the last repetition of the largest size."""
    users = learners(max(n for n, _ in sizes.values()))
    factoryhub, instance = start_factoryhub(scratch)
    peer = start_batchspawner(scratch)
    floor_pidfile, floor_api, floor_token = start_floor_proxy(scratch)
    largest = max(sizes, key=lambda k: sizes[k][0])
    results: dict[str, object] = {}
    events: list[str] = []
    try:
        for name, (n, repeat) in sizes.items():
            runs: dict[str, list[dict]] = {"floor": [], "factoryhub": [], "batchspawner": []}
            for rep in range(repeat):
                events += resume_nodes_drained_by_kills()
                hold = steady_s if name == largest and rep == repeat - 1 else 0
                floor = floor_run(users[:n], (floor_api, floor_token), factoryhub.api)
                runs["floor"].append(asyncio.run(floor))
                runs["factoryhub"].append(asyncio.run(hub_run(factoryhub, users[:n], hold)))
                runs["batchspawner"].append(asyncio.run(hub_run(peer, users[:n], hold)))
            results[name] = summarise(n, runs)
        events += resume_nodes_drained_by_kills()
    finally:
        stop_hub(instance)
        stop_batchspawner(peer)
        stop_daemon(floor_pidfile)
    return results, events


def summarise(n: int, runs: dict[str, list[dict]]) -> dict[str, object]:
    """Per system: each run's p50/p95/last of the learners whose server became ready (spawns
    that failed are counted and listed apart); ratios pair by pair on the run's last learner
    (and p50), reported as medians over the repetitions."""
    stats = {k: [percentiles(r["times_s"]) for r in v] for k, v in runs.items()}

    def ratio(num: str, den: str, key: str) -> float:
        pairs = zip(stats[num], stats[den], strict=True)
        return statistics.median(a[key] / b[key] for a, b in pairs)

    return {
        "learners": n,
        "runs": runs,
        "stats": stats,
        "failed": {k: sum(len(r["failures"]) for r in v) for k, v in runs.items()},
        "median": {
            k: {q: statistics.median(s[q] for s in v) for q in ("p50", "p95", "last")}
            for k, v in stats.items()
        },
        "factoryhub_x_floor": {q: ratio("factoryhub", "floor", q) for q in ("p50", "last")},
        "batchspawner_over_factoryhub": {
            q: ratio("batchspawner", "factoryhub", q) for q in ("p50", "last")
        },
        "steady": {k: r[-1]["steady"] for k, r in runs.items() if r[-1]["steady"]},
        "hubs": {k: _hub_figures(v) for k, v in runs.items() if k != "floor"},
    }


def _hub_figures(runs: list[dict]) -> dict[str, float]:
    """What the learners were told while waiting (the fewest progress messages any of them
    saw before "ready") and how long the hub's event loop stalled (its own warnings)."""
    stalls = [s for r in runs for s in r.get("loop_stalls_s", [])]
    return {
        "fewest_messages": min((r.get("messages_min", 0) for r in runs), default=0),
        "loop_stalls": len(stalls),
        "longest_stall_s": max(stalls, default=0.0),
    }
