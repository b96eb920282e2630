"""Output comparison with nbval's own rules, on a notebook papermill already executed.

nbval is a pytest plugin that executes notebooks itself; here papermill executes (parameters,
timeouts, the executed notebook as an artefact) and nbval's comparison is reused as a library:
its cell markers (``# NBVAL_IGNORE_OUTPUT``, tags ``nbval-ignore-output``, ``nbval-skip``,
``raises-exception``), its stream coalescing, its sanitising regexes and `compare_outputs`.
"""

from __future__ import annotations

import re
from collections import OrderedDict, defaultdict

import nbformat
from nbval.plugin import (
    IPyNbCell,
    coalesce_streams,
    find_comment_markers,
    find_metadata_tags,
    nocolors,
)

# What nbval leaves out of a comparison by default (IPyNbFile.skip_compare), images included.
SKIP_COMPARE = (
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
)


def cell_options(cell: dict, compare: bool) -> dict[str, bool]:
    """nbval's per-cell options: check (compare outputs), skip, check_exception."""
    options = defaultdict(bool, find_metadata_tags(cell.get("metadata", {})))
    options.update(dict(find_comment_markers(cell.get("source", ""))))
    options.setdefault("check", compare)
    return dict(options)


class _NotebookSettings:
    """What nbval's cell item reads from its parent notebook."""

    def __init__(self, sanitize: dict[str, str]) -> None:
        self.skip_compare = SKIP_COMPARE
        self.sanitize_patterns = OrderedDict((re.compile(k), v) for k, v in sanitize.items())


class OutputComparison:
    """Stands in for nbval's `IPyNbCell` so its comparison runs without pytest."""

    colors = nocolors

    def __init__(self, sanitize: dict[str, str]) -> None:
        self.parent = _NotebookSettings(sanitize)
        self.comparison_traceback: list[str] = []

    sanitize = IPyNbCell.sanitize

    def format_output_compare(self, key: str, left: object, right: object) -> None:
        """How a difference reads in the report (nbval's own version needs pytest's hooks)."""
        self.comparison_traceback += [
            f'output "{key}" differs; the reference has:',
            str(left)[:2000],
            "the run printed:",
            str(right)[:2000],
        ]

    def differences(self, executed: list, reference: list) -> str:
        """ "" when the outputs agree (after sanitising), else nbval's description."""
        self.comparison_traceback = []
        test = [nbformat.from_dict(o) for o in executed]
        ref = [nbformat.from_dict(o) for o in reference]
        same = IPyNbCell.compare_outputs(self, coalesce_streams(test), coalesce_streams(ref))
        return "" if same else "\n".join(str(line) for line in self.comparison_traceback)
