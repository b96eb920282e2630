"""P7 of `make bench`: a workshop of N seats (200) where everybody presses Start within 10
seconds, on the embedded site's training partition (kept for workshops, ReqResv=YES).

A real workshop is made with `factoryhub workshop create` (its reservation on the training
partition, its Slurm account, N seat accounts ws-<name>-NNN) from a course whose preset is one
CPU and 1 GB there. Then, alternating, for each repetition:

- the floor: every seat account, with no hub, takes an immediate allocation on the workshop's
  reservation and account (`salloc --immediate`), starts the lean server in it (`srun`) and gets
  a route in a configurable-http-proxy; ready at the first 200 of its `api` through the proxy;
- FactoryHub: every seat asks the hub for its server (REST, what the join page's spawn does;
  the seat's locked preset fills in the rest), waits on its progress stream for "ready", then
  for the first 200 through the proxy. A 429 (JupyterHub's concurrent_spawn_limit) is retried
  after its Retry-After, and counted; the time runs from the seat's first press.

Both run the same lean single-user server (factoryhub.demo.leanserver: 200 JupyterLabs do not
fit in this machine's memory). With FactoryHub's servers ready the run checks that none is lost
or duplicated (one job per seat, one route per seat, no two routes to one server, each route at
its own job's reported port) and reads the hub's memory (VmRSS, VmHWM). At the end the
workshop is ended and purged: nothing stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import httpx
from p7report import summarise_p7
from spawn import (
    REPO,
    VENV,
    Hub,
    _wait_for_ready_event,
    floor_allocate,
    floor_serve,
    loop_stalls,
    start_factoryhub,
    start_floor_proxy,
    wait_for_no_jobs,
)

from factoryhub.demo.daemons import running_pid, stop_daemon
from factoryhub.demo.hubprocess import stop_hub

FACTORYHUB = str(VENV / "factoryhub")
LEAN = ["python", "-I", "-m", "factoryhub.demo.leanserver"]  # Spawner.cmd: prefix/bin/python
SPREAD_S = 10.0  # every seat presses Start within this many seconds
PORT_BASE = 26000  # the P7 hub's ports (P1-P5's hub uses 28000)
FLOOR_PORTS = 31000  # the floor's lean servers: FLOOR_PORTS + seat index
CHECK_TIMEOUT_S = 900.0


# -- the workshop --------------------------------------------------------------------------


def _run(argv: list[str], timeout: float = 900) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}…: {(done.stderr or done.stdout)[-600:]}")
    return done.stdout


def seat_course(scratch: Path, site_path: Path) -> str:
    """A course whose preset is one CPU and 1 GB on the training partition (the first-steps
    course with its [resources] changed), published into the P7 hub's own catalogue."""
    folder = scratch / "course" / "p7seat"
    shutil.copytree(REPO / "notebooks" / "first-steps", folder)
    toml = (folder / "course.toml").read_text()
    resources = (
        '[resources]\npartition = "training"\ncpus = 1\nmemory_gb = 1\nwalltime = "01:00:00"\n'
    )
    toml = re.sub(r"\[resources\]\n(?:[^\[\n].*\n)*", resources + "\n", toml)
    toml = toml.replace('title = "First steps on the AI factory"', 'title = "P7 workshop seat"')
    (folder / "course.toml").write_text(toml)
    _run([FACTORYHUB, "course", "publish", str(folder), "--site", str(site_path)])
    return "p7seat"


def create_workshop(site_path: Path, course: str, seats: int) -> tuple[str, dict[str, str]]:
    """`factoryhub workshop create` (after its --dry-run) from now for two hours; the
    workshop's name and the plan it printed."""
    name = f"p7{secrets.token_hex(3)}"
    base = [FACTORYHUB, "workshop", "--site", str(site_path), "create", name]
    base += ["--course", course, "--start", "now", "--end", "now+2h", "--seats", str(seats)]
    plan = _run([*base, "--dry-run"], timeout=120)
    started = time.perf_counter()
    _run(base, timeout=1800)
    made_s = time.perf_counter() - started
    return name, {"dry_run": plan, "create_s": f"{made_s:.1f}"}


def end_workshop(site_path: Path, name: str) -> dict[str, str]:
    """`workshop end` and `purge` (no retention: the seats are the benchmark's)."""
    base = [FACTORYHUB, "workshop", "--site", str(site_path)]
    out = {}
    for action in (["end", name], ["purge", name, "--retention-days", "0"]):
        started = time.perf_counter()
        out[action[0]] = _run([*base, *action], timeout=1800).strip()[-300:]
        out[f"{action[0]}_s"] = f"{time.perf_counter() - started:.1f}"
    return out


def seat_names(name: str, seats: int) -> list[str]:
    from factoryhub.workshop import seat_names as names

    return list(names(name, seats))


# -- memory ----------------------------------------------------------------------------------


def process_memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of one process, in kB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def lean_servers_rss_kb(users: set[str]) -> list[int]:
    """VmRSS of every lean server run by one of `users`."""
    import pwd

    uids = {pwd.getpwnam(u).pw_uid for u in users}
    sizes = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid not in uids:
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv[0].endswith(b"python") or b"factoryhub.demo.leanserver" not in argv:
                continue  # the step's bash names the module in its script: not a server
            sizes.append(process_memory_kb(int(proc.name))["VmRSS"])
        except (OSError, KeyError):
            continue
    return sizes


class MemoryWatch:
    """The machine's lowest MemAvailable (MiB) while it runs, sampled each second."""

    def __init__(self) -> None:
        self.lowest_mib = _available_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            self.lowest_mib = min(self.lowest_mib, _available_mib())

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _available_mib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


# -- FactoryHub ------------------------------------------------------------------------------


async def _press_start(
    client: httpx.AsyncClient, hub: Hub, seat: str, token: str, delay: float
) -> dict[str, object]:
    """One seat: presses Start at `delay` with its own token, retries a 429 after its
    Retry-After; seconds from its first press to the first 200 of its server through the
    proxy."""
    await asyncio.sleep(delay)
    started = time.perf_counter()
    retries = 0
    own = {"Authorization": f"token {token}"}
    while True:
        url = f"{hub.api}/users/{seat}/server"
        r = await client.post(url, json={"user_options": {}}, headers=own)
        if r.status_code != 429:
            break
        retries += 1
        await asyncio.sleep(float(r.headers.get("Retry-After", "5")))
    if r.status_code not in (201, 202):
        raise RuntimeError(f"spawn of {seat} answered {r.status_code}: {r.text[:300]}")
    url, messages = await _wait_for_ready_event(client, hub, seat, own)
    r = await client.get(f"{hub.proxy}{url}api/status")
    if r.status_code != 200:
        raise RuntimeError(f"{seat}'s server answered {r.status_code} when ready")
    return {"seconds": time.perf_counter() - started, "retries": retries, "messages": messages}


def seat_jobs(seats: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Each seat's jobs in the queue: (job id, comment)."""
    argv = ["squeue", "--noheader", "--format=%i|%u|%k", f"--user={','.join(seats)}"]
    jobs: dict[str, list[tuple[str, str]]] = {s: [] for s in seats}
    for line in _run(argv, timeout=60).splitlines():
        job, user, comment = [*line.strip().split("|"), "", ""][:3]
        if user in jobs:
            jobs[user].append((job, comment))
    return jobs


def reported_jobs(seats: list[str], within_s: float = 15.0) -> dict[str, list[tuple[str, str]]]:
    """`seat_jobs` once every seat's job has its port report: a session wakes the hub before
    it writes its comment, so the last ones may still be writing when every seat is ready."""
    deadline = time.monotonic() + within_s
    while True:
        jobs = seat_jobs(seats)
        written = all(c.startswith("fhport:") for own in jobs.values() for _, c in own)
        if written or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def lost_and_duplicated(
    seats: list[str], ready: set[str], routes: dict[str, dict], jobs: dict[str, list]
) -> dict[str, list[str]]:
    """Seats whose server was lost (not ready, or no job, or no route) and those duplicated
    (two jobs or two routes, or a route shared with another seat, or a route that does not
    lead to the port its own job reported) (pure)."""
    by_seat: dict[str, list[str]] = {s: [] for s in seats}
    for spec, route in routes.items():
        user = (route.get("data") or {}).get("user")
        if user in by_seat:
            by_seat[user].append(route.get("target", spec))
    targets = [t for ts in by_seat.values() for t in ts]
    shared = {t for t in targets if targets.count(t) > 1}
    lost, duplicated = [], []
    for seat in seats:
        mine, own = by_seat[seat], jobs.get(seat, [])
        if seat not in ready or not mine or not own:
            lost.append(seat)
        elif len(mine) > 1 or len(own) > 1 or shared & set(mine):
            duplicated.append(seat)
        elif not mine[0].endswith(f":{own[0][1].removeprefix('fhport:')}"):
            duplicated.append(seat)  # routed somewhere its job did not report
    return {"lost": lost, "duplicated": duplicated}


async def factoryhub_round(hub: Hub, seats: list[str]) -> dict[str, object]:
    """Every seat presses Start within SPREAD_S; checks and memory with all of them ready;
    then every server stopped."""
    limits = httpx.Limits(max_connections=4 * len(seats) + 10)
    timeout = httpx.Timeout(CHECK_TIMEOUT_S)
    log = hub.pidfile.parent / "hub.log"
    log_start = log.stat().st_size if log.exists() else 0
    step = SPREAD_S / len(seats)
    async with httpx.AsyncClient(headers=hub.headers(), timeout=timeout, limits=limits) as client:
        await client.post(f"{hub.api}/users", json={"usernames": seats})  # 201, or 409 if known
        tokens = await seat_tokens(client, hub, seats)
        try:
            with MemoryWatch() as memory:
                began = time.perf_counter()
                outcomes = await asyncio.gather(
                    *(
                        _press_start(client, hub, s, tokens[s], i * step)
                        for i, s in enumerate(seats)
                    ),
                    return_exceptions=True,
                )
                span = time.perf_counter() - began
                pid = running_pid(hub.pidfile) or 0
                hub_memory = process_memory_kb(pid) if pid else {}
                lean = lean_servers_rss_kb(set(seats))
                routes = await _all_routes(client, hub)
                jobs = await asyncio.to_thread(reported_jobs, seats)
            stalls = loop_stalls(log, log_start)
        finally:
            await _stop_all(client, hub, seats)
    await asyncio.to_thread(wait_for_no_jobs, seats, 300)
    ready = {s for s, o in zip(seats, outcomes, strict=True) if isinstance(o, dict)}
    failures = [f"{s}: {o}"[:300] for s, o in zip(seats, outcomes, strict=True) if _failed(o)]
    good = [o for o in outcomes if isinstance(o, dict)]
    return {
        "times_s": sorted(o["seconds"] for o in good),
        "span_s": span,
        "retried_429": sum(1 for o in good if o["retries"]),
        "messages_min": min((o["messages"] for o in good), default=0),
        "failures": failures,
        "check": lost_and_duplicated(seats, ready, routes, jobs),
        "hub_kb": hub_memory,
        "lean_server_kb": _spread(lean),
        "lowest_available_mib": memory.lowest_mib,
        "loop_stalls_s": stalls,
    }


async def seat_tokens(client: httpx.AsyncClient, hub: Hub, seats: list[str]) -> dict[str, str]:
    """A token of each seat's own, made by the hub (what a seat that uses the REST API holds).
    Not the benchmark's service token: JupyterHub hashes a token given in its config 16,384
    times at every request (~1.9 ms here), one it made itself once, and no seat's request
    goes with a token from the config."""
    made = await asyncio.gather(
        *(
            client.post(f"{hub.api}/users/{s}/tokens", json={"note": "P7", "expires_in": 3600})
            for s in seats
        )
    )
    for r in made:
        r.raise_for_status()
    return {seat: r.json()["token"] for seat, r in zip(seats, made, strict=True)}


async def _all_routes(client: httpx.AsyncClient, hub: Hub) -> dict[str, dict]:
    """Every route of the hub's proxy: JupyterHub pages its API (at most 200 items a request,
    its api_page_max_limit), and 200 seats with the hub's own routes are more."""
    routes: dict[str, dict] = {}
    while True:
        params = {"offset": len(routes), "limit": 200}
        page = (await client.get(f"{hub.api}/proxy", params=params)).json()
        routes.update(page)
        if len(page) < 200:
            return routes


def _failed(outcome: object) -> bool:
    if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
        raise outcome
    return isinstance(outcome, Exception)


def _spread(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    return {"count": len(values), "median": statistics.median(values), "max": max(values)}


async def _stop_all(client: httpx.AsyncClient, hub: Hub, seats: list[str]) -> None:
    semaphore = asyncio.Semaphore(50)

    async def stop(seat: str) -> None:
        async with semaphore:
            await client.delete(f"{hub.api}/users/{seat}/server")

    await asyncio.gather(*(stop(s) for s in seats))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        r = await client.get(f"{hub.api}/users", params={"state": "active"})
        if not {u["name"] for u in r.json()} & set(seats):
            return
        await asyncio.sleep(1)
    raise RuntimeError("servers still active 600 s after stop")


# -- the floor -------------------------------------------------------------------------------


async def _floor_seat(
    seat: str, index: int, reservation: str, proxy: tuple[str, str], delay: float
) -> tuple[float, str]:
    """The same lean server, bare: an immediate allocation on the workshop's reservation and
    account as the seat, `srun` of the server, a route; ready at its first 200 through the
    proxy (the floor of P1-P3, `spawn._floor_one`, with the lean server)."""
    await asyncio.sleep(delay)
    prefix, port = f"/floor/{seat}/", FLOOR_PORTS + index
    started = time.perf_counter()
    request = ["--partition=training", f"--reservation={reservation}", f"--account={reservation}"]
    request += ["--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--mem=1G"]
    job_id = await floor_allocate(seat, request)
    env = {
        "PATH": f"{VENV}:/usr/bin:/bin",
        "JUPYTERHUB_API_TOKEN": secrets.token_hex(16),
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
    }
    server = [str(VENV / "python"), *LEAN[1:], "--ServerApp.ip=127.0.0.1"]
    server.append(f"--ServerApp.port={port}")
    await floor_serve(seat, job_id, server, port, prefix, proxy, env)
    return time.perf_counter() - started, job_id


async def floor_round(
    seats: list[str], reservation: str, proxy: tuple[str, str]
) -> dict[str, object]:
    step = SPREAD_S / len(seats)
    with MemoryWatch() as memory:
        outcomes = await asyncio.gather(
            *(_floor_seat(s, i, reservation, proxy, i * step) for i, s in enumerate(seats)),
            return_exceptions=True,
        )
        jobs = await asyncio.to_thread(seat_jobs, seats)
        lean = lean_servers_rss_kb(set(seats))
    good = [o for o in outcomes if isinstance(o, tuple)]
    failures = [f"{s}: {o}"[:300] for s, o in zip(seats, outcomes, strict=True) if _failed(o)]
    subprocess.run(["scancel", *(job for _, job in good)], check=False)
    await asyncio.to_thread(wait_for_no_jobs, seats, 300)
    return {
        "times_s": sorted(t for t, _ in good),
        "failures": failures,
        "seats_with_one_job": sum(1 for j in jobs.values() if len(j) == 1),
        "lean_server_kb": _spread(lean),
        "lowest_available_mib": memory.lowest_mib,
    }


# -- the series --------------------------------------------------------------------------------


def p7_series(
    scratch: Path, seats: int, repeat: int, spawn_limit: int | None = None
) -> dict[str, object]:
    """The workshop made, `repeat` rounds of floor then FactoryHub, the workshop ended and
    purged, the hub and proxy stopped whatever happens. `spawn_limit` sets JupyterHub's
    concurrent_spawn_limit (0: none) for an experiment; None keeps the demo site.toml's
    (`[hub] concurrent_spawn_limit`)."""
    base = scratch / "p7"
    base.mkdir(mode=0o755)
    limited = spawn_limit is not None
    catalogue = base / "catalogue"
    catalogue.mkdir(mode=0o755)
    hub, instance = start_factoryhub(
        scratch,
        hub_id="bench7",
        port_base=PORT_BASE,
        hub_changes={"catalogue_dir": str(catalogue)},
        extra_config=(
            f"c.Spawner.cmd = {LEAN!r}\nc.JupyterHub.load_roles[-1]['scopes'].append('proxy')\n"
            + (f"c.JupyterHub.concurrent_spawn_limit = {spawn_limit}\n" if limited else "")
        ),
    )
    floor_pidfile, floor_api, floor_token = start_floor_proxy(scratch)
    record: dict[str, object] = {"seats": seats, "spread_s": SPREAD_S, "lean_cmd": LEAN}
    record["spawn_limit"] = spawn_limit if limited else instance.site.hub.concurrent_spawn_limit
    record["spawn_limit_from"] = "experiment" if limited else "site.toml"
    name = ""
    try:
        course = seat_course(base, instance.site_path)
        name, made = create_workshop(instance.site_path, course, seats)
        record.update(workshop=name, made=made)
        names = seat_names(name, seats)
        runs: dict[str, list[dict]] = {"floor": [], "factoryhub": []}
        settles: list[float] = []
        for _ in range(repeat):
            proxy = (floor_api, floor_token)
            settles.append(settle())
            runs["floor"].append(asyncio.run(floor_round(names, f"ws-{name}", proxy)))
            settles.append(settle())
            runs["factoryhub"].append(asyncio.run(factoryhub_round(hub, names)))
        record["runs"] = runs
        record["settle_s"] = settles
    finally:
        stop_hub(instance)
        stop_daemon(floor_pidfile)
        if name:
            with contextlib.suppress(RuntimeError):
                record["ended"] = end_workshop(instance.site_path, name)
    record["summary"] = summarise_p7(record)
    return record


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def settle(busy_below: float = 0.15, window_s: float = 2.0, limit_s: float = 120.0) -> float:
    """Wait until the machine is quiet (under `busy_below` of its CPUs busy over `window_s`)
    before a round: 200 servers just stopped leave slurmctld, slurmdbd and MariaDB writing
    their accounting for a while, and a round started into that measured the floor's last
    seat between 15.5 and 27.6 s in one run. Seconds waited (at most `limit_s`)."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        busy0, total0 = _cpu_ticks()
        time.sleep(window_s)
        busy1, total1 = _cpu_ticks()
        if (busy1 - busy0) <= busy_below * max(total1 - total0, 1):
            break
    return round(time.monotonic() - started, 1)


def machine_memory() -> dict[str, int]:
    return {"available_mib_before": _available_mib(), "cpus": os.cpu_count() or 0}
