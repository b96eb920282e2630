"""A spawn's request is read once and checked in order — the site first, with no scheduler
call; then the learner's accounts; then the live controller and reservations — by a helper
that is handed what it needs (no spawner)."""

from __future__ import annotations

import pytest

from factoryhub import request as request_model
from factoryhub.scheduler.livesite import forget_readings
from factoryhub.spawners import options as hook
from factoryhub.spawners.options import RequestContext, RequestRefused, checked_request


@pytest.fixture
def ctx(demo_site, fake_slurm):
    forget_readings()
    hook._REFUSALS.clear()
    yield RequestContext(demo_site, "alice", "", fake_slurm)
    forget_readings()
    hook._REFUSALS.clear()


@pytest.fixture
def drafts(monkeypatch):
    """How many times a request is read (`draft_request`) from raw options."""
    count = []
    real = request_model.draft_request

    def counted(*args, **kwargs):
        count.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hook, "draft_request", counted)
    return count


async def test_a_good_request_is_read_once(ctx, fake_slurm, drafts):
    request = await checked_request({"partition": "gpu", "gpus": 1, "cpus": 4}, ctx)
    assert (request.partition, request.gpus, request.gpu_type) == ("gpu", 1, "h100")
    assert len(drafts) == 1
    assert [name for name, _ in fake_slurm.calls][:1] == ["sacctmgr"]


@pytest.mark.parametrize(
    "options",
    [
        {"cpus": 999},
        {"partition": "nope"},
        {"walltime": "forever"},
        {"account": "x\n#SBATCH --uid=0"},
        {"unknown": 1},
        ["not", "an", "object"],
    ],
)
async def test_bad_input_is_refused_before_any_scheduler_call(ctx, fake_slurm, options):
    with pytest.raises(RequestRefused) as refused:
        await checked_request(options, ctx)
    assert refused.value.status_code == 400 and refused.value.jupyterhub_message
    assert fake_slurm.calls == []


async def test_a_partition_kept_for_workshops_is_refused_to_others_before_any_scheduler_call(
    ctx, fake_slurm
):
    with pytest.raises(RequestRefused) as refused:
        await checked_request({"partition": "training", "cpus": 1, "memory_gb": 1}, ctx)
    assert refused.value.status_code == 400
    assert "training is kept for workshops" in refused.value.jupyterhub_message
    assert fake_slurm.calls == []


async def test_a_workshop_seat_may_use_the_partition_kept_for_workshops(
    ctx, fake_slurm, monkeypatch
):
    """A seat's request is its locked preset (here: the training partition on its
    reservation); it passes the site's checks and goes on to the scheduler's."""
    seat = {"partition": "training", "cpus": 1, "memory_gb": 1, "reservation": "ws-p7"}
    monkeypatch.setattr(hook, "seat_workshop", lambda site, user: object())
    monkeypatch.setattr(hook, "seat_options", lambda site, user, options: {**options, **seat})
    with pytest.raises(RequestRefused) as refused:  # the fake Slurm has no reservation ws-p7
        await checked_request({}, ctx)
    assert "kept for workshops" not in refused.value.jupyterhub_message
    assert "reservation" in refused.value.jupyterhub_message
    assert [name for name, _ in fake_slurm.calls][:1] == ["sacctmgr"]


async def test_a_bad_server_name_is_refused_before_any_scheduler_call(demo_site, fake_slurm):
    ctx = RequestContext(demo_site, "alice", "x;rm", fake_slurm)
    with pytest.raises(RequestRefused, match="server name"):
        await checked_request({}, ctx)
    assert fake_slurm.calls == []


async def test_an_account_not_yours_is_refused_before_the_controller_is_asked(ctx, fake_slurm):
    from factoryhub.slurmoutput import Associations

    fake_slurm.accounting = Associations(("training",), ("normal",))
    with pytest.raises(RequestRefused, match="not available to you"):
        await checked_request({"account": "ai-research"}, ctx)
    assert [name for name, _ in fake_slurm.calls] == ["sacctmgr"]


async def test_a_controller_that_does_not_answer_is_503(ctx, fake_slurm):
    fake_slurm.down = True
    with pytest.raises(RequestRefused) as refused:
        await checked_request({}, ctx)
    assert refused.value.status_code == 503


async def test_a_rooms_starts_within_a_second_share_one_controller_ping(ctx, fake_slurm):
    """Each start asks whether the controller answers before anything else of Slurm (a down
    controller is refused in milliseconds, not sbatch's ~18 s); twenty starts at once ask it
    once, as a room pressing Start would."""
    import asyncio

    pings = []
    ping = fake_slurm.controller_up

    async def counted() -> bool:
        pings.append(1)
        await asyncio.sleep(0.01)  # the ping takes a moment: the others arrive meanwhile
        return await ping()

    fake_slurm.controller_up = counted
    starts = [checked_request({"partition": "cpu"}, ctx) for _ in range(20)]
    assert len(await asyncio.gather(*starts)) == 20
    assert len(pings) == 1
