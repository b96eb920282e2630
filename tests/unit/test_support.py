"""Support requests as data, and through the hub service's handlers with a real SMTP server
(aiosmtpd) on a local port: bounded, escaped, no header injection, and one learner's tickets
never shown to another."""

import json
import tomllib
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest
import tomli_w
from aiosmtpd.controller import Controller
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from factoryhub.service.pages import PREFIX, SITE_FILE, SiteFile
from factoryhub.service.support_page import (
    AnswerHandler,
    SupportAPIHandler,
    SupportPageHandler,
    form_token,
)
from factoryhub.servicedb import ServiceDB
from factoryhub.site import SiteError, parse_site
from factoryhub.support import (
    MAX_TEXT,
    SupportError,
    is_support_staff,
    parse_answer,
    parse_support_request,
    preview_text,
    redact,
    subject,
    support_mail,
)

CONTEXT = {
    "job_id": "42",
    "node": "cn01",
    "partition": "cpu",
    "account": "training",
    "notebook": "work/train.ipynb",
    "log_lines": ["[I 10:00] started", "[E 10:01] ERROR kernel died"],
    "errors": ["[E 10:01] ERROR kernel died"],
    "versions": {"python": "3.11.2", "jupyterlab": "4.6.6"},
}


def test_a_request_keeps_its_context_and_shows_it_in_the_preview():
    request = parse_support_request({"text": "My kernel dies.\nWhy?", "context": CONTEXT})
    shown = preview_text(request)
    assert shown.startswith("My kernel dies.\nWhy?\n")
    for expected in ("job 42 on node cn01", "partition cpu", "account training"):
        assert expected in shown
    assert "work/train.ipynb" in shown and "jupyterlab 4.6.6" in shown
    assert "  [E 10:01] ERROR kernel died" in shown


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"text": ""}, "text: write what went wrong"),
        ({"text": "x" * (MAX_TEXT + 1)}, f"at most {MAX_TEXT} characters"),
        ({"text": 5}, "text: expected text"),
        ({"text": "hi", "cc": "x"}, "unknown field 'cc'"),
        ({"text": "hi", "context": {"job_id": "1; rm"}}, "context.job_id"),
        ({"text": "hi", "context": {"node": "cn01\nBcc: x"}}, "context.node"),
        ({"text": "hi", "context": {"log_lines": ["x"] * 41}}, "at most 40 lines"),
        ({"text": "hi", "context": {"versions": {"a b": "1"}}}, "context.versions"),
        ({"text": "hi", "context": {"secret": "1"}}, "unknown field 'secret'"),
        ([], "expected a JSON object"),
    ],
)
def test_bad_requests_are_refused_with_the_field_named(raw, message):
    with pytest.raises(SupportError, match=message):
        parse_support_request(raw)


def test_control_characters_go_and_log_lines_are_one_line_each():
    request = parse_support_request(
        {"text": "a\x1b[31mb\r\nc\x00", "context": {"log_lines": ["x\ny\rz\x07"]}}
    )
    assert request.text == "a[31mb\nc"
    assert request.context.log_lines == ("x y z",)


def test_tokens_in_log_lines_are_hidden():
    assert redact("GET /user/a/lab?token=abc123&x=1") == "GET /user/a/lab?token=[hidden]&x=1"
    assert redact("Authorization: token s3cr3t") == "Authorization: token [hidden]"


def test_the_subject_cannot_add_a_header(demo_site):
    text = "Help\r\nBcc: victim@example.org\r\nX-Evil: 1"
    request = parse_support_request({"text": text})
    assert "\n" not in subject(7, "alice", request)
    mail = support_mail(7, "alice", request, demo_site.support, demo_site)
    parsed = message_from_bytes(mail.as_bytes(), policy=policy.default)
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"] == "[FactoryHub #7] alice: Help"
    assert "Bcc: victim@example.org" in parsed.get_content()  # in the body, as text


def test_staff_are_admins_and_the_staff_group(demo_site):
    assert is_support_staff(demo_site, "admin", False, ())
    assert is_support_staff(demo_site, "someone", True, ())
    assert not is_support_staff(demo_site, "alice", False, ("alice", "factoryhub"))


def test_an_answer_needs_a_known_status():
    assert parse_answer("Restart it.", "answered") == ("Restart it.", "answered")
    assert parse_answer("", "closed") == ("", "closed")
    with pytest.raises(SupportError, match="status: one of open, answered, closed"):
        parse_answer("x", "deleted")


def test_site_toml_support_and_datasets_are_checked(repo):
    text = (repo / "hub_config" / "site.toml").read_text()
    site = parse_site(text)
    assert site.support.mail_to == "support@demo.invalid" and not site.support.host
    assert site.datasets["digits"].groups == ("fh-digits",)
    bad_mail = text.replace('mail_to = "support@demo.invalid"', 'mail_to = "a@b\\nBcc: c@d"')
    with pytest.raises(SiteError, match=r"support\.mail_to"):
        parse_site(bad_mail)
    with pytest.raises(SiteError, match=r"datasets\.digits\.path"):
        parse_site(text.replace('path = "/srv/factoryhub/datasets/digits"', 'path = "rel"'))
    with pytest.raises(SiteError, match=r"datasets\.digits\.groups"):
        parse_site(text.replace('groups = ["fh-digits"]', "groups = []"))


def test_one_learners_tickets_are_not_anothers(tmp_path):
    db = ServiceDB(tmp_path / "s.sqlite")
    now = datetime.now(UTC)
    a = db.add_ticket("alice", parse_support_request({"text": "mine"}), now)
    b = db.add_ticket("bob", parse_support_request({"text": "his"}), now)
    assert [t.number for t in db.tickets("alice")] == [a]
    assert [t.number for t in db.tickets(None)] == [b, a]
    assert db.answer(a, "admin", "Done.", "answered", now)
    assert db.ticket(a).answer == "Done." and db.ticket(b).answer == ""
    assert (tmp_path / "s.sqlite").stat().st_mode & 0o777 == 0o600


# The handlers, in a tornado app of their own (the hub's OAuth is not under test: the caller
# is named by ?user=, as an API token would name them), with a real SMTP server.


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


class _AsUser:
    def get_current_user(self):
        name = self.get_argument("user", "")
        self._token_authenticated = self.get_argument("token", "") == "yes"
        return {"name": name, "admin": name == "admin"} if name else None


class _API(_AsUser, SupportAPIHandler):
    pass


class _Page(_AsUser, SupportPageHandler):
    pass


class _Answer(_AsUser, AnswerHandler):
    pass


@pytest.fixture
def mailbox():
    box = _Mailbox()
    sock, box.port = bind_unused_port()
    sock.close()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
async def service(repo, tmp_path, mailbox):
    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["hub"]["state_dir"] = str(tmp_path)
    raw["support"].update(host="127.0.0.1", port=mailbox.port)
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    prefix = "/services/factoryhub/"
    secret = b"s" * 32
    app = Application(
        [
            (f"{prefix}api/support", _API),
            (f"{prefix}support", _Page),
            (rf"{prefix}support/(\d+)", _Answer),
        ],
        cookie_secret=secret,
        **{SITE_FILE: SiteFile(str(path)), PREFIX: prefix},
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}{prefix}", secret
    server.stop()


async def _fetch(url, **kwargs):
    return await AsyncHTTPClient().fetch(url, raise_error=False, **kwargs)


async def _file(base, user, body, token="yes"):  # noqa: S107 - not a password
    return await _fetch(
        f"{base}api/support?user={user}&token={token}",
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )


async def test_a_ticket_is_mailed_numbered_and_seen_by_its_learner_and_staff_only(service, mailbox):
    base, _ = service
    text = "<script>alert(1)</script> my kernel dies\r\nBcc: victim@example.org"
    r = await _file(base, "alice", {"text": text, "context": CONTEXT})
    assert r.code == 201, r.body
    answer = json.loads(r.body)
    number = answer["ticket"]
    assert answer["mailed"] and answer["sent"].startswith("<script>alert(1)</script>")
    (envelope,) = mailbox.messages
    assert envelope.rcpt_tos == ["support@demo.invalid"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"].startswith(f"[FactoryHub #{number}] alice: ")
    assert mail["Bcc"] is None and "job 42 on node cn01" in mail.get_content()
    await _file(base, "bob", {"text": "bob's own"})
    mine = json.loads((await _fetch(f"{base}api/support?user=bob")).body)["tickets"]
    assert [t["user"] for t in mine] == ["bob"]
    page = (await _fetch(f"{base}support?user=bob")).body.decode()
    assert "bob&#39;s own" in page and "my kernel dies" not in page
    staff_page = (await _fetch(f"{base}support?user=admin")).body.decode()
    assert f'id="ticket-{number}"' in staff_page and "<script>alert" not in staff_page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in staff_page


async def test_staff_answer_with_the_pages_token_and_the_learner_reads_it(service):
    base, secret = service
    number = json.loads((await _file(base, "alice", {"text": "help"})).body)["ticket"]
    form = (
        f"answer=Restart+the+kernel.&status=answered&_token={form_token(secret, 'admin', 'answer')}"
    )
    forged = await _fetch(
        f"{base}support/{number}?user=admin", method="POST", body="answer=x&status=closed"
    )
    assert forged.code == 403  # a cross-site form has no token
    learner = await _fetch(
        f"{base}support/{number}?user=alice",
        method="POST",
        body=form.replace(
            form_token(secret, "admin", "answer"), form_token(secret, "alice", "answer")
        ),
    )
    assert learner.code == 403  # a learner answers nothing
    r = await _fetch(
        f"{base}support/{number}?user=admin", method="POST", body=form, follow_redirects=False
    )
    assert r.code == 303
    (ticket,) = json.loads((await _fetch(f"{base}api/support?user=alice")).body)["tickets"]
    assert ticket["answer"] == "Restart the kernel." and ticket["status"] == "answered"


async def test_a_bad_request_is_a_clear_400_and_a_cookie_alone_files_nothing(service, mailbox):
    base, _ = service
    r = await _file(base, "alice", {"text": ""})
    assert r.code == 400 and json.loads(r.body) == {"message": "text: write what went wrong"}
    r = await _file(base, "alice", {"text": "x"}, token="no")
    assert r.code == 403
    r = await _fetch(f"{base}api/support?user=alice&token=yes", method="POST", body="text=x")
    assert r.code == 415
    assert mailbox.messages == []


async def test_a_learner_files_at_most_ten_tickets_an_hour(service, mailbox):
    base, _ = service
    for i in range(10):
        assert (await _file(base, "carol", {"text": f"n{i}"})).code == 201
    r = await _file(base, "carol", {"text": "one more"})
    assert r.code == 429 and "at most 10 requests an hour" in json.loads(r.body)["message"]
    assert len(mailbox.messages) == 10
    assert (await _file(base, "dave", {"text": "mine"})).code == 201  # others are not held


def test_starttls_checks_the_servers_certificate(tmp_path, demo_site, monkeypatch):
    """STARTTLS to a real SMTP server whose certificate the client trusts (SSL_CERT_FILE), and
    a refusal when it does not: the mail never goes out unencrypted or to an impostor."""
    import ssl
    import subprocess
    from dataclasses import replace

    from factoryhub.service.support_page import send_mail

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = _Mailbox()
    sock, port = bind_unused_port()
    sock.close()
    controller = Controller(
        box, hostname="localhost", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        settings = replace(demo_site.support, host="localhost", port=port, starttls=True)
        request = parse_support_request({"text": "over TLS"})
        mail = support_mail(3, "alice", request, settings, demo_site)
        with pytest.raises(ssl.SSLCertVerificationError):
            send_mail(settings, mail)  # a certificate no CA of the system signed
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        send_mail(settings, mail)
    finally:
        controller.stop()
    (envelope,) = box.messages
    assert b"over TLS" in envelope.content


async def test_the_support_page_files_a_ticket_without_a_session(service, mailbox):
    base, secret = service
    page = (await _fetch(f"{base}support?user=erin")).body.decode()
    token = form_token(secret, "erin", "support")
    assert f'name="_token" value="{token}"' in page and 'id="fh-ask"' in page
    forged = await _fetch(f"{base}support?user=erin", method="POST", body="text=down%3F")
    assert forged.code == 403 and mailbox.messages == []
    empty = await _fetch(f"{base}support?user=erin", method="POST", body=f"text=&_token={token}")
    assert empty.code == 400 and "write what went wrong" in empty.body.decode()
    r = await _fetch(
        f"{base}support?user=erin",
        method="POST",
        body=f"text=Is+the+machine+down%3F&_token={token}",
        follow_redirects=False,
    )
    assert r.code == 303 and "support#ticket-" in r.headers["Location"]
    (envelope,) = mailbox.messages
    assert "Is the machine down?" in envelope.content.decode()
    assert "Session: job (none)" in envelope.content.decode()
