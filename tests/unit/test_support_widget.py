"""The support widget without a browser: the context it gathers from the session (its
environment and log, tokens hidden), the preview that is exactly what is sent, and the answers
shown escaped; the session's announcements API in front of a stand-in hub service."""

import json

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from factoryhub.support import parse_support_request, preview_text
from factoryhub.widgets.context import SessionContext
from factoryhub.widgets.support import AskSupport, gather_context, tickets_html

ENV = {
    "SLURMD_NODENAME": "cn02",
    "SLURM_JOB_PARTITION": "gpu",
    "SLURM_JOB_ACCOUNT": "ai-research",
    "JPY_SESSION_NAME": "",
}


@pytest.fixture
def context(demo_site, fake_slurm, tmp_path):
    logs = tmp_path / ".factoryhub" / "logs"
    logs.mkdir(parents=True)
    lines = [f"[I line {i}]" for i in range(100)]
    lines += ["[E] ERROR kernel died", "GET /user/alice/lab?token=s3cret 200", "Traceback (x)"]
    (logs / "session-77.log").write_text("\n".join(lines) + "\n")
    return SessionContext(
        site=demo_site, user="alice", home=tmp_path, session_job="77", client=fake_slurm
    )


def test_the_context_comes_from_the_session_and_its_log(context, tmp_path):
    env = {**ENV, "JPY_SESSION_NAME": f"{tmp_path}/work/train.ipynb"}
    ctx = gather_context(context, env)
    assert (ctx.job_id, ctx.node, ctx.partition, ctx.account) == (
        "77",
        "cn02",
        "gpu",
        "ai-research",
    )
    assert ctx.notebook == "work/train.ipynb"
    assert len(ctx.log_lines) == 25 and ctx.log_lines[-1] == "Traceback (x)"
    assert "GET /user/alice/lab?token=[hidden] 200" in ctx.log_lines
    assert ctx.errors == ("[E] ERROR kernel died", "Traceback (x)")
    assert dict(ctx.versions)["python"].startswith("3.")
    # what the widget gathers is what the service takes
    request = parse_support_request({"text": "help", "context": ctx.to_json()})
    assert request.context == ctx


def test_the_preview_is_exactly_what_is_sent_and_send_waits_for_text(context):
    widget = AskSupport(context, environ=ENV)
    assert widget.send_button.disabled
    widget.text.value = "My <b>kernel</b> died"
    assert not widget.send_button.disabled
    sent = preview_text(widget.request())
    assert "My &lt;b&gt;kernel&lt;/b&gt; died" in widget.preview.value
    assert json.dumps(sent)  # plain text
    assert widget.preview.value.count("job 77 on node cn02") == 1


def test_after_send_the_ticket_number_stays_and_the_text_is_cleared(context, monkeypatch):
    from factoryhub.widgets import support

    sent = []

    def service(site, method, path, body, environ):
        sent.append((method, path, body))
        return {"ticket": 12, "message": "Ticket #12 is with the support centre (support@x)."}

    monkeypatch.setattr(support, "call_service", service)
    widget = AskSupport(context, environ=ENV)
    widget.text.value = "x" * 4001
    assert "at most 4000 characters" in widget.problem.value and widget.send_button.disabled
    widget.text.value = "It <stops>."
    answer = widget.send()
    assert answer["ticket"] == 12 and widget.ticket == 12
    assert sent[0][:2] == ("POST", "api/support") and sent[0][2]["text"] == "It <stops>."
    assert "Ticket #12 is with the support centre" in widget.message.value
    assert widget.text.value == "" and widget.problem.value == ""


def test_answers_are_shown_escaped():
    shown = tickets_html(
        [
            {
                "number": 3,
                "status": "answered",
                "text": "<img src=x onerror=alert(1)>",
                "answer": "<script>x</script>",
                "answered_by": "admin",
            }
        ]
    )
    assert "<img" not in shown and "<script>" not in shown and "Ticket #3" in shown


# The session's announcements API, asking a stand-in hub service (its own tornado app).


class _Service(RequestHandler):
    def get(self):
        self.application.settings["seen"].append(
            (self.request.headers.get("Authorization"), self.get_argument("partition"))
        )
        self.finish({"announcements": [{"text": "down at 2"}]})


async def test_the_session_asks_the_service_with_its_token_for_its_partition(
    demo_site,
):
    from dataclasses import replace

    from factoryhub.session import services

    seen = []
    sock, port = bind_unused_port()
    server = HTTPServer(
        Application([(r"/services/factoryhub/api/announcements", _Service)], seen=seen)
    )
    server.add_sockets([sock])
    site = replace(demo_site, hub=replace(demo_site.hub, url=f"http://127.0.0.1:{port}"))

    answer = await services.fetch_announcements(site, "tok", "gpu")
    server.stop()
    assert seen == [("token tok", "gpu")]
    assert answer == (200, {"announcements": [{"text": "down at 2"}]})
    server_gone = await services.fetch_announcements(site, "tok", "gpu")
    assert server_gone[0] == 502 and server_gone[1]["announcements"] == []
