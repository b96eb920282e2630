"""Validation reports: JUnit XML for CI and an HTML page for trainers — per notebook and per
cell: time, status, the failing cell's traceback, resources and an energy estimate."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from factoryhub.course import Course
from factoryhub.energy import JobUsage, estimate_energy
from factoryhub.site import EnergySettings

from .execute import NotebookResult

FAILING = ("failed", "error", "timeout", "dead-kernel")


_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def junit_xml(results: list[NotebookResult]) -> str:
    """One test suite per course, one test case per notebook."""
    suites = ET.Element("testsuites", name="factoryhub course validate")
    for course in sorted({r.course for r in results}):
        mine = [r for r in results if r.course == course]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=course,
            tests=str(len(mine)),
            failures=str(sum(r.status != "passed" for r in mine)),
            time=f"{sum(r.seconds for r in mine):.2f}",
        )
        for result in mine:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=course,
                name=result.notebook,
                time=f"{result.seconds:.2f}",
            )
            if result.status != "passed":
                failure = ET.SubElement(case, "failure", message=result.message[:500])
                failure.text = (
                    "\n\n".join(
                        f"cell {c.index}: {c.status}: {c.message}\n{c.traceback}"
                        for c in result.cells
                        if c.status in FAILING
                    )
                    or result.message
                )
    return _NOT_XML.sub("", ET.tostring(suites, encoding="unicode"))


def _energy(course: Course | None, seconds: float, factors: EnergySettings) -> str:
    if course is None:
        return ""
    res = course.resources
    usage = JobUsage(cpus=res.cpus, seconds=seconds, gpus=res.gpus)
    return estimate_energy(usage, factors).label()


def _resources(course: Course | None) -> str:
    if course is None:
        return ""
    r = course.resources
    gpus = f", {r.gpus} GPU" if r.gpus else ""
    return f"{r.partition}: {r.cpus} CPU{gpus}, {r.memory_gb} GB"


def _cells_table(result: NotebookResult) -> str:
    rows = []
    for cell in result.cells:
        detail = html.escape(cell.message[:1000])
        if cell.traceback:
            detail += f"<pre>{html.escape(cell.traceback[-4000:])}</pre>"
        rows.append(
            f"<tr class='{html.escape(cell.status[:40])}'><td>{cell.index}</td>"
            f"<td>{html.escape(cell.status[:40])}</td><td>{cell.seconds:.2f} s</td>"
            f"<td>{detail}</td></tr>"
        )
    head = "<tr><th>Cell</th><th>Status</th><th>Time</th><th>Detail</th></tr>"
    return f"<table class='cells'>{head}{''.join(rows)}</table>"


STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
.passed { background: #e8f5e9; } .failed, .error, .timeout, .dead-kernel { background: #ffebee; }
.unchecked, .not-run { color: #777; } pre { white-space: pre-wrap; font-size: 85%; }
summary { cursor: pointer; font-weight: bold; }
"""


def html_report(
    results: list[NotebookResult], courses: dict[str, Course], factors: EnergySettings
) -> str:
    """The trainer's page: a summary table, then each notebook's cells."""
    passed = sum(r.status == "passed" for r in results)
    summary = []
    details = []
    for r in results:
        course = courses.get(r.course)
        status = html.escape(r.status[:40])  # from a result file the trainer's job wrote
        summary.append(
            f"<tr class='{status}'><td>{html.escape(r.course)}</td><td>{html.escape(r.notebook)}"
            f"</td><td>{status}</td><td>{r.seconds:.1f} s</td>"
            f"<td>{html.escape(r.job_id[:40])} {html.escape(r.node[:100])}</td>"
            f"<td>{html.escape(_resources(course))}</td>"
            f"<td>{html.escape(_energy(course, r.seconds, factors))}</td>"
            f"<td>{html.escape(r.message[:300])}</td></tr>"
        )
        details.append(
            f"<details{' open' if r.status != 'passed' else ''}><summary>"
            f"{html.escape(r.course)}/{html.escape(r.notebook)}: {status}</summary>"
            f"{_cells_table(r)}</details>"
        )
    head = (
        "<tr><th>Course</th><th>Notebook</th><th>Status</th><th>Time</th><th>Job, node</th>"
        "<th>Resources</th><th>Energy (estimate)</th><th>First problem</th></tr>"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Course validation</title>"
        f"<style>{STYLE}</style></head><body><h1>Course validation</h1>"
        f"<p>{passed} of {len(results)} notebooks passed · {datetime.now():%Y-%m-%d %H:%M}</p>"
        f"<table>{head}{''.join(summary)}</table>{''.join(details)}</body></html>"
    )


def write_reports(
    results: list[NotebookResult],
    courses: dict[str, Course],
    factors: EnergySettings,
    directory: Path,
) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    xml_path = directory / "validation.xml"
    html_path = directory / "validation.html"
    xml_path.write_text(junit_xml(results), encoding="utf-8")
    html_path.write_text(html_report(results, courses, factors), encoding="utf-8")
    return xml_path, html_path
