"""The trainers' cohort dashboard on the real site (issue 15): a seat's progress comes from its
own session (notebooks opened and cells run counted by the session's extension, an exercise
passed reported by the course's check) and no seat can report for another; energy so far from
Slurm's accounting; the trainers' actions — share a seat's session through JupyterHub's sharing
(the learner is told and refuses), restart a stuck session, a message that reaches the
workshop's seats only — for that workshop's trainers alone, each refused elsewhere with a
sentence."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess

import httpx
import pytest
from realsite import REPO, HubClient, _xsrf, run_in_kernel, wait_until
from workshopkit import (
    COURSE,
    left_behind,
    remove_by_hand,
    unique,
    workshop_cmd,
)

pytestmark = pytest.mark.integration
SERVICE = "/services/factoryhub/"


def join(base: str, name: str, code: str, shown: str) -> tuple[str, str]:
    """A join as a script does it: (seat, the seat's API token)."""
    with httpx.Client(base_url=base, timeout=60) as web:
        web.get(f"/hub/workshop/{name}")
        answer = web.post(
            f"/hub/workshop/{name}",
            data={"code": code, "name": shown, "_xsrf": _xsrf(web)},
            headers={"Accept": "application/json"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["seat"], answer.json()["token"]


def seat_token(hub_client: HubClient, admin: str, seat: str) -> str:
    """A token of `seat` as its session has one (the hub and this service), made by an admin:
    the join's own token is limited to the hub's API (scope self)."""
    with hub_client.api(admin) as api:
        made = api.post(
            f"/users/{seat}/tokens",
            json={"note": "test", "scopes": ["self", "access:services!service=factoryhub"]},
        )
    assert made.status_code == 201, made.text
    return made.json()["token"]


def service(base: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{base}{SERVICE}", headers={"Authorization": f"token {token}"}, timeout=60
    )


def create(hub, name: str, seats: int, trainer: str) -> str:
    made = workshop_cmd(
        hub, "create", name, "--course", COURSE, "--start", "now", "--end", "now+60min",
        "--seats", str(seats), "--trainer", trainer,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return re.search(r"access code (\S+)", made.stdout).group(1)


@pytest.fixture(scope="module")
def cohort(real_hub, hub_client: HubClient):
    """Workshop A (3 seats, trainer ttrainer; Ada and Bob joined, Ada's session running) and
    workshop B (1 seat, trainer tlearner2; Cy joined)."""
    hub_client.publish_course(REPO / "notebooks" / COURSE)
    a, b = unique("d"), unique("e")
    base = real_hub.site.hub.url
    try:
        code_a = create(real_hub, a, 3, "ttrainer")
        code_b = create(real_hub, b, 1, "tlearner2")
        ada, ada_token = join(base, a, code_a, "Ada")
        bob, _ = join(base, a, code_a, "Bob")
        cy, _ = join(base, b, code_b, "Cy")
        hub_client.start(ada, ada_token)
        admin = hub_client.login_token("tadmin")
        yield {
            "a": a, "b": b, "ada": ada, "bob": bob, "cy": cy,
            "tokens": {seat: seat_token(hub_client, admin, seat) for seat in (ada, bob, cy)},
        }  # fmt: skip
    finally:
        for name in (a, b):
            subprocess.run(["scancel", f"--account=ws-{name}"], capture_output=True)
            remove_by_hand(name)
            assert left_behind(name) == []


def row(web: httpx.Client, workshop: str, seat: str) -> dict:
    answer = web.get(f"{SERVICE}api/workshops/{workshop}")
    assert answer.status_code == 200, answer.text
    return next(r for r in answer.json()["seats"] if r["seat"] == seat)


def test_progress_comes_from_the_seats_own_session_and_energy_from_slurm(
    real_hub, hub_client: HubClient, cohort
):
    base, ada, token = real_hub.site.hub.url, cohort["ada"], cohort["tokens"][cohort["ada"]]
    notebook = f"courses/{COURSE}/01-first-steps.ipynb"
    with httpx.Client(base_url=base, headers={"Authorization": f"token {token}"}) as lab:
        opened = lab.get(f"/user/{ada}/api/contents/{notebook}", timeout=60)
        assert opened.status_code == 200, opened.text[:200]
    code = (
        "from factoryhub.courses.exercises import Exercises\n"
        f"ex = Exercises('courses/{COURSE}/solutions.toml', course='{COURSE}')\n"
        "ex.check('never-starts', 'Resources')\n"  # wrong: not a pass
        "ex.check('never-starts', 'PartitionTimeLimit')\n"
    )
    out = asyncio.run(run_in_kernel(base, f"/user/{ada}/", token, code))
    assert "never-starts: correct" in out
    asyncio.run(run_in_kernel(base, f"/user/{ada}/", token, "1 + 1"))
    with hub_client._logged_in("ttrainer") as web:
        seen = wait_until(  # the session reports every 10 s
            lambda: (r := row(web, cohort["a"], ada))["cells_run"] >= 2 and r["energy"] and r,
            40,  # Slurm's accounting lists a new job a few seconds after it starts
            "Ada's cells and energy on the cohort page",
        )
        assert seen["notebooks_opened"] == 1 and seen["exercises_passed"] == 1, seen
        assert seen["display_name"] == "Ada" and seen["state"] == "running"
        assert seen["energy"].endswith("Wh (estimated)"), seen
        assert row(web, cohort["a"], cohort["bob"])["cells_run"] == 0  # Bob did nothing


def test_a_seat_reports_for_itself_only_and_nobody_else_is_kept(
    real_hub, hub_client: HubClient, cohort
):
    base, ada, bob = real_hub.site.hub.url, cohort["ada"], cohort["bob"]
    with hub_client._logged_in("ttrainer") as web:
        before = row(web, cohort["a"], ada)
    with service(base, cohort["tokens"][bob]) as bobs:
        forged = bobs.post("api/progress", json={"seat": ada, "cells_run": 500})
        assert forged.status_code == 400 and "unknown field 'seat'" in forged.json()["message"]
        huge = bobs.post("api/progress", json={"cells_run": 10**9})
        assert huge.status_code == 400 and "at most" in huge.json()["message"]
        bad = bobs.post("api/progress", json={"notebooks_opened": ["../../etc/passwd"]})
        assert bad.status_code == 400 and "not a notebook's path" in bad.json()["message"]
        elsewhere = f"courses/{COURSE}/not-of-the-course.ipynb"
        other = bobs.post("api/progress", json={"notebooks_completed": [elsewhere]})
        assert other.status_code == 400 and "not a notebook of this" in other.json()["message"]
        own = bobs.post("api/progress", json={"cells_run": 4})
        assert own.status_code == 200 and own.json()["seat"] == bob
        done = [f"courses/{COURSE}/01-first-steps.ipynb"]  # the published course's notebook
        completed = bobs.post("api/progress", json={"notebooks_completed": done})
        assert completed.status_code == 200 and completed.json()["notebooks_completed"] == 1
    with service(base, hub_client.login_token("tlearner1")) as outsider:
        refused = outsider.post("api/progress", json={"cells_run": 1})
        assert refused.status_code == 403 and "seats of a running workshop" in refused.text
    with hub_client._logged_in("ttrainer") as web:
        assert row(web, cohort["a"], bob)["cells_run"] == 4
        assert row(web, cohort["a"], bob)["notebooks_completed"] == 1
        after = row(web, cohort["a"], ada)
        assert after["cells_run"] == before["cells_run"]  # Ada's untouched by Bob's forgery
        assert after["notebooks_completed"] == before["notebooks_completed"]
    with hub_client._logged_in("tlearner1") as web:  # a cookie alone (another site's form)
        posted = web.post(f"{SERVICE}api/progress", json={"cells_run": 1})
        assert posted.status_code == 403


def test_a_message_reaches_the_workshops_seats_in_their_sessions_only(
    real_hub, hub_client: HubClient, cohort
):
    base, ada = real_hub.site.hub.url, cohort["ada"]
    text = f"Back at 14:00 ({unique('m')})"
    with hub_client._logged_in("ttrainer") as web:
        page = web.get(f"{SERVICE}workshops/{cohort['a']}")
        assert page.status_code == 200 and 'id="fh-message-form"' in page.text
        token = re.search(r'const token = "([0-9a-f]{64})"', page.text).group(1)
        api = f"{SERVICE}api/workshops/{cohort['a']}/message"
        assert web.post(api, json={"text": text}).status_code == 403  # no form token
        empty = web.post(api, json={"text": " "}, headers={"X-FactoryHub-Token": token})
        assert empty.status_code == 400 and "text" in empty.json()["message"]
        sent = web.post(api, json={"text": text}, headers={"X-FactoryHub-Token": token})
        assert sent.status_code == 201, sent.text
    # in the seat's JupyterLab: the session's own announcement query, with its own token
    with httpx.Client(
        base_url=base, headers={"Authorization": f"token {cohort['tokens'][ada]}"}
    ) as lab:
        shown = lab.get(f"/user/{ada}/factoryhub/announcements", timeout=60).json()
    assert text in [a["text"] for a in shown["announcements"]], shown
    with service(base, cohort["tokens"][cohort["bob"]]) as bobs:  # the other seat of A
        assert text in [a["text"] for a in bobs.get("api/announcements").json()["announcements"]]
    for other in (cohort["tokens"][cohort["cy"]], hub_client.login_token("tlearner1")):
        with service(base, other) as them:  # a seat of workshop B, a learner of no workshop
            assert text not in them.get("api/announcements").text


def test_a_trainer_of_one_workshop_cannot_see_or_act_on_anothers_seats(
    real_hub, hub_client: HubClient, cohort
):
    a, b, ada, cy = cohort["a"], cohort["b"], cohort["ada"], cohort["cy"]
    base = real_hub.site.hub.url
    with service(base, hub_client.login_token("tlearner2")) as b_trainer:  # trains B only
        assert b_trainer.get(f"api/workshops/{b}").status_code == 200
        assert b_trainer.get(f"api/workshops/{a}").status_code == 403
        for action in ("share", "restart"):
            refused = b_trainer.post(f"api/workshops/{a}/seats/{ada}/{action}")
            assert refused.status_code == 403, refused.text
            assert "not a trainer of this workshop" in refused.json()["message"]
            # A's seat named under B's address: not a seat of B
            wrong = b_trainer.post(f"api/workshops/{b}/seats/{ada}/{action}")
            assert wrong.status_code == 404 and "is not a seat of" in wrong.json()["message"]
        assert b_trainer.post(f"api/workshops/{a}/message", json={"text": "hi"}).status_code == 403
    with service(base, hub_client.login_token("ttrainer")) as a_trainer:
        assert a_trainer.post(f"api/workshops/{b}/seats/{cy}/restart").status_code == 403
        free = a_trainer.post(f"api/workshops/{a}/seats/ws-{a}-03/share")
        assert free.status_code == 409 and "nobody has joined" in free.json()["message"]
    with service(base, cohort["tokens"][ada]) as seat:  # a learner is no trainer
        assert seat.post(f"api/workshops/{a}/seats/{ada}/restart").status_code == 403
    assert hub_client.server(ada, cohort["tokens"][ada])["ready"]  # nothing was restarted


def _lab_as(web: httpx.Client, seat: str) -> int:
    """The status of the trainer's visit to a seat's JupyterLab, through JupyterHub's OAuth
    (the hub's authorisation page says 403 without a share); with access, its files too."""
    lab = web.get(f"/user/{seat}/lab")
    if lab.status_code != 200:
        return lab.status_code
    if "/oauth2/authorize" in str(lab.url):  # another's server: the hub asks to confirm
        fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', lab.text)
        form: dict[str, list[str]] = {}
        for key, value in fields:
            form.setdefault(key, []).append(html.unescape(value))
        lab = web.post(str(lab.url), data=form)
    assert f"/user/{seat}/lab" in str(lab.url), lab.url
    return web.get(f"/user/{seat}/api/contents/courses").status_code


def test_sharing_lets_the_trainer_in_the_learner_is_told_and_refuses(
    real_hub, hub_client: HubClient, cohort
):
    base, ada, a = real_hub.site.hub.url, cohort["ada"], cohort["a"]
    with hub_client._logged_in("ttrainer") as web:
        assert _lab_as(web, ada) == 403  # not before the share
    with service(base, hub_client.login_token("ttrainer")) as trainer:
        shared = trainer.post(f"api/workshops/{a}/seats/{ada}/share")
        assert shared.status_code == 200, shared.text
        assert shared.json()["url"] == f"/user/{ada}/lab"
    with hub_client._logged_in("ttrainer") as web:
        assert _lab_as(web, ada) == 200
    with service(base, cohort["tokens"][ada]) as seat:
        notes = [n["text"] for n in seat.get("api/announcements").json()["announcements"]]
        assert any("Trainer ttrainer can now see and work in your session" in n for n in notes)
        page = seat.get("sharing")
        assert page.status_code == 200 and 'id="share-user-ttrainer"' in page.text
        refused = seat.post(
            "sharing", data={"with": "ttrainer", "kind": "user", "server": ""},
            follow_redirects=True,
        )  # fmt: skip
        assert refused.status_code == 200 and 'id="fh-no-shares"' in refused.text
    with hub_client._logged_in("ttrainer") as web:
        assert _lab_as(web, ada) == 403  # refused: the trainer is out again
    with service(base, cohort["tokens"][cohort["bob"]]) as bob:  # not Ada's note
        assert "ttrainer can now see" not in bob.get("api/announcements").text


def test_restart_stops_the_seats_session_and_starts_it_again_with_its_preset(
    real_hub, hub_client: HubClient, cohort
):
    ada, a = cohort["ada"], cohort["a"]
    token = cohort["tokens"][ada]

    def job() -> str:
        out = subprocess.run(
            ["squeue", "-h", "-u", ada, "-t", "R", "-o", "%i|%a|%v|%C"],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        return out[0] if len(out) == 1 else ""

    before = wait_until(job, 30, "Ada's running job")
    with service(real_hub.site.hub.url, hub_client.login_token("ttrainer")) as trainer:
        answer = trainer.post(f"api/workshops/{a}/seats/{ada}/restart")
        assert answer.status_code == 202 and "Restarting" in answer.json()["message"]
    after = wait_until(lambda: (j := job()) and j != before and j, 90, "a new job for Ada")
    assert after.split("|")[1:] == [f"ws-{a}", f"ws-{a}", "1"]  # the locked preset
    wait_until(lambda: (hub_client.server(ada, token) or {}).get("ready"), 90, "Ada ready again")
