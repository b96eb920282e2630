"""What a site adds to the jobs FactoryHub submits (pure; site.toml is checked with it when it
is read, and every job script checks it again when it is rendered).

- ``[slurm] extra_directives``: options every job gets, e.g. ``--constraint=h100``; only
  placement and notification options, never one FactoryHub sets itself (partition, time,
  resources, account, output, name, comment, export, signal, user).
- ``[environments.<name>] prologue``: lines of shell run before the command of every job in that
  environment, e.g. ``module load cuda/12.2``; written by the site's administrator, one line each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a site may add to every job (`[slurm] extra_directives`): placement and notification
# only. What FactoryHub sets itself (partition, time, resources, account, output, name,
# comment, export, signal, user) is not among them.
EXTRA_DIRECTIVES = (
    "constraint",
    "prefer",
    "exclude",
    "licenses",
    "hint",
    "tmp",
    "gres-flags",
    "network",
    "cpu-freq",
    "mail-type",
    "mail-user",
    "exclusive",
    "requeue",
    "no-requeue",
)
_DIRECTIVE = re.compile(r"--([a-z-]{2,20})(?:=([A-Za-z0-9_.,:@+=/&|!*()\[\]-]{1,200}))?", re.ASCII)
_PROLOGUE_LINE = re.compile(r"[^\x00-\x1f\x7f]{1,300}")


class HookError(ValueError):
    """A site hook a job script cannot carry."""


def check_extra_directive(text: str) -> str:
    """`text` if it is ``--name`` or ``--name=value`` with an allowed name and a plain value."""
    match = _DIRECTIVE.fullmatch(text)
    if not match or match.group(1) not in EXTRA_DIRECTIVES:
        allowed = ", ".join(f"--{name}" for name in EXTRA_DIRECTIVES)
        raise HookError(f"extra directive {text[:60]!r}: allowed are {allowed}")
    return text


def check_prologue_line(text: str) -> str:
    """One line of shell the site runs before a job's command: a single line of text."""
    if not _PROLOGUE_LINE.fullmatch(text):
        raise HookError(f"prologue line {text[:60]!r}: one line of at most 300 characters")
    return text


@dataclass(frozen=True)
class SiteHooks:
    """What the site adds to every job of an environment (validated again when used)."""

    extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    # a session's server command runs under this argv (a container image's runtime), with
    # these options added (its environment's kernel as the default); see factoryhub.software
    launcher: tuple[str, ...] = ()
    server_args: tuple[str, ...] = ()
