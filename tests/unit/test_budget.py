"""The budget in sight: sshare's budgets read (real 22.05 output), said in words, a request over
them refused with what would fit, the cache (one sshare for every form and start) and what the
spawn form and the service show."""

import pytest

from factoryhub.budget import (
    AccountBudget,
    budget_from_json,
    budget_json,
    budget_refusal,
    charged_account,
    describe_budget,
    hours,
    parse_sshare,
    parse_tres,
)
from factoryhub.request import RequestError, ResourceRequest

# `sshare --noheader --parsable2 --long --format=Account,User,GrpTRESMins,GrpTRESRaw,TRESRunMins`
# as the hub's account (a Slurm operator) got it on the embedded site, 2 Dec 2026.
TRES0 = "cpu=0,mem=0,energy=0,node=0,billing=0,fs/disk=0,vmem=0,pages=0,gres/gpu=0"
SSHARE = (
    "root|||cpu=5,mem=15170,energy=0,node=2,billing=5,fs/disk=0,vmem=0,pages=0,gres/gpu=0|"
    f"{TRES0}\n"
    f" root|root||{TRES0}|{TRES0}\n"
    f" ai-research||cpu=600000,gres/gpu=60000|{TRES0.replace('gres/gpu=0', 'gres/gpu=210')}|"
    f"{TRES0.replace('gres/gpu=0', 'gres/gpu=120')}\n"
    f"  ai-research|alice||{TRES0}|{TRES0}\n"
    " training||cpu=6000000,gres/gpu=600000|cpu=5,mem=15170,energy=0,node=2,billing=5,"
    f"fs/disk=0,vmem=0,pages=0,gres/gpu=0|{TRES0}\n"
)


def test_sshare_is_read_account_by_account():
    budgets = parse_sshare(SSHARE)
    assert set(budgets) == {"root", "ai-research", "training"}  # users' rows left out
    ai = budgets["ai-research"]
    assert ai.limits == {"cpu": 600000, "gres/gpu": 60000}
    assert (ai.used["gres/gpu"], ai.running["gres/gpu"]) == (210, 120)
    assert ai.left("gres/gpu") == 60000 - 210 - 120
    assert budgets["root"].left("gres/gpu") is None  # no limit
    assert parse_tres("cpu=5,gres/gpu=x,=3,mem") == {"cpu": 5}


def test_the_budget_in_words():
    budget = AccountBudget("ai-research", {"gres/gpu": 1080}, {"gres/gpu": 210}, {"gres/gpu": 120})
    assert describe_budget(budget) == [
        "You have 12.5 GPU-hours left on ai-research (3.5 used and 2 held by running jobs, of 18)."
    ]
    cpu = AccountBudget("training", {"cpu": 600}, {}, {})
    assert describe_budget(cpu) == ["You have 10 CPU-hours left on training (0 used, of 10)."]
    assert hours(0) == "0" and hours(45) == "0.8"
    assert charged_account("", ("training", "x")) == "training"
    assert charged_account("x", ("training", "x")) == "x" and charged_account("", ()) == ""


GPU_BUDGET = AccountBudget("ai-research", {"gres/gpu": 750, "cpu": 6000}, {}, {})


@pytest.mark.parametrize(
    ("cpus", "gpus", "minutes", "expected"),
    [
        (1, 2, 360, None),  # 12 GPU-hours of 12.5
        (
            1,
            2,
            480,
            "this session needs 16 GPU-hours (2 GPUs × 8 h) and ai-research has 12.5 GPU-hours"
            " left: ask for at most 6 h 15 min with 2 GPUs or 1 GPU for 8 h",
        ),
        (
            1,
            4,
            600,
            "this session needs 40 GPU-hours (4 GPUs × 10 h) and ai-research has 12.5 GPU-hours"
            " left: ask for at most 3 h 7 min with 4 GPUs or 1 GPU for 10 h",
        ),
        (
            8,
            0,
            900,
            "this session needs 120 CPU-hours (8 CPUs × 15 h) and ai-research has 100 CPU-hours"
            " left: ask for at most 12 h 30 min with 8 CPUs",
        ),
    ],
)
def test_a_request_over_the_budget_is_explained_with_what_fits(cpus, gpus, minutes, expected):
    assert budget_refusal(GPU_BUDGET, cpus=cpus, gpus=gpus, walltime_minutes=minutes) == expected


def test_an_empty_budget_and_no_budget():
    spent = AccountBudget("training", {"gres/gpu": 60}, {"gres/gpu": 60}, {})
    why = budget_refusal(spent, cpus=1, gpus=1, walltime_minutes=30)
    assert why.endswith(
        "has 0 GPU-hours left: ask your project's manager for more, or use another account"
    )
    assert budget_refusal(None, cpus=64, gpus=8, walltime_minutes=10**5) is None
    assert budget_refusal(spent, cpus=64, gpus=0, walltime_minutes=600) is None  # GPUs only


def test_the_services_json_names_only_the_callers_accounts():
    budgets = parse_sshare(SSHARE)
    body = budget_json(("training", "ai-research"), budgets)
    assert [a["account"] for a in body["accounts"]] == ["training", "ai-research"]
    ai = body["accounts"][1]
    assert ai["left"]["gres/gpu"] == 60000 - 330
    assert budget_from_json(ai) == budgets["ai-research"]
    assert budget_json(("training",), None) == {"known": False, "accounts": []}


def request(**fields) -> ResourceRequest:
    values = dict(partition="gpu", cpus=1, memory_gb=2, walltime_minutes=480, environment="d")
    values.update(fields)
    return ResourceRequest(**values)


async def test_one_sshare_serves_every_check_and_a_refusal_names_the_walltime(fake_slurm):
    from factoryhub.scheduler.budgets import BUDGET_MAX_AGE, budget_cache, check_budget

    fake_slurm.budgets = {"ai-research": GPU_BUDGET}
    for _ in range(5):
        await check_budget(fake_slurm, request(gpus=1), ("ai-research",))
    with pytest.raises(RequestError) as refused:
        await check_budget(fake_slurm, request(gpus=2, account="ai-research"), ("training",))
    assert refused.value.field == "walltime"
    assert "ask for at most 6 h 15 min with 2 GPUs" in str(refused.value)
    await check_budget(fake_slurm, request(gpus=2), ("training", "ai-research"))  # no budget
    assert fake_slurm.count("sshare") == 1
    assert await budget_cache(fake_slurm).get(BUDGET_MAX_AGE) == {"ai-research": GPU_BUDGET}


async def test_no_accounting_database_no_budget(fake_slurm):
    from factoryhub.scheduler.budgets import check_budget

    await check_budget(fake_slurm, request(gpus=4, walltime_minutes=10**4), ("training",))
    assert fake_slurm.count("sshare") == 1


def test_the_form_shows_the_budget(demo_site):
    from factoryhub.spawners.form import render_options_form
    from factoryhub.spawners.notices import Notices

    line = "You have 12.5 GPU-hours left on ai-research (3.5 used, of 16)."
    html = render_options_form(demo_site, notices=Notices(budget=(line,)))
    assert f'<ul id="fh-budget" class="list-unstyled"><li>{line}</li></ul>' in html
