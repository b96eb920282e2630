"""Support requests, announcements and shared data sets on the real site (issue 16): a
learner's request from a notebook of their session arrives at a real SMTP server (aiosmtpd,
started here) with its context and appears on the support page under its ticket number, for
the support staff and its learner only; the staff's answer reaches the learner's widget; an
admin's announcement (posted with `factoryhub announce`) shows in the spawn form and through
the session's API; the digits data set is read by its group's member in a session and refused
by the file system to a learner outside its group."""

import contextlib
import json
import os
import re
import subprocess
import uuid
from email import message_from_bytes, policy

import httpx
import pytest
from aiosmtpd.controller import Controller
from realsite import (
    FACTORYHUB,
    SMTP_PORT,
    SUPPORT_ADDRESS,
    _collect_stdout,
    _execute_request,
    job_of,
    wait_until,
)
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

pytestmark = pytest.mark.integration

DIGITS = "/srv/factoryhub/datasets/digits/digits.csv.gz"


class Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture(scope="module")
def learner_session(hub_client):
    """tlearner1's default session on the cpu partition (stopped at the end)."""
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token, options={"partition": "cpu"})
    yield token
    hub_client.stop("tlearner1", token)


@contextlib.asynccontextmanager
async def notebook_kernel(base: str, prefix: str, token: str, path: str):
    """A kernel of a notebook session (as JupyterLab opens one): the kernel knows its
    notebook's name. Yields `execute(code) -> stdout`."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=f"{base}{prefix}api", headers=headers, timeout=60) as api:
        name = path.rsplit("/", 1)[-1]  # as JupyterLab sends it
        body = {"path": path, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
        r = await api.post("/sessions", json=body)
        assert r.status_code == 201, r.text
        session, kernel = r.json()["id"], r.json()["kernel"]["id"]
        url = f"{base.replace('http', 'ws', 1)}{prefix}api/kernels/{kernel}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers=headers))

        async def execute(code: str, timeout: float = 60) -> str:
            import asyncio

            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps({**_execute_request(msg_id, code)}))
            return await asyncio.wait_for(_collect_stdout(ws, msg_id), timeout)

        try:
            yield execute
        finally:
            ws.close()
            await api.delete(f"/sessions/{session}")


ASK = """
import os, json
# an error line in the session's log, as a failing library would log it there
log = os.path.expanduser("~/.factoryhub/logs/session-" + os.environ["SLURM_JOB_ID"] + ".log")
with open(log, "a") as f:
    f.write("[E 10:00:00 mylib] ERROR: the marker error {marker}\\n")
from factoryhub.widgets import AskSupport
ask = AskSupport()
ask.text.value = "My training stops.\\r\\nBcc: victim@example.org <script>alert(1)</script>"
print("PREVIEW", json.dumps(ask.preview.value))
answer = ask.send()
print("ANSWER", json.dumps(answer))
"""


def _marked(out: str, tag: str):
    line = next(line for line in out.splitlines() if line.startswith(f"{tag} "))
    return json.loads(line[len(tag) + 1 :])


async def test_a_support_request_arrives_by_smtp_and_on_the_support_page(
    hub_client, learner_session, mailbox
):
    token = learner_session
    marker = uuid.uuid4().hex[:8]
    # a line the learner's server logs itself (a 404, as a warning), to be among the last lines
    missing = f"{hub_client.base}/user/tlearner1/api/contents/missing-{marker}.ipynb"
    r = httpx.get(missing, headers={"Authorization": f"token {token}"})
    assert r.status_code == 404
    async with notebook_kernel(hub_client.base, "/user/tlearner1/", token, "train.ipynb") as run:
        out = await run(ASK.format(marker=marker), timeout=90)
    preview, answer = _marked(out, "PREVIEW"), _marked(out, "ANSWER")
    assert answer and answer["mailed"], out
    number = answer["ticket"]
    job = job_of("tlearner1")
    # what the learner was shown is what was sent (escaped in the widget's HTML)
    assert f"job {job} on node" in preview and "&lt;script&gt;" in preview
    assert answer["sent"].split("--- attached by FactoryHub ---")[1] in _unescape(preview)
    wait_until(lambda: mailbox.messages, 20, "the ticket's mail at the test SMTP server")
    (envelope,) = [m for m in mailbox.messages if f"#{number}]" in m.content.decode()]
    assert envelope.rcpt_tos == [SUPPORT_ADDRESS]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == f"[FactoryHub #{number}] tlearner1: My training stops."
    assert mail["Bcc"] is None
    body = mail.get_content()
    for expected in (
        f"job {job} on node cn",
        "partition cpu",
        "Open notebook: train.ipynb",
        f"ERROR: the marker error {marker}",
        f"missing-{marker}.ipynb",
        "jupyterlab ",
    ):
        assert expected in body, (expected, body)
    _the_support_page_shows_it_to_staff_and_its_learner_only(hub_client, number)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _the_support_page_shows_it_to_staff_and_its_learner_only(hub_client, number: int):
    support = "/services/factoryhub/support"
    with hub_client._logged_in("tadmin") as web:
        page = web.get(support)
        assert page.status_code == 200 and f'id="ticket-{number}"' in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "<script>alert(1)" not in page.text
        answer_form = r'class="answer-form">\s*<input type="hidden" name="_token" value="(\w+)"'
        token = re.search(answer_form, page.text).group(1)
        forged = web.post(f"{support}/{number}", data={"answer": "x", "status": "closed"})
        assert forged.status_code == 403  # a cross-site form: the cookie alone is not enough
        done = web.post(
            f"{support}/{number}",
            data={"answer": "Lower the batch size.", "status": "answered", "_token": token},
        )
        assert done.status_code == 200 and "Lower the batch size." in done.text
    with hub_client._logged_in("tlearner2") as web:
        other = web.get(support)
        assert other.status_code == 200 and f'id="ticket-{number}"' not in other.text
        # tlearner2's own tickets only (another test may have filed one as tlearner2)
        theirs = web.get("/services/factoryhub/api/support").json()["tickets"]
        assert all(t["user"] == "tlearner2" and t["number"] != number for t in theirs), theirs
        answered = web.post(
            f"{support}/{number}", data={"answer": "mine now", "status": "closed", "_token": "x"}
        )
        assert answered.status_code == 403
    with hub_client._logged_in("tlearner1") as web:
        mine = web.get(support)
        assert f'id="ticket-{number}"' in mine.text and "Lower the batch size." in mine.text


async def test_the_learner_reads_the_answer_in_the_widget(hub_client, learner_session):
    """After the staff's answer of the test above."""
    code = (
        "from factoryhub.widgets import AskSupport\n"
        "tickets = AskSupport().refresh()\n"
        "answers = [(t['number'], t['answer']) for t in tickets]\n"
        "print('TICKETS', __import__('json').dumps(answers))\n"
    )
    async with notebook_kernel(
        hub_client.base, "/user/tlearner1/", learner_session, "a.ipynb"
    ) as run:
        tickets = _marked(await run(code), "TICKETS")
    assert [answer for _, answer in tickets if answer] == ["Lower the batch size."]


def test_an_announcement_shows_in_the_form_and_in_the_session(hub_client, learner_session):
    admin = hub_client.login_token("tadmin")
    site = str(hub_client.hub.site_path)
    env = {**os.environ, "FACTORYHUB_TOKEN": admin}
    marker = uuid.uuid4().hex[:8]

    def announce(*args: str, token_env=env) -> subprocess.CompletedProcess:
        argv = [FACTORYHUB, "announce", *args, "--site", site]
        return subprocess.run(argv, capture_output=True, text=True, env=token_env, check=False)

    everyone = announce("post", f"Maintenance tonight {marker}", "--for", "2h")
    assert everyone.returncode == 0, everyone.stderr
    gpu = announce("post", f"GPU drivers {marker}", "--partition", "gpu", "--for", "1h")
    assert gpu.returncode == 0, gpu.stderr
    learner = announce(
        "post",
        "not an admin",
        "--for",
        "1h",
        token_env={**env, "FACTORYHUB_TOKEN": learner_session},
    )
    assert learner.returncode == 1 and "only the hub's admins" in learner.stderr
    bad = announce("post", "bad", "--partition", "tpu")
    assert bad.returncode == 1 and "partition: 'tpu' is not one of" in bad.stderr
    assert "Traceback" not in bad.stderr + learner.stderr
    form = hub_client.spawn_page("tlearner2")
    assert f"Maintenance tonight {marker}" in form and f"GPU drivers {marker}" in form
    r = httpx.get(
        f"{hub_client.base}/user/tlearner1/factoryhub/announcements",
        headers={"Authorization": f"token {learner_session}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    texts = [a["text"] for a in r.json()["announcements"]]
    assert f"Maintenance tonight {marker}" in texts  # for everyone
    assert f"GPU drivers {marker}" not in texts  # the session runs on cpu
    number = json.loads(
        httpx.get(
            f"{hub_client.base}/services/factoryhub/api/announcements",
            headers={"Authorization": f"token {admin}"},
        ).text
    )["announcements"]
    for item in number:
        assert announce("withdraw", str(item["id"])).returncode == 0
    assert f"Maintenance tonight {marker}" not in hub_client.spawn_page("tlearner2")


async def test_a_data_set_is_read_by_its_group_and_refused_to_others(hub_client, learner_session):
    code = (
        "import gzip, os\n"
        "from factoryhub import datasets\n"
        "folder = datasets.path('digits')\n"
        "rows = gzip.open(folder / 'digits.csv.gz').read().decode().splitlines()\n"
        "print('ROWS', len(rows), os.readlink(os.path.expanduser('~/datasets/digits')))\n"
        "try:\n"
        "    open(folder / 'mine.txt', 'w')\n"
        "except PermissionError:\n"
        "    print('READONLY')\n"
    )
    async with notebook_kernel(
        hub_client.base, "/user/tlearner1/", learner_session, "d.ipynb"
    ) as run:
        out = await run(code)
    assert "ROWS 1797 /srv/factoryhub/datasets/digits" in out and "READONLY" in out, out
    # tlearner3 (standing in for carol) is in no group of the set: the file system refuses
    refused = subprocess.run(
        ["runuser", "-u", "tlearner3", "--", "cat", DIGITS], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    with hub_client._logged_in("tlearner3") as web:
        page = web.get("/services/factoryhub/datasets")
    assert page.status_code == 200 and 'data-allowed="no"' in page.text
