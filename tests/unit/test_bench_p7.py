"""P7's judgement (benchmarks/p7.py, pure parts): which seats were lost or duplicated, from the
hub's routes and the queue; the summary and the docs section from a record."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
p7 = pytest.importorskip("p7")
report = pytest.importorskip("p7report")

SEATS = ["ws-p7a-001", "ws-p7a-002", "ws-p7a-003"]


def _route(user: str, port: int) -> dict:
    return {"target": f"http://127.0.0.1:{port}", "data": {"user": user, "server_name": ""}}


def _jobs(**ports: int) -> dict[str, list[tuple[str, str]]]:
    return {seat: [(str(100 + i), f"fhport:{ports[seat]}")] for i, seat in enumerate(ports)}


def test_every_seat_on_its_own_server_is_neither_lost_nor_duplicated():
    ports = dict(zip(SEATS, (40001, 40002, 40003), strict=True))
    routes = {f"/user/{s}/": _route(s, p) for s, p in ports.items()}
    routes["/"] = {"target": "http://127.0.0.1:26081", "data": {"hub": True}}
    check = p7.lost_and_duplicated(SEATS, set(SEATS), routes, _jobs(**ports))
    assert check == {"lost": [], "duplicated": []}


def test_lost_and_duplicated_seats_are_named():
    ports = dict(zip(SEATS, (40001, 40002, 40003), strict=True))
    jobs = _jobs(**ports)
    routes = {f"/user/{s}/": _route(s, p) for s, p in ports.items()}
    routes["/user/ws-p7a-002/"] = _route("ws-p7a-002", 40001)  # on seat 1's server
    jobs["ws-p7a-003"] = []  # its job is gone
    check = p7.lost_and_duplicated(SEATS, set(SEATS), routes, jobs)
    assert check == {"lost": ["ws-p7a-003"], "duplicated": ["ws-p7a-001", "ws-p7a-002"]}
    jobs = _jobs(**ports)
    jobs["ws-p7a-001"].append(("999", ""))  # two jobs for one seat
    routes = {f"/user/{s}/": _route(s, p) for s, p in ports.items()}
    check = p7.lost_and_duplicated(SEATS, {"ws-p7a-001", "ws-p7a-002"}, routes, jobs)
    assert check == {"lost": ["ws-p7a-003"], "duplicated": ["ws-p7a-001"]}


def _round(times: list[float], **extra: object) -> dict:
    return {"times_s": times, "failures": [], "lowest_available_mib": 9000, **extra}


def test_the_summary_and_the_docs_section(tmp_path):
    hub_round = _round(
        [1.0, 2.0, 4.0],
        span_s=14.0,
        retried_429=1,
        check={"lost": [], "duplicated": []},
        hub_kb={"VmRSS": 300 * 1024, "VmHWM": 350 * 1024},
        lean_server_kb={"count": 3, "median": 21 * 1024, "max": 22 * 1024},
    )
    record = {
        "seats": 3,
        "spread_s": 10.0,
        "repeat": 1,
        "lean_cmd": p7.LEAN,
        "made": {"create_s": "12.0"},
        "machine": {"available_mib_before": 20000},
        "runs": {"floor": [_round([1.0, 2.0, 2.0])], "factoryhub": [hub_round]},
    }
    record["summary"] = report.summarise_p7(record)
    summary = record["summary"]
    assert summary["factoryhub_x_floor"]["last"] == 2.0
    assert (summary["lost"], summary["duplicated"], summary["hub_rss_mib"]) == (0, 0, 300)
    page = tmp_path / "performance.md"
    page.write_text("# Performance\n\n## P4, P6\n\nend\n")
    report.write_p7_section(report.p7_section(record, "benchmarks/run.py --p7"), page)
    first = page.read_text()
    assert "## P7: a workshop of 3 seats pressing Start within 10 s" in first
    assert "| 3 | 3 / 3 | 0 | 0 | 2.00 / 2.00 / 2.00 | 2.00 / 4.00 / 4.00 | 2.00" in first
    report.write_p7_section(report.p7_section(record, "benchmarks/run.py --p7"), page)
    assert page.read_text() == first  # replaced, not added twice
    assert first.index("## P7") < first.index("## P4, P6")


async def test_every_route_is_read_across_the_hubs_pages():
    """JupyterHub answers /hub/api/proxy 200 routes at a time: the first 200-seat run read one
    page and counted the last two seats as lost."""
    import httpx

    routes = {f"/user/ws-p7a-{i:03d}/": _route(f"ws-p7a-{i:03d}", 40000 + i) for i in range(202)}

    def page(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json=dict(list(routes.items())[offset : offset + limit]))

    hub = p7.Hub("factoryhub", "http://hub/hub/api", "http://hub", REPO, 10.0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(page)) as client:
        assert await p7._all_routes(client, hub) == routes
