"""Which Slurm releases FactoryHub reads (pure): the version a Slurm command prints, and the
rule that says whether FactoryHub was checked against it.

FactoryHub parses what Slurm's commands print (JSON from `squeue --json`, text from `scontrol`,
`sinfo`, `sacct`, `sacctmgr`, `sshare`). Those outputs are recorded for each release below from
Slurm's own sources (`tests/unit/data/slurm/<release>/`, see its README) and every parser is
tested against them. A release outside that range is not guessed at: it is named, in a
sentence, by `factoryhub site check` and in the hub's log at start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Each release with fixtures under tests/unit/data/slurm/ (22.05: the embedded site's).
TESTED_RELEASES = ("22.05", "23.02", "23.11", "24.05", "24.11", "25.05", "25.11")
OLDEST, NEWEST = (22, 5), (25, 11)

# "slurm 24.05.4", "slurm-wlm 22.05.8" (Debian), "slurm 23.11.0-0rc1", "24.05.4-1",
# "SLURM_VERSION = 25.05.0": the first dotted number with a major, a minor and a micro part.
_VERSION = re.compile(r"(?<![\d.])(\d{2})\.(\d{2})(?:\.(\d+))?")


@dataclass(frozen=True)
class SlurmVersion:
    """A Slurm release as its commands print it."""

    major: int
    minor: int
    micro: int = 0
    text: str = ""  # as printed, for sentences (bounded)

    @property
    def release(self) -> str:
        """``"24.05"``: the release series FactoryHub's fixtures are kept by."""
        return f"{self.major:02d}.{self.minor:02d}"

    def __str__(self) -> str:
        return f"{self.release}.{self.micro}"


def parse_slurm_version(text: str) -> SlurmVersion | None:
    """The version in what `scontrol --version` (or `sinfo --version`, or `scontrol show
    config`'s SLURM_VERSION) printed; None when there is none to read."""
    match = _VERSION.search(text or "")
    if match is None:
        return None
    major, minor = int(match.group(1)), int(match.group(2))
    if not 1 <= minor <= 12:
        return None
    return SlurmVersion(major, minor, int(match.group(3) or 0), text.strip()[:60])


@dataclass(frozen=True)
class VersionCheck:
    """Whether FactoryHub reads this Slurm, and the sentence that says so."""

    supported: bool
    sentence: str
    version: SlurmVersion | None = None


def check_slurm_version(text: str, what: str = "Slurm") -> VersionCheck:
    """Supported when the release is one FactoryHub's parsers were tested against
    (`TESTED_RELEASES`); otherwise a sentence saying what FactoryHub will and will not do.
    `what` names where the text came from ("Slurm's commands", "slurmctld")."""
    tested = f"{TESTED_RELEASES[0]} to {TESTED_RELEASES[-1]}"
    version = parse_slurm_version(text)
    if version is None:
        shown = (text or "").strip()[:60] or "nothing"
        return VersionCheck(
            False,
            f"{what}: cannot read a Slurm version from {shown!r}; FactoryHub reads Slurm"
            f" {tested} and will not guess what this Slurm prints",
        )
    if (version.major, version.minor) < OLDEST:
        return VersionCheck(
            False,
            f"{what} is Slurm {version}, older than any release FactoryHub reads ({tested}):"
            " its outputs differ (squeue --json before data parser v0.0.38); upgrade Slurm",
            version,
        )
    if version.release not in TESTED_RELEASES and (version.major, version.minor) < NEWEST:
        return VersionCheck(
            False,
            f"{what} is Slurm {version}, not a release FactoryHub was tested with ({tested})",
            version,
        )
    if (version.major, version.minor) > NEWEST:
        return VersionCheck(
            False,
            f"{what} is Slurm {version}, newer than any release FactoryHub was tested with"
            f" ({tested}): what it prints may differ, and FactoryHub refuses output it cannot"
            " read (a job table in an unknown JSON data parser) rather than guess",
            version,
        )
    return VersionCheck(True, f"{what} is Slurm {version} (tested: {tested})", version)
