"""A site's pool of training accounts for workshop seats (pure).

Support centres keep pre-created training accounts (`train001` … `train200`), handed out for
an event and returned after it. `site.toml` names them as Slurm host lists, the notation its
administrators already write (`[workshops] account_pool = ["train[001-060]", "guest[01-20]"]`).
A workshop takes its seats from the accounts that exist and no other workshop holds (one not
yet purged), in the pool's order; `workshop purge` returns them, disabled, with an empty home.
Without a pool, FactoryHub makes each workshop's seats (`ws-<name>-NN`) and deletes them at
purge.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .maintenance import expand_hostlist

MAX_POOL = 5000  # accounts one site's pool may name (a typo's range is refused, not expanded)
# a pool account is an ordinary Unix and Slurm user name: lower case, no '-' prefix, no '@'
ACCOUNT = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.ASCII)
_ENTRY = re.compile(r"[a-z_][a-z0-9_.-]*(?:\[\d{1,6}(?:-\d{1,6})?(?:,\d{1,6}(?:-\d{1,6})?)*\])?")


class PoolError(ValueError):
    """An `account_pool` entry that is not a list of account names; the message says which."""


def pool_accounts(entries: Collection[str]) -> tuple[str, ...]:
    """`["train[001-003]", "guest1"]` → train001, train002, train003, guest1 (in order, each
    once), or `PoolError` with a sentence."""
    names: list[str] = []
    for entry in entries:
        if not _ENTRY.fullmatch(entry):
            raise PoolError(
                f"workshops.account_pool: {entry[:40]!r} is not an account name or a range"
                " such as train[001-060]"
            )
        for low, high in re.findall(r"(\d+)(?:-(\d+))?", entry.partition("[")[2]):
            if high and int(high) < int(low):
                raise PoolError(f"workshops.account_pool: {entry!r} counts down ({low}-{high})")
            if len(names) + int(high or low) - int(low) >= MAX_POOL:
                raise PoolError(f"workshops.account_pool: more than {MAX_POOL} accounts")
        for name in expand_hostlist(entry):
            if not ACCOUNT.fullmatch(name):
                raise PoolError(f"workshops.account_pool: {name[:40]!r} is not an account name")
            names.append(name)
    if len(names) > MAX_POOL:
        raise PoolError(f"workshops.account_pool: more than {MAX_POOL} accounts")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class PoolState:
    """The pool when a workshop is planned: the free accounts, in order, and a sentence on
    those that are not (for the refusal when too few are free)."""

    free: tuple[str, ...]
    note: str


def pool_state(
    accounts: tuple[str, ...],
    existing: Collection[str],
    held_by: Mapping[str, str],
    staff: Collection[str] = (),
) -> PoolState:
    """Which of the pool's `accounts` a new workshop may take: those that exist (`existing`:
    the site's Unix accounts), are held by no workshop (`held_by`: account → workshop, for
    every workshop not yet purged) and are nobody's staff account (admins, trainers)."""
    missing = [a for a in accounts if a not in existing]
    held = [a for a in accounts if a in existing and a in held_by]
    staff_in_pool = [a for a in accounts if a in staff]
    free = tuple(
        a for a in accounts if a in existing and a not in held_by and a not in staff_in_pool
    )
    notes = []
    if held:
        workshops = sorted({held_by[a] for a in held})
        notes.append(f"{len(held)} held by workshop(s) {', '.join(workshops[:3])}")
    if missing:
        more = "…" if len(missing) > 3 else ""
        notes.append(f"{len(missing)} do not exist on this site: {', '.join(missing[:3])}{more}")
    if staff_in_pool:
        notes.append(f"{len(staff_in_pool)} are admins or trainers ({staff_in_pool[0]})")
    return PoolState(free, "; ".join(notes))
