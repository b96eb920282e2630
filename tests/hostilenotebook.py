"""A learner's notebook written to attack whoever looks at it (issue 15's read-only view), and
an audit of a page for anything that could run or fetch: shared by the unit and integration
tests of `factoryhub.notebookview` and `service.notebook_view`."""

from __future__ import annotations

import base64
from html.parser import HTMLParser

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script>'
    '<a href="javascript:alert(3)"><circle r="4"/></a></svg>'
)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n not really").decode()


class _Audit(HTMLParser):
    """Everything in a page that could run or fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed", "svg", "style", "form", "base"):
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                self.problems.append(f"{tag} {name}=")
            if name == "href" and not value.startswith(("http://", "https://", "mailto:", "#")):
                self.problems.append(f"href={value[:30]}")
            if name == "src" and not value.startswith("data:image/"):
                self.problems.append(f"src={value[:30]}")

    def handle_data(self, data):
        self.text.append(data)


def audit(html: str) -> _Audit:
    checked = _Audit()
    checked.feed(html)
    return checked


def hostile_notebook() -> dict:
    def out(data: dict, metadata: dict | None = None) -> dict:
        return {"output_type": "display_data", "metadata": metadata or {}, "data": data}

    markdown = (
        "# Week 1\n\nSome **bold** text.\n\n<script>alert('md')</script>\n\n"
        "<img src=x onerror=alert('img')>\n\n[click me](javascript:alert('link'))\n\n"
        "[site](https://example.org)\n\n"
        + SVG
        + "\n\n<a href='data:text/html,<script>x</script>'>d</a>"
    )
    html = (
        "<b>ok</b><script>alert(6)</script><img src=x onerror=alert(7)>"
        "<a href='javascript:alert(8)'>j</a><iframe src='https://evil.example'></iframe>"
        "<div style='background:url(https://evil.example/x)'>s</div>"
    )
    outputs = [
        out({"text/html": html}),
        out({"image/svg+xml": SVG}),
        out({"application/javascript": "alert('js')"}),
        out({"text/vnd.mermaid": "graph TD\n</pre><script>alert('mermaid')</script>"}),
        out({"text/html": "<script>alert('isolated')</script>"}, {"text/html": {"isolated": True}}),
        out({"text/markdown": "<svg><script>alert(12)</script></svg> [x](JaVa\tScRiPt:alert(13))"}),
        out({"application/vnd.jupyter.widget-view+json": {"model_id": "</script><script>alert()"}}),
        out({"image/png": PNG}),
        {"output_type": "stream", "name": "stdout", "text": "<script>alert(15)</script>"},
    ]
    code = {
        "cell_type": "code",
        "id": "c1",
        "metadata": {"tags": ['"><script>alert("tag")</script>']},
        "execution_count": 1,
        "source": "print('<script>not run</script>')",
        "outputs": outputs,
    }
    raw = {"cell_type": "raw", "id": "r1", "metadata": {}, "source": "<script>alert(1)</script>"}
    cells = [{"cell_type": "markdown", "id": "m1", "metadata": {}, "source": markdown}, raw, code]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}
