"""A trainer's read-only look at a seat's notebook, on the real site (issue 15): the notebook is
the learner's own, hostile, file in their home, read from their running session through the
hub's proxy; the trainer's page carries a Content-Security-Policy and nothing that runs; the
learner is told in JupyterLab; another workshop's trainer and the learners themselves are
refused; a bad path, a stopped session and a huge notebook are sentences."""

from __future__ import annotations

import re
import subprocess
from html import unescape

import httpx
import pytest
from hostilenotebook import audit, hostile_notebook
from realsite import REPO, HubClient
from workshopkit import COURSE, left_behind, remove_by_hand, unique

from factoryhub.service.notebook_view import VIEW_CSP
from integration.test_workshop_dashboard import create, join, seat_token, service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def looked(real_hub, hub_client: HubClient):
    """Workshop A (2 seats, trainer ttrainer: Ada with a running session and a hostile notebook
    in her home, Bob without a session) and workshop B (1 seat, trainer tlearner2: Cy)."""
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    a, b = unique("n"), unique("o")
    base = real_hub.site.hub.url
    try:
        code_a = create(real_hub, a, 2, "ttrainer")
        code_b = create(real_hub, b, 1, "tlearner2")
        ada, ada_join = join(base, a, code_a, "Ada")
        bob, _ = join(base, a, code_a, "Bob")
        cy, _ = join(base, b, code_b, "Cy")
        hub_client.start(ada, ada_join)
        admin = hub_client.login_token("tadmin")
        tokens = {seat: seat_token(hub_client, admin, seat) for seat in (ada, bob, cy)}
        with httpx.Client(base_url=base, headers={"Authorization": f"token {tokens[ada]}"}) as lab:
            for path, content in (
                ("week1", None),
                ("week1/hostile.ipynb", hostile_notebook()),
                ("week1/huge.ipynb", _huge_notebook()),
            ):
                model = {"type": "directory"} if content is None else {
                    "type": "notebook", "format": "json", "content": content,
                }  # fmt: skip
                put = lab.put(f"/user/{ada}/api/contents/{path}", json=model, timeout=120)
                assert put.status_code in (200, 201), put.text[:300]
        yield {"a": a, "b": b, "ada": ada, "bob": bob, "cy": cy, "admin": admin, "tokens": tokens}
    finally:
        for name in (a, b):
            subprocess.run(["scancel", f"--account=ws-{name}"], capture_output=True)
            remove_by_hand(name)
            assert left_behind(name) == []


def _said(page: httpx.Response) -> str:
    """An error page's sentence."""
    found = re.search(r'<p id="fh-message">(.*?)</p>', page.text, re.S)
    return f"{page.status_code}: {unescape(found[1]) if found else page.text[:300]}"


def _huge_notebook() -> dict:
    cell = {"cell_type": "markdown", "id": "big", "metadata": {}, "source": "x" * (6 << 20)}
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]}


def test_the_trainer_sees_a_hostile_notebook_with_nothing_that_runs_and_the_learner_is_told(
    real_hub, hub_client: HubClient, looked
):
    base, a, ada = real_hub.site.hub.url, looked["a"], looked["ada"]
    with service(base, hub_client.login_token("ttrainer")) as trainer:
        home = trainer.post(f"workshops/{a}/seats/{ada}/notebooks", data={"path": ""})
        assert home.status_code == 200, _said(home)
        assert "default-src 'none'" in home.headers["Content-Security-Policy"]
        assert 'value="week1"' in home.text
        folder = trainer.post(f"workshops/{a}/seats/{ada}/notebooks", data={"path": "week1"})
        assert 'value="week1/hostile.ipynb"' in folder.text, folder.text[:500]
        view = trainer.post(
            f"workshops/{a}/seats/{ada}/notebook", data={"path": "week1/hostile.ipynb"}
        )
    assert view.status_code == 200, _said(view)
    assert view.headers["Content-Security-Policy"] == VIEW_CSP
    assert view.headers["X-Content-Type-Options"] == "nosniff"
    assert view.headers["Content-Type"].startswith("text/html")
    body = view.text.split('<main id="fh-notebook">', 1)[1]
    checked = audit(body)
    assert checked.problems == [], checked.problems
    text = "".join(checked.text)
    assert "Week 1" in text and "<script>alert('md')</script>" in text  # shown, as text
    assert re.search(r"<title>week1/hostile\.ipynb \(ws-[a-z0-9-]+, read-only\)", view.text)
    # the learner sees it in JupyterLab (the session's announcements, with its own token)
    with httpx.Client(
        base_url=base, headers={"Authorization": f"token {looked['tokens'][ada]}"}
    ) as lab:
        shown = lab.get(f"/user/{ada}/factoryhub/announcements", timeout=60).json()
    notes = [n["text"] for n in shown["announcements"]]
    assert "Trainer ttrainer looked at your notebook week1/hostile.ipynb (read-only)." in notes
    with service(base, looked["tokens"][looked["bob"]]) as bob:  # Ada's note only
        assert "looked at your notebook" not in bob.get("api/announcements").text
    # the seat's token made for the look is gone
    with hub_client.api(looked["admin"]) as api:
        tokens = api.get(f"/users/{ada}/tokens").json()["api_tokens"]
    assert not [t for t in tokens if "read-only look" in (t.get("note") or "")], tokens


def test_bad_paths_a_stopped_session_and_a_huge_notebook_are_sentences(
    real_hub, hub_client: HubClient, looked
):
    base, a, ada, bob = real_hub.site.hub.url, looked["a"], looked["ada"], looked["bob"]
    with service(base, hub_client.login_token("ttrainer")) as trainer:
        view = f"workshops/{a}/seats/{ada}/notebook"
        for path, said in (
            ("../../etc/passwd.ipynb", "'..'"),
            ("week1/../../x.ipynb", "'..'"),
            ("/etc/hosts.ipynb", "leading /"),
            ("week1/notes.txt", ".ipynb"),
            ("x" * 300 + ".ipynb", "longer than"),
        ):
            refused = trainer.post(view, data={"path": path})
            assert refused.status_code == 400 and said in unescape(refused.text), refused.text[:300]
        missing = trainer.post(view, data={"path": "week1/nothing.ipynb"})
        assert missing.status_code == 409 and "no such notebook" in missing.text
        huge = trainer.post(view, data={"path": "week1/huge.ipynb"})
        assert huge.status_code == 413 and "bigger than 5 MB" in huge.text, huge.text[:300]
        stopped = trainer.post(f"workshops/{a}/seats/{bob}/notebooks", data={"path": ""})
        assert stopped.status_code == 409 and "session is stopped" in stopped.text
        assert "Traceback" not in stopped.text + missing.text + huge.text


def test_another_workshops_trainer_and_the_learners_are_refused(
    real_hub, hub_client: HubClient, looked
):
    base, a, b, ada, cy = (real_hub.site.hub.url, *(looked[k] for k in ("a", "b", "ada", "cy")))
    path = {"path": "week1/hostile.ipynb"}
    with service(base, hub_client.login_token("tlearner2")) as b_trainer:  # trains B only
        for handler in ("notebook", "notebooks"):
            refused = b_trainer.post(f"workshops/{a}/seats/{ada}/{handler}", data=path)
            assert refused.status_code == 403 and "not open to your account" in _said(refused)
            wrong = b_trainer.post(f"workshops/{b}/seats/{ada}/{handler}", data=path)
            assert wrong.status_code == 404, _said(wrong)  # A's seat under B's address
    for seat in (ada, looked["bob"], cy):  # the seat itself, another seat, another workshop's
        with service(base, looked["tokens"][seat]) as learner:
            refused = learner.post(f"workshops/{a}/seats/{ada}/notebook", data=path)
            assert refused.status_code == 403, refused.text[:300]
            assert "Trainer" not in refused.text and "alert(" not in refused.text
    with hub_client._logged_in("ttrainer") as web:  # a cookie alone (another site's form)
        forged = web.post(f"/services/factoryhub/workshops/{a}/seats/{ada}/notebook", data=path)
        assert forged.status_code == 403, _said(forged)
