"""A learner's notebook as a trainer sees it, read-only (pure: no request is made here).

The notebook is the learner's, so hostile: its markdown, outputs (text/html, SVG, JavaScript,
widgets, Mermaid) and file names are written by someone who may want a script to run in the
trainer's browser, on the hub service's origin. Three things keep that from happening:

- the path a trainer asks for is checked before anything is fetched (`notebook_path`,
  `folder_path`): relative, bounded, no ``.``/``..`` segment, no control character;
- the notebook is rendered by nbconvert's ``HTMLExporter`` (its ``basic`` template: the cells
  only, no script loader, no inlined stylesheet) with ``sanitize_html`` on, so JavaScript and
  widget outputs are dropped and HTML and markdown go through bleach;
- everything nbconvert produced is cleaned once more with a strict allow-list
  (`clean_rendered`): some of its blocks are written without escaping (a ``text/vnd.mermaid``
  output, a raw cell) and an allow-list does not depend on knowing which.

The service then serves the page with a Content-Security-Policy that allows no script at all
and sandboxes it (`service.notebook_view`).
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import bleach

if TYPE_CHECKING:
    from nbformat import NotebookNode

MAX_PATH = 255  # characters of a path a trainer may ask for
MAX_BYTES = 5 * 1024 * 1024  # the most of a notebook (as the contents API sends it) read
MAX_ENTRIES = 500  # entries of a folder listed
NOTEBOOK_SUFFIX = ".ipynb"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]")  # what browsers drop from a URL before reading it
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*")
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
ALLOWED_TAGS = frozenset(
    {
        *("a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details"),
        *("div", "dl", "dt", "em", "hr", "i", "img", "kbd", "li", "ol", "p", "pre", "s"),
        *("samp", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td"),
        *("tfoot", "th", "thead", "tr", "u", "ul"),
        *_HEADINGS,
    }
)


class PathError(ValueError):
    """A path a trainer may not ask for; the message says why, in a sentence."""


class NotebookError(ValueError):
    """What the learner's server sent is not a notebook that can be shown."""


def _checked(path: str) -> str:
    if not isinstance(path, str):
        raise PathError("give the path as text")
    if len(path) > MAX_PATH:
        raise PathError(f"the path is longer than {MAX_PATH} characters")
    if _CONTROL.search(path) or "\\" in path:
        raise PathError("the path has a control character or a backslash")
    if path.startswith("/"):
        raise PathError("give the path from the learner's home folder, without a leading /")
    parts = path.split("/") if path else []
    if any(part in ("", ".", "..") for part in parts):
        raise PathError("the path has an empty, '.' or '..' part")
    return path


def notebook_path(path: str) -> str:
    """`path` if a trainer may ask to see it: a notebook (``.ipynb``) under the learner's home,
    as the contents API names it (relative, '/'-separated); `PathError` otherwise."""
    _checked(path)
    if not path.endswith(NOTEBOOK_SUFFIX) or path.rsplit("/", 1)[-1] == NOTEBOOK_SUFFIX:
        raise PathError("only notebooks (.ipynb files) can be looked at")
    return path


def folder_path(path: str) -> str:
    """`path` if a trainer may list it: a folder under the learner's home ("" for the home)."""
    return _checked(path)


@dataclass(frozen=True)
class Entry:
    """A folder or notebook of a listing, with the path it is asked for by."""

    name: str
    path: str
    kind: str  # "directory" or "notebook"


def listing(model: object, folder: str) -> list[Entry]:
    """The folders and notebooks of a contents-API folder model, sorted, folders first, at
    most `MAX_ENTRIES`. Each path is made from `folder` and the entry's name (never the path
    the server says), and an entry whose name would not pass `folder_path` is left out."""
    content = model.get("content") if isinstance(model, dict) else None
    entries = []
    for item in content if isinstance(content, list) else []:
        name = item.get("name") if isinstance(item, dict) else None
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(name, str) or "/" in name or kind not in ("directory", "notebook"):
            continue
        path = f"{folder}/{name}" if folder else name
        try:
            notebook_path(path) if kind == "notebook" else folder_path(path)
        except PathError:
            continue
        entries.append(Entry(name, path, kind))
    entries.sort(key=lambda e: (e.kind != "directory", e.name.lower()))
    return entries[:MAX_ENTRIES]


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    """The attributes kept: classes (for the page's own stylesheet), links out of the page
    (http, https, mailto, or to a heading of it), images only as data: URLs of picture types,
    table spans and heading anchors. No style, no event handler, no relative URL (it would be
    a request to the service, as the trainer)."""
    if name == "class":
        return True
    url = _URL_NOISE.sub("", value).lower()
    if tag == "a":
        return name == "title" or (
            name == "href" and url.startswith(("http://", "https://", "mailto:", "#"))
        )
    if tag == "img":
        return name in ("alt", "width", "height") or (
            name == "src" and _DATA_IMAGE.fullmatch(value.strip()) is not None
        )
    if tag in ("td", "th"):
        return name in ("colspan", "rowspan")
    return tag in _HEADINGS and name == "id"


def clean_rendered(html: str) -> str:
    """`html` with only `ALLOWED_TAGS` and `_allowed_attribute`'s attributes; anything else
    is shown as text (a learner's ``<script>`` reads as such), comments dropped."""
    return bleach.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=_allowed_attribute,
        protocols={"http", "https", "mailto", "data"},  # data: only where the filter allows
        strip_comments=True,
    )


def read_notebook(model: object) -> NotebookNode:
    """The notebook of a contents-API notebook model (``type=notebook``, content as JSON), as
    nbformat's v4 node; `NotebookError` when it is not one."""
    import nbformat  # with nbconvert, only when a trainer looks (see `render_notebook`)

    content = model.get("content") if isinstance(model, dict) else None
    if not isinstance(content, dict):
        raise NotebookError("the learner's server did not send a notebook")
    try:
        notebook = nbformat.reads(json.dumps(content), as_version=4)
        nbformat.validate(notebook)
    except (ValueError, RecursionError, nbformat.ValidationError) as exc:
        raise NotebookError("this is not a notebook Jupyter can read") from exc
    return notebook


def render_notebook(model: object) -> str:
    """The cells of the notebook in a contents-API model, as sanitised HTML (no ``<html>``
    frame: the service's template gives it one)."""
    # nbconvert and nbformat are imported here, not at the top: the hub service starts with
    # the hub, and only a trainer looking at a notebook needs them (about a second to import).
    from nbconvert import HTMLExporter

    notebook = read_notebook(model)
    exporter = HTMLExporter(
        template_name="basic",
        sanitize_html=True,
        # never read a file the markdown names (a learner's ![](/etc/…) on the service's host)
        embed_images=False,
    )
    # nbconvert's own clean_html keeps too little to read a notebook by (no paragraph, heading
    # or image: a markdown cell shows as escaped tags), so it uses this module's allow-list
    exporter.register_filter("clean_html", clean_rendered)
    body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": "notebook"}})
    return clean_rendered(body)


def highlight_css() -> str:
    """Pygments' stylesheet for the code cells nbconvert highlights (class ``highlight``)."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style="default").get_style_defs(".highlight")


def main() -> int:
    """``python -m factoryhub.notebookview``: a contents-API notebook model (JSON) on standard
    input, its sanitised HTML on standard output; exit status 2 and a sentence on standard
    error when it is not a notebook. The hub service runs this in a process of its own that
    it kills past a time limit: nbconvert's markdown and bleach's parser take about half a
    minute per megabyte of tag-dense markdown, which a learner can write on purpose."""
    warnings.simplefilter("ignore")  # nbconvert's "cannot be represented" for widget outputs
    try:
        html = render_notebook(json.loads(sys.stdin.buffer.read()))
    except NotebookError as exc:
        sys.stderr.write(str(exc))
        return 2
    except (ValueError, RecursionError):
        sys.stderr.write("this is not a notebook Jupyter can read")
        return 2
    sys.stdout.buffer.write(html.encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
