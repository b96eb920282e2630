"""P7's figures (pure): the summary of a record, its table, plot and docs/performance.md
section (benchmarks/p7.py measures; benchmarks/run.py writes)."""

from __future__ import annotations

import statistics
from pathlib import Path

from spawn import percentiles

P7_START, P7_END = "<!-- P7 start -->", "<!-- P7 end -->"


def _verdicts(s: dict) -> str:
    """The issue's two goals, said as measured (pure)."""
    if not s:
        return "No complete round: no verdict."
    ratio, peak = s["factoryhub_x_floor"]["last"], s["hub_peak_mib"]
    time_goal = "met" if ratio <= 1.1 else "**not met**"
    memory_goal = "met" if peak < 1024 else "**not met**"
    return (
        f"Goals: the last seat ready within 1.1× the floor's last: {time_goal} ({ratio:.2f}×);"
        f" the hub under 1 GB with every server running: {memory_goal} (peak {peak:.0f} MiB)."
    )


def _retries(p7: dict) -> str:
    s = p7["summary"]
    spans = ", ".join(f"{r['span_s']:.0f}" for r in p7.get("runs", {}).get("factoryhub", []))
    limit = p7.get("spawn_limit")
    if p7.get("spawn_limit_from") == "site.toml":
        setting = f"{limit}, as the demo site.toml's `[hub] concurrent_spawn_limit` sets it"
    elif limit is None:  # a record from before the setting: JupyterHub's own default
        setting = "JupyterHub's default, 100, which FactoryHub left as it was"
    else:
        setting = f"{limit} for this experiment (0: none)"
    told = s.get("retried_429", 0) if s else 0
    return (
        f"JupyterHub's `concurrent_spawn_limit` ({setting}) answers a Start beyond that many"
        " spawns in progress with 429 and a Retry-After of 30-60 s (its"
        " `spawn_throttle_retry_range`); such a seat waits that long and presses again, its time"
        f" still running from its first press. Seats told to retry: {told} (most in a round)."
        f" From the first press to the last seat ready: {spans} s."
    )


def p7_section(p7: dict, command: str) -> str:
    """docs/performance.md's P7 section from a P7 record."""
    s = p7["summary"]
    before = p7["machine"]["available_mib_before"]
    lowest = s["lowest_available_mib"] if s else before
    failures = ", ".join(
        f"{k} {sum(len(r['failures']) for r in v)}" for k, v in p7.get("runs", {}).items()
    )
    made = p7.get("made", {}).get("create_s", "?")
    step_ms = p7["spread_s"] / p7["seats"] * 1000
    return f"""{P7_START}
## P7: a workshop of {p7["seats"]} seats pressing Start within {p7["spread_s"]:g} s

Measured with `{command}` (benchmarks/p7.py): {p7["repeat"]} round(s), each the floor then
FactoryHub, on this 2-core machine with other work running beside it. A real workshop is made
with `factoryhub workshop create` ({made} s for its {p7["seats"]} seat accounts, its Slurm
account and its reservation) on the embedded site's **training partition** (2 nodes × 128
declared CPUs, `ReqResv=YES`; site.toml `workshops_only = true`), from a course whose preset is
1 CPU, 1 GB, 1 h there. Each seat presses Start {step_ms:.0f} ms after the one before; its time
runs from its own first press to the first 200 of its server through the proxy. Afterwards
`workshop end` and `purge` leave nothing.

{p7_table(p7)}

{_verdicts(s)}

![P7: each seat's time to ready](../benchmarks/results/p7.png)

- **floor**: each seat, with no hub, takes an immediate allocation on the workshop's
  reservation and account (`salloc --immediate`), starts the same lean server in it (`srun`)
  and gets a route in a configurable-http-proxy; ready at the first 200 of its `api` through
  the proxy (P1-P3's floor, with the lean server).
- **FactoryHub**: each seat asks the hub for its server (REST, as the join page's start does;
  the seat's locked preset fills in the rest) and waits on its progress stream, then for the
  first 200 through the proxy.
- **429**: {_retries(p7)}
- **ready / lost / duplicated**: with FactoryHub's servers ready, a seat is lost when it has no
  ready server, no job or no route, and duplicated when it has two jobs or two routes, shares a
  route's target with another seat, or its route is not at the port its own job reported
  (`squeue` and every route of `/hub/api/proxy`). Failed spawns: {failures}.
- **memory**: the JupyterHub process's VmRSS and VmHWM (peak) with every server running; the
  lean servers' RSS is the median per server. The machine's lowest MemAvailable during the
  rounds: {lowest:,} MiB of {before:,} MiB available before.
- **the lean single-user server** (`factoryhub.demo.leanserver`, for the benchmarks only):
  200 JupyterLabs (~90 MB each) do not fit in this 24-GiB machine beside Slurm's 200 steps, so
  both sides run a standard-library asyncio HTTP server that does what a hub needs of a session
  and nothing else. It listens on one IPv4 socket at a port the system picks; when FactoryHub's
  session extension is named on its command line (the spawner names it; the floor does not, as
  a bare jupyterhub-singleuser would report nothing) it wakes the hub through
  `FACTORYHUB_READY_FD` with its port, then writes the port into its job's comment
  (`fhport:<port>`, with `scontrol`, as the seat); it answers the hub's proof challenge with
  the HMAC under the session's token, and every other request under its prefix with
  jupyter-server's version JSON. The hub runs it as `c.Spawner.cmd = {p7["lean_cmd"]!r}`,
  to which the spawner appends its `--ServerApp.*` arguments (taken and ignored). It serves no
  files, runs no kernel and checks no login. What it leaves out is left out on both sides, so
  the difference measured is the hub's own: the request's checks, the allocation and step, the
  port report and proof, the route, the progress stream.
{P7_END}"""


def write_p7_section(section: str, page: Path) -> None:
    """Replace the P7 section of the page (or add it before P4, P6)."""
    text = page.read_text(encoding="utf-8")
    if P7_START in text and P7_END in text:
        head, rest = text.split(P7_START, 1)
        text = head + section + rest.split(P7_END, 1)[1]
    else:
        text = text.replace("## P4, P6", f"{section}\n\n## P4, P6", 1)
    page.write_text(text, encoding="utf-8")


def summarise_p7(record: dict) -> dict[str, object]:
    """Per system the median over rounds of p50/p95/last, ratios pair by pair (pure)."""
    runs = record.get("runs") or {}
    if not runs or not all(r["times_s"] for rs in runs.values() for r in rs):
        return {}
    stats = {k: [percentiles(r["times_s"]) for r in v] for k, v in runs.items()}
    pairs = list(zip(stats["factoryhub"], stats["floor"], strict=True))
    hub_runs = runs["factoryhub"]
    return {
        "median": {
            k: {q: statistics.median(s[q] for s in v) for q in ("p50", "p95", "last")}
            for k, v in stats.items()
        },
        "ready": {k: [len(r["times_s"]) for r in v] for k, v in runs.items()},
        "factoryhub_x_floor": {
            q: statistics.median(a[q] / b[q] for a, b in pairs) for q in ("p50", "last")
        },
        "lost": max(len(r["check"]["lost"]) for r in hub_runs),
        "duplicated": max(len(r["check"]["duplicated"]) for r in hub_runs),
        "retried_429": max(r["retried_429"] for r in hub_runs),
        "hub_rss_mib": max(r["hub_kb"].get("VmRSS", 0) for r in hub_runs) / 1024,
        "hub_peak_mib": max(r["hub_kb"].get("VmHWM", 0) for r in hub_runs) / 1024,
        "lean_server_mib": statistics.median(r["lean_server_kb"].get("median", 0) for r in hub_runs)
        / 1024,
        "lowest_available_mib": min(r["lowest_available_mib"] for v in runs.values() for r in v),
    }


def p7_table(record: dict) -> str:
    s = record["summary"]
    if not s:
        return "P7: no complete round (see the failures in p7.json)"
    m = s["median"]
    rows = [
        "| seats | ready, each round (floor / FactoryHub) | lost | duplicated"
        " | floor p50 / p95 / last (s)"
        " | FactoryHub p50 / p95 / last (s) | FactoryHub × floor (last) | hub RSS / peak (MiB)"
        " | lean server RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {record['seats']} | {', '.join(map(str, s['ready']['floor']))}"
        f" / {', '.join(map(str, s['ready']['factoryhub']))}"
        f" | {s['lost']} | {s['duplicated']}"
        f" | {_three(m['floor'])} | {_three(m['factoryhub'])}"
        f" | {s['factoryhub_x_floor']['last']:.2f}"
        f" | {s['hub_rss_mib']:.0f} / {s['hub_peak_mib']:.0f} | {s['lean_server_mib']:.1f} |",
    ]
    return "\n".join(rows)


def _three(stats: dict[str, float]) -> str:
    return " / ".join(f"{stats[q]:.2f}" for q in ("p50", "p95", "last"))


def plot_p7(record: dict, path: Path) -> None:
    """Each seat's time to ready, in order, floor and FactoryHub (every round)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=100)
    ax = figure.subplots()
    colours = {"floor": "#9e9e9e", "factoryhub": "#1565c0"}
    for system, rounds in (record.get("runs") or {}).items():
        for i, r in enumerate(rounds):
            label = f"{system} (round {i + 1})" if len(rounds) > 1 else system
            ax.plot(range(1, len(r["times_s"]) + 1), r["times_s"], color=colours[system],
                    alpha=1.0 if i == 0 else 0.5, label=label)  # fmt: skip
    ax.set_xlabel("seats ready, in order")
    ax.set_ylabel("seconds from the seat's Start")
    ax.set_title(
        f"P7: {record['seats']} seats press Start within {record['spread_s']:g} s", fontsize=9
    )
    ax.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
