"""`make bench`: FactoryHub against its peers, side by side in one run, alternating, with ratios.

Measured here: P1–P3 and P5 (time to ready for 1, 10 and 50 learners and the steady state with
50 servers, against stock batchspawner 1.3.0 and the machine's floor: benchmarks/spawn.py), P4
(course validation against a loop of papermill's command line on the same notebooks) and P6 (a
two-worker Dask cluster through the widget against dask-jobqueue used directly), and P7 (a
workshop's 200 seats pressing Start within 10 s against the floor: benchmarks/p7.py). Results:
benchmarks/results/<name>.json (with versions and the machine), PNG plots, and the tables in
docs/performance.md. `--smoke` runs one tiny round of each so the harness cannot rot (part of
`make test`; never P7). `--p7` runs P7 alone and rewrites its section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from p7 import machine_memory, p7_series
from p7report import p7_section, p7_table, plot_p7, write_p7_section
from spawn import spawn_series

REPO = Path(__file__).resolve().parent.parent
SCRATCH = Path(tempfile.mkdtemp(prefix="factoryhub-bench-"))
SCRATCH.chmod(0o755)  # the learner's and trainer's runs read and write below it
VENV = Path("/opt/factoryhub/venv/bin")
RESULTS = REPO / "benchmarks" / "results"
# The benchmark's own accounts (made by `bench_accounts`): never the demo's learners or homes.
LEARNER, TRAINER = "fhbench", "fhbenchtr"


def bench_accounts() -> None:
    """The benchmark's learner and trainer exist, with the site's Slurm associations."""
    import secrets

    from factoryhub.demo.accounts import DemoAccount, ensure_accounts
    from factoryhub.site import load_site

    site = load_site(REPO / "hub_config" / "site.toml")
    accounts = tuple(DemoAccount(n, secrets.token_urlsafe(16)) for n in (LEARNER, TRAINER))
    ensure_accounts(accounts, site.hub.allowed_group, site.access)


def as_user(user: str, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """argv run as `user` with their HOME, and `env` on top."""
    extra = [f"{k}={v}" for k, v in (env or {}).items()]
    home = f"HOME=/home/{user}"
    return [
        "/usr/sbin/runuser",
        "-u",
        user,
        "--",
        "/usr/bin/env",
        home,
        f"USER={user}",
        *extra,
        *argv,
    ]


def timed(argv: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=cwd, capture_output=True, text=True, timeout=1800)
    return time.perf_counter() - started


def site_env() -> dict[str, str]:
    from factoryhub.site import SITE_ENV, load_site, public_site_data

    site = load_site(REPO / "hub_config" / "site.toml")
    return {
        SITE_ENV: json.dumps(public_site_data(site)),
        "PATH": f"{VENV}:/usr/bin:/bin",  # as in a session: the environment's tools first
    }


def p6(repeat: int) -> dict[str, object]:
    """Two-worker cluster to first result: widget vs dask-jobqueue, alternating."""
    # the learner runs it: a copy below SCRATCH, since a checkout may sit in a directory only
    # root can read (a `mktemp -d` clone, /root)
    probe = SCRATCH / "dask_start.py"
    shutil.copyfile(REPO / "benchmarks" / "dask_start.py", probe)
    probe.chmod(0o644)
    env = site_env()
    runs: dict[str, list[float]] = {"factoryhub widget": [], "dask-jobqueue": []}
    for _ in range(repeat):
        for name, mode in (("factoryhub widget", "widget"), ("dask-jobqueue", "direct")):
            out = subprocess.run(
                as_user(LEARNER, [str(VENV / "python"), str(probe), mode], env),
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
                cwd=f"/home/{LEARNER}",
            )
            runs[name].append(float(out.stdout.strip().splitlines()[-1]))
    return summary(runs, "factoryhub widget", "dask-jobqueue", target="≤ 1.2× dask-jobqueue")


def papermill_loop(courses: list[Path]) -> list[str]:
    """One shell-free command per notebook: papermill's CLI with the course's smoke parameters."""
    from factoryhub.course import load_course

    commands = []
    for folder in courses:
        course = load_course(folder)
        for notebook in course.notebooks:
            params = course.validation.parameters_for(notebook)
            argv = [str(VENV / "papermill"), notebook, f"executed-{notebook}"]
            for key, value in params.items():
                argv += ["-y", f"{key}: {json.dumps(value)}"]
            commands.append(json.dumps({"cwd": str(folder), "argv": argv}))
    return commands


def p4(courses: list[Path], repeat: int) -> dict[str, object]:
    """Course validation on Slurm vs papermill's CLI run notebook after notebook (as trainer)."""
    validate = [
        str(VENV / "factoryhub"),
        "course",
        "validate",
        "--on",
        "slurm",
        "--as",
        TRAINER,
        "--reports",
        str(SCRATCH / "reports"),
        *map(str, courses),
    ]
    loop = papermill_loop(courses)
    env = site_env()
    runs: dict[str, list[float]] = {"factoryhub course validate": [], "papermill CLI loop": []}
    loop_cpu: list[float] = []
    for _ in range(repeat):
        runs["factoryhub course validate"].append(timed(validate, cwd=REPO))
        started, cpu = time.perf_counter(), _machine_busy_cpu()
        for item in map(json.loads, loop):
            work = SCRATCH / "papermill" / Path(item["cwd"]).name
            subprocess.run(["rm", "-rf", str(work)], check=True)
            work.parent.mkdir(exist_ok=True)
            subprocess.run(["cp", "-r", item["cwd"], str(work)], check=True)
            subprocess.run(["chown", "-R", TRAINER, str(work)], check=True)
            subprocess.run(
                as_user(TRAINER, item["argv"], env),
                check=True,
                cwd=work,
                capture_output=True,
                timeout=1800,
            )
        runs["papermill CLI loop"].append(time.perf_counter() - started)
        loop_cpu.append(_machine_busy_cpu() - cpu)
    result = summary(
        runs, "papermill CLI loop", "factoryhub course validate", target="factoryhub ≥ 2× faster"
    )
    # The loop's work in CPU seconds (the whole machine's, nested jobs included): spread perfectly
    # over this machine's cores it could not take less, which bounds any parallel run.
    result["papermill_loop_cpu_s"] = statistics.median(loop_cpu)
    result["best_possible_ratio"] = statistics.median(
        t / (c / (os.cpu_count() or 1))
        for t, c in zip(runs["papermill CLI loop"], loop_cpu, strict=True)
    )
    return result


def _machine_busy_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait), so
    the loop's nested Slurm jobs (ddp-training's tasks, dask-slurm's workers) count too."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(values) - values[3] - values[4]
    return busy / os.sysconf("SC_CLK_TCK")


def summary(runs: dict[str, list[float]], num: str, den: str, target: str) -> dict[str, object]:
    """Medians and the pair-by-pair ratio num/den."""
    ratios = [a / b for a, b in zip(runs[num], runs[den], strict=True)]
    return {
        "runs_s": runs,
        "median_s": {k: statistics.median(v) for k, v in runs.items()},
        "ratio": f"{num} / {den}",
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "target": target,
    }


def versions() -> dict[str, str]:
    names = [
        "factoryhub",
        "jupyterhub",
        "dask",
        "distributed",
        "dask-jobqueue",
        "papermill",
        "nbval",
        "torch",
    ]
    found = {n: metadata.version(n) for n in names}
    found["slurm"] = subprocess.run(["sinfo", "-V"], capture_output=True, text=True).stdout.strip()
    found["python"] = platform.python_version()
    return found


def machine() -> dict[str, object]:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
    }


def plot(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3), dpi=100)
    axes = figure.subplots(1, len(results))
    for ax, (name, result) in zip(
        list(axes) if len(results) > 1 else [axes], results.items(), strict=True
    ):
        medians = result["median_s"]
        ax.bar(list(medians), list(medians.values()), color=["#1565c0", "#9e9e9e"])
        ax.set_title(f"{name}: {result['ratio_median']:.2f}x", fontsize=9)
        ax.set_ylabel("seconds (median)")
        ax.tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path)


def table(results: dict[str, dict]) -> str:
    rows = [
        "| benchmark | FactoryHub (median s) | peer (median s) | ratio (median, pair by pair)"
        " | target |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ours = next(v for k, v in r["median_s"].items() if "factoryhub" in k)
        peer = next(v for k, v in r["median_s"].items() if "factoryhub" not in k)
        ratio = f"{r['ratio']} = {r['ratio_median']:.2f}"
        rows.append(f"| {name} | {ours:.1f} | {peer:.1f} | {ratio} | {r['target']} |")
    return "\n".join(rows)


def spawn_table(spawns: dict[str, dict]) -> str:
    rows = [
        "| benchmark | learners | floor p50 / last (s) | FactoryHub p50 / p95 / last (s)"
        " | batchspawner p50 / p95 / last (s) | FactoryHub × floor (last) | batchspawner ÷"
        " FactoryHub (last) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in spawns.items():
        m = r["median"]

        def cell(system: str, keys: tuple[str, ...], m=m, r=r) -> str:
            failed = r["failed"][system]
            note = (
                f" ({failed} of {r['learners'] * len(r['stats'][system])} failed)" if failed else ""
            )
            return " / ".join(f"{m[system][k]:.2f}" for k in keys) + note

        rows.append(
            f"| {name} | {r['learners']} | {cell('floor', ('p50', 'last'))}"
            f" | {cell('factoryhub', ('p50', 'p95', 'last'))}"
            f" | {cell('batchspawner', ('p50', 'p95', 'last'))}"
            f" | {r['factoryhub_x_floor']['last']:.2f}"
            f" | {r['batchspawner_over_factoryhub']['last']:.2f} |"
        )
    return "\n".join(rows)


def hub_table(spawns: dict[str, dict]) -> str:
    """While the learners wait: what their pages were told, and the hub's event loop."""
    rows = [
        "| benchmark | system | fewest progress messages a learner saw | event-loop stalls > 1 s"
        " | longest stall (s) |",
        "|---|---|---|---|---|",
    ]
    for name, r in spawns.items():
        for system, h in r.get("hubs", {}).items():
            rows.append(
                f"| {name} | {system} | {h['fewest_messages']} | {h['loop_stalls']}"
                f" | {h['longest_stall_s']:.2f} |"
            )
    return "\n".join(rows)


def steady_table(spawns: dict[str, dict]) -> str:
    rows = [
        "| system | servers | window (s) | job queries (sdiag) | poll interval (s)"
        " | queries per poll interval | hub CPU (s per minute) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in spawns.values():
        for system, st in r["steady"].items():
            rows.append(
                f"| {system} | {r['learners']} | {st['window_s']:.0f} | {st['job_queries']}"
                f" | {st['poll_interval_s']:g} | {st['queries_per_poll_interval']:.2f}"
                f" | {st['hub_cpu_s_per_min']:.2f} |"
            )
    return "\n".join(rows)


def plot_spawns(spawns: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3 * len(spawns) + 1, 3), dpi=100)
    axes = figure.subplots(1, len(spawns))
    axes = list(axes) if len(spawns) > 1 else [axes]
    colours = {"floor": "#9e9e9e", "factoryhub": "#1565c0", "batchspawner": "#e65100"}
    for ax, (name, r) in zip(axes, spawns.items(), strict=True):
        systems = list(r["median"])
        ax.bar(
            systems, [r["median"][k]["last"] for k in systems], color=[colours[k] for k in systems]
        )
        ax.set_title(f"{name}: last learner ready", fontsize=9)
        ax.set_ylabel("seconds (median)")
        ax.tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path)


def run_p7(
    seats: int, repeat: int, out: Path, command: str, spawn_limit: int | None = None
) -> dict:
    """P7 with its JSON, plot and docs section."""
    before = machine_memory()
    record = p7_series(SCRATCH, seats, repeat, spawn_limit)
    record.update(repeat=repeat, machine={**machine(), **before}, versions=versions())
    out.mkdir(parents=True, exist_ok=True)
    (out / "p7.json").write_text(json.dumps(record, indent=1))
    if record.get("runs"):
        plot_p7(record, out / "p7.png")
    print(p7_table(record))
    return record


def performance_page(record: dict) -> str:
    """docs/performance.md from a full run (written by `make bench`, committed)."""
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    m = record["machine"]
    p4 = record["results"]["P4 course validation"]
    p4_bound = p4["papermill_loop_cpu_s"] / m["cpus"]
    spawn_reps = ", ".join(
        f"{v['learners']} × {len(v['stats']['floor'])}" for v in record["spawn"].values()
    )
    return f"""# Performance

Measured by `make bench` (benchmarks/run.py, benchmarks/spawn.py): FactoryHub and its peers in
the same run, alternating; medians, and the median of the pair-by-pair ratios. Raw figures:
[benchmarks/results/bench.json](../benchmarks/results/bench.json).

## P1–P3: time to ready (learners pressing start at once)

From each learner's spawn request (REST, what the form posts) to the first 200 of their server
through the proxy, waiting on the hub's progress event stream. Every repetition runs the floor,
FactoryHub and stock batchspawner 1.3.0 in turn (learners × repetitions: {spawn_reps}); the
same session everywhere (partition cpu, 1 CPU, 1 GB, 1 h), on the same embedded Slurm with its
default scheduler settings.

{spawn_table(record["spawn"])}

![last learner ready](../benchmarks/results/bench-spawn.png)

A spawn that failed (the hub reported it, or its server did not answer once the hub said it was
ready) is left out of the times, counted in the table ("k of n failed") and listed with its error
in bench.json (`spawn` → size → `runs` → system → `failures`).

While they wait: the fewest progress messages any learner's page showed before "ready" (the
hub's "Server requested" counts as one), and the hub's own warnings that its event loop did
not answer for more than a second (JupyterHub logs each).

{hub_table(record["spawn"])}

- **floor**: the same single-user server (`jupyterhub-singleuser` from FactoryHub's environment)
  with no spawner: an immediate allocation (`salloc --immediate`, then `srun`), a route in a
  configurable-http-proxy, ready at the first 200 of its `api` endpoint (no authentication;
  the hubs' servers answer an authenticated `api/status`).
- **FactoryHub**: the demo site's settings; an immediate allocation when the partition has
  room, the batch queue otherwise.
- **batchspawner**: stock 1.3.0 in its own environment (benchmarks/peer/), configured as its
  README says, with the same JupyterHub, JupyterLab and session size.

## P5: steady state with running servers

Job-information RPCs served by slurmctld (`sdiag`) and the CPU time of the hub process and the
commands it ran (utime + stime + cutime + cstime) over a window with every server of the largest
size running (idle). FactoryHub's hub also checks its routes every 5 s (`last_activity_interval`,
so a restarted proxy gets its routes back within seconds, F15); stock JupyterHub every 300 s.

{steady_table(record["spawn"])}

{p7_section(record["p7"], "make bench") if record.get("p7") else ""}

## P4, P6

{table(record["results"])}

![medians](../benchmarks/results/bench.png)

- **P4**: `factoryhub course validate --on slurm` on every course in notebooks/
  ({", ".join(record["courses"])}) — papermill execution *and* nbval comparison, one Slurm job per
  notebook, in parallel — against papermill's command line run notebook after notebook as the
  trainer, with the same smoke parameters (execution only, no comparison); {record["repeat"]}
  pairs. During the loop the machine was busy {p4["papermill_loop_cpu_s"]:.0f} CPU seconds
  (nested Slurm jobs included): spread perfectly over its {m["cpus"]} cores that still takes
  {p4_bound:.0f} s, so no parallel run of these notebooks can be more than
  {p4["best_possible_ratio"]:.2f}× faster than the loop here.
- **P6**: seconds from the start of a fresh Python process until a two-worker Slurm-backed Dask
  cluster returned a result: `factoryhub.widgets.SessionCluster` (TLS, private dashboard socket,
  reaper) against dask-jobqueue's `SLURMCluster` with the same partition, worker size and
  walltime; {record["repeat"]} pairs.

Machine: {m["platform"]}, {m["cpus"]} CPUs, {m["memory_gb"]} GiB. Versions: {versions}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one tiny round of each")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--spawn-only",
        action="store_true",
        help="P1 (five rounds) and P3 with P5 (one round) against the peers; no P4, P6 or page",
    )
    parser.add_argument(
        "--p7",
        action="store_true",
        help="P7 alone (a workshop's seats pressing Start against the floor); its docs section",
    )
    parser.add_argument("--p7-seats", type=int, default=200)
    parser.add_argument("--p7-repeat", type=int, default=1)
    parser.add_argument(
        "--p7-spawn-limit",
        type=int,
        default=None,
        help="an experiment: JupyterHub's concurrent_spawn_limit for P7's hub (0: none)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the benchmark's hubs
    if args.p7:
        command = f"benchmarks/run.py --p7 --p7-seats {args.p7_seats}"
        command += f" --p7-repeat {args.p7_repeat}"
        if args.p7_spawn_limit is not None:
            command += f" --p7-spawn-limit {args.p7_spawn_limit}"
        record = run_p7(args.p7_seats, args.p7_repeat, args.out, command, args.p7_spawn_limit)
        if args.out == RESULTS:  # a trial run elsewhere leaves the page alone
            write_p7_section(p7_section(record, command), REPO / "docs" / "performance.md")
        return 0
    courses = sorted(p.parent for p in (REPO / "notebooks").glob("*/course.toml"))
    sizes, steady_s = {"P1 one learner": (1, 5), "P2 10 learners": (10, 3)}, 60.0
    sizes["P3 50 learners"] = (50, 2)
    if args.smoke:
        courses, args.repeat = [REPO / "notebooks" / "first-steps"], 1
        sizes, steady_s = {"P1 one learner": (1, 1)}, 5.0
    if args.spawn_only:
        sizes = {"P1 one learner": (1, 5), "P3 50 learners": (50, 1)}
    bench_accounts()
    spawns, site_events = spawn_series(SCRATCH, sizes, steady_s)
    results: dict[str, dict] = {}
    p7 = None
    if not args.spawn_only:
        results["P4 course validation"] = p4(courses, args.repeat)
        results["P6 Dask cluster"] = p6(args.repeat)
    if not args.spawn_only and not args.smoke:  # P7 takes minutes: never in CI's smoke run
        p7 = run_p7(args.p7_seats, args.p7_repeat, args.out, "make bench")
    name = "smoke" if args.smoke else "spawn" if args.spawn_only else "bench"
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": machine(),
        "versions": versions(),
        "courses": [c.name for c in courses],
        "repeat": args.repeat,
        "spawn": spawns,
        "site_events": site_events,
        "results": results,
        "p7": p7,
    }
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
    if results:
        plot(results, args.out / f"{name}.png")
    plot_spawns(spawns, args.out / f"{name}-spawn.png")
    print(
        spawn_table(spawns),
        hub_table(spawns),
        steady_table(spawns),
        table(results) if results else "",
        sep="\n\n",
    )
    if not args.smoke and not args.spawn_only:
        (REPO / "docs" / "performance.md").write_text(performance_page(record), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
