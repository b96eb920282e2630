"""A trainer's read-only look at a learner's notebook (issue 15): the paths a trainer may ask
for, a hostile folder listing, and a hostile notebook rendered with nothing left that runs."""

from __future__ import annotations

import time

import pytest
from hostilenotebook import PNG, audit, hostile_notebook

from factoryhub.notebookview import (
    MAX_ENTRIES,
    MAX_PATH,
    NotebookError,
    PathError,
    clean_rendered,
    folder_path,
    listing,
    notebook_path,
    read_notebook,
    render_notebook,
)
from factoryhub.service import notebook_view
from factoryhub.service.notebook_view import (
    LIST_CSP,
    VIEW_CSP,
    _told,
    _unavailable,
    contents_url,
    proxy_origin,
    should_tell,
)
from factoryhub.site import HubSettings, Site


@pytest.mark.parametrize(
    "path", ["a.ipynb", "week 1/Übung 2.ipynb", "deep/er/x.ipynb", "x" * 249 + ".ipynb"]
)
def test_a_notebook_under_the_home_may_be_asked_for(path):
    assert notebook_path(path) == path


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("../ws-other-01/a.ipynb", "'..'"),
        ("a/../../b.ipynb", "'..'"),
        ("./a.ipynb", "'.'"),
        ("a//b.ipynb", "empty"),
        ("/etc/secret.ipynb", "leading /"),
        ("notes.txt", ".ipynb"),
        ("a.ipynb/", "empty"),
        (".ipynb", ".ipynb"),
        ("a\x00.ipynb", "control character"),
        ("a\nb.ipynb", "control character"),
        ("a\\..\\b.ipynb", "backslash"),
        ("x" * MAX_PATH + ".ipynb", f"longer than {MAX_PATH}"),
        (["a.ipynb"], "as text"),
    ],
)
def test_a_path_out_of_the_home_or_not_a_notebook_is_refused_with_a_sentence(path, said):
    with pytest.raises(PathError, match=said):
        notebook_path(path)


def test_a_folder_is_the_home_or_under_it():
    assert folder_path("") == "" and folder_path("week 1/data") == "week 1/data"
    for bad in ("..", "a/..", "/", "a/", "/tmp"):
        with pytest.raises(PathError):
            folder_path(bad)


def test_the_address_quotes_each_part_so_a_name_cannot_add_a_part_or_a_query():
    url = contents_url(
        "http://127.0.0.1:8000", "/", "ws-a-01", "d ir/a?b#c%2F..%2Fx.ipynb", type="notebook"
    )
    assert url == (
        "http://127.0.0.1:8000/user/ws-a-01/api/contents/"
        "d%20ir/a%3Fb%23c%252F..%252Fx.ipynb?type=notebook"
    )
    home = contents_url("https://hub:443", "/jh/", "ws-a-01", "", type="directory")
    assert home == "https://hub:443/jh/user/ws-a-01/api/contents/?type=directory"


def test_the_proxy_is_where_it_listens():
    site = Site(hub=HubSettings(url="https://hub.example.org", bind_url="http://127.0.0.1:8000"))
    assert proxy_origin(site) == "http://127.0.0.1:8000"
    assert proxy_origin(Site(hub=HubSettings(url="http://127.0.0.1:18000/"))) == (
        "http://127.0.0.1:18000"
    )


def test_a_listing_keeps_folders_and_notebooks_with_paths_made_here():
    model = {
        "content": [
            {"name": "b.ipynb", "type": "notebook", "path": "/etc/passwd"},  # path ignored
            {"name": "A", "type": "directory"},
            {"name": "data.csv", "type": "file"},
            {"name": "../x.ipynb", "type": "notebook"},  # a "/" in a name
            {"name": "..", "type": "directory"},
            {"name": "evil\x1b[31m.ipynb", "type": "notebook"},
            {"name": 7, "type": "notebook"},
            "junk",
        ]
    }
    entries = listing(model, "week 1")
    assert [(e.name, e.path, e.kind) for e in entries] == [
        ("A", "week 1/A", "directory"),
        ("b.ipynb", "week 1/b.ipynb", "notebook"),
    ]
    many = {"content": [{"name": f"{i}.ipynb", "type": "notebook"} for i in range(900)]}
    assert len(listing(many, "")) == MAX_ENTRIES
    assert listing({"content": "not a list"}, "") == [] and listing([], "") == []


def test_a_hostile_notebook_renders_with_nothing_that_runs_or_fetches():
    page = render_notebook({"content": hostile_notebook()})
    checked = audit(page)
    assert checked.problems == [], checked.problems
    text = "".join(checked.text)
    # what the learner wrote is still there to read, as text
    assert "Week 1" in text and "<script>alert('md')</script>" in text
    assert "print('<script>not run</script>')" in text and "<script>alert(15)</script>" in text
    assert "<b>ok</b>" not in text and "<b>ok</b>" in page  # harmless markup kept
    assert 'href="https://example.org"' in page
    assert f'src="data:image/png;base64,{PNG}"' in page
    assert "data:image/svg+xml;base64," in page  # an SVG output only ever as an image


def test_an_svg_image_never_gets_inline_and_a_disguised_url_is_dropped():
    cleaned = clean_rendered(
        '<a href="java\nscript:alert(1)">a</a><a href=" JAVASCRIPT:alert(2)">b</a>'
        '<a href="/services/factoryhub/workshops/x">rel</a>'
        '<img src="data:text/html;base64,PHNjcmlwdD4=" onerror="alert(3)">'
        '<img src="https://tracker.example/p.gif">'
        '<svg><image href="x" onerror="alert(4)"/></svg><math><mi>x</mi></math>'
    )
    checked = audit(cleaned)
    assert checked.problems == [], checked.problems
    assert "<a>a</a><a>b</a><a>rel</a><img><img>" in cleaned


def test_what_is_not_a_notebook_is_said_in_a_sentence():
    with pytest.raises(NotebookError, match="did not send a notebook"):
        read_notebook({"content": "<html>"})
    with pytest.raises(NotebookError, match="not a notebook Jupyter can read"):
        read_notebook({"content": {"cells": "no", "nbformat": 4}})
    deep: dict = {}
    for _ in range(5000):
        deep = {"x": deep}
    with pytest.raises(NotebookError):
        read_notebook(
            {"content": {"nbformat": 4, "nbformat_minor": 5, "cells": [], "metadata": deep}}
        )


def test_the_learner_is_told_once_per_notebook_and_trainer_every_ten_minutes():
    _told.clear()
    assert should_tell("ttrainer", "ws-a-01", "a.ipynb", 1000.0)
    assert not should_tell("ttrainer", "ws-a-01", "a.ipynb", 1100.0)  # a reload
    assert should_tell("ttrainer", "ws-a-01", "b.ipynb", 1100.0)
    assert should_tell("tadmin", "ws-a-01", "a.ipynb", 1100.0)
    assert should_tell("ttrainer", "ws-a-01", "a.ipynb", 1000.0 + 601)


def test_the_view_runs_no_script_loads_nothing_and_is_sandboxed():
    directives = {d.strip().split(" ")[0]: d.strip() for d in VIEW_CSP.split(";")}
    assert directives["default-src"] == "default-src 'none'"
    assert directives["img-src"] == "img-src data:"
    assert directives["sandbox"] == "sandbox"  # no allow-scripts, no allow-same-origin
    assert "script-src" not in directives and "'unsafe-inline'" not in directives["img-src"]
    assert "script-src" not in LIST_CSP and "default-src 'none'" in LIST_CSP


def test_what_the_proxy_or_the_learners_server_answers_is_said_in_a_sentence():
    assert "start it first" in _unavailable(302, 65536)  # the proxy sends it to the hub
    assert "no such notebook" in _unavailable(404, 65536)
    assert _unavailable(599, 65536).endswith("sent more than 64 KB.")
    assert _unavailable(599, 10 << 20).endswith("sent more than 10 MB.")
    assert "HTTP 403" in _unavailable(403, 65536)


async def test_a_notebook_made_to_be_slow_is_cut_off_in_its_own_process(monkeypatch):
    # tag-dense markdown costs nbconvert and bleach about half a minute a megabyte
    slow = hostile_notebook()
    slow["cells"][0]["source"] = ("word <b>x</b> " * 200 + "\n\n") * 400
    monkeypatch.setattr(notebook_view, "RENDER_SECONDS", 1.0)
    started = time.monotonic()
    with pytest.raises(NotebookError, match="takes more than 1 s to show"):
        await notebook_view.render_apart({"content": slow})
    assert time.monotonic() - started < 5


async def test_the_renderers_process_shows_a_notebook_and_says_what_is_not_one():
    page = await notebook_view.render_apart({"content": hostile_notebook()})
    assert audit(page).problems == [] and "Week 1" in page
    with pytest.raises(NotebookError, match="did not send a notebook"):
        await notebook_view.render_apart({"content": "<html>"})
