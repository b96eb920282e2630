"""The budget in sight: an account's allocation (Slurm's `GrpTRESMins`) and what its jobs have
used (`sshare`'s `GrpTRESRaw`, TRES-minutes that never decay on this site) or hold (its
running jobs' `TRESRunMins`), in words for the learner, and the check a request must pass
before it is submitted (pure).

Slurm enforces the same budget behind FactoryHub (`AccountingStorageEnforce=…,safe`): a job
starts only if its TRES × time limit fits in what is left; otherwise the QoS's DenyOnLimit
makes sbatch refuse it with a bare "AssocGrpGRESMinutes" (without it, it would pend for ever).
So a request over the budget is refused before submission, in words, with what would fit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .durations import describe_minutes

GPU = "gres/gpu"
CPU = "cpu"
SSHARE_FORMAT = "Account,User,GrpTRESMins,GrpTRESRaw,TRESRunMins"
_WHAT = {GPU: "GPU", CPU: "CPU"}


def parse_tres(text: str) -> dict[str, int]:
    """``cpu=600,gres/gpu=60`` → {"cpu": 600, "gres/gpu": 60}; unset or odd parts left out."""
    found = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name and value.isdigit():
            found[name] = int(value)
    return found


@dataclass(frozen=True)
class AccountBudget:
    """One account's TRES-minute limits, usage and what its running jobs hold."""

    account: str
    limits: dict[str, int] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)

    def left(self, tres: str) -> int | None:
        """TRES-minutes a new job may still take (None: no limit on `tres`)."""
        if tres not in self.limits:
            return None
        spent = self.used.get(tres, 0) + self.running.get(tres, 0)
        return max(0, self.limits[tres] - spent)


def parse_sshare(text: str) -> dict[str, AccountBudget]:
    """`sshare --noheader --parsable2 --long --format=SSHARE_FORMAT`: the accounts' rows (a
    user's row names a user and is left out; account names come indented)."""
    budgets = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 5 or parts[1].strip() or not parts[0].strip():
            continue
        account = parts[0].strip()
        budgets[account] = AccountBudget(
            account, parse_tres(parts[2]), parse_tres(parts[3]), parse_tres(parts[4])
        )
    return budgets


def hours(minutes: int) -> str:
    """TRES-minutes as hours with one decimal: 750 → "12.5"."""
    text = f"{minutes / 60:.1f}"
    return text.removesuffix(".0") if text.endswith(".0") else text


def describe_budget(budget: AccountBudget) -> list[str]:
    """ "You have 12.5 GPU-hours left on ai-research (3.5 used and 2 held by running jobs, of
    18)." for each limited kind, GPUs first."""
    lines = []
    for tres in (GPU, CPU):
        left = budget.left(tres)
        if left is None:
            continue
        used, held = budget.used.get(tres, 0), budget.running.get(tres, 0)
        held_text = f" and {hours(held)} held by running jobs" if held else ""
        lines.append(
            f"You have {hours(left)} {_WHAT[tres]}-hours left on {budget.account}"
            f" ({hours(used)} used{held_text}, of {hours(budget.limits[tres])})."
        )
    return lines


def charged_account(account: str, accounts: tuple[str, ...]) -> str:
    """The account a request charges: the one it names, else the learner's default."""
    return account or (accounts[0] if accounts else "")


def _count(count: int, what: str) -> str:
    return f"{count} {what}{'s' if count != 1 else ''}"


def budget_refusal(
    budget: AccountBudget | None, *, cpus: int, gpus: int, walltime_minutes: int
) -> str | None:
    """Why the account's budget cannot cover a request, with what would fit; None if it can."""
    if budget is None:
        return None
    walltime = describe_minutes(walltime_minutes)
    for tres, count in ((GPU, gpus), (CPU, cpus)):
        left = budget.left(tres)
        need = count * walltime_minutes
        if left is None or not count or need <= left:
            continue
        what = _WHAT[tres]
        head = (
            f"this session needs {hours(need)} {what}-hours ({_count(count, what)} × {walltime})"
            f" and {budget.account} has {hours(left)} {what}-hours left"
        )
        longest, most = left // count, left // walltime_minutes
        if longest < 1:
            return f"{head}: ask your project's manager for more, or use another account"
        fits = [f"at most {describe_minutes(longest)} with {_count(count, what)}"]
        if tres == GPU and 0 < most < count:
            fits.append(f"{_count(most, what)} for {walltime}")
        return f"{head}: ask for {' or '.join(fits)}"
    return None


def budget_json(accounts: tuple[str, ...], budgets: dict[str, AccountBudget] | None) -> dict:
    """The learner's accounts' budgets as the hub service answers them (JSON-ready): for each
    account with a limit, the sentences and the raw TRES-minutes."""
    if budgets is None:
        return {"known": False, "accounts": []}
    found = []
    for name in accounts:
        budget = budgets.get(name)
        if budget is None or not budget.limits:
            continue
        found.append(
            {
                "account": name,
                "lines": describe_budget(budget),
                "limits": budget.limits,
                "used": budget.used,
                "running": budget.running,
                "left": {tres: budget.left(tres) for tres in budget.limits},
            }
        )
    return {"known": True, "accounts": found}


def budget_from_json(data: dict) -> AccountBudget:
    """One account of `budget_json` back as an `AccountBudget` (the widget's check)."""
    return AccountBudget(
        str(data["account"]),
        {str(k): int(v) for k, v in data.get("limits", {}).items()},
        {str(k): int(v) for k, v in data.get("used", {}).items()},
        {str(k): int(v) for k, v in data.get("running", {}).items()},
    )
