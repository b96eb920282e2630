"""Support requests with their context, as data (pure).

A learner writes what went wrong; the session attaches its context (job, node, partition,
account, the open notebook, the session log's last lines and errors, versions). The learner is
shown `preview_text` — exactly the text the support centre receives — before anything is sent.
Everything here is hostile input: `parse_support_request` bounds every field and refuses what
does not fit with a sentence that names the field; control characters never pass (no header
injection: the subject is one cleaned line, and `email.policy` refuses line breaks in headers);
pages escape what they show (Jinja autoescape), the mail is plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.policy import SMTP

from .site import Site, SupportSettings

MAX_TEXT = 4000  # characters of the learner's own message
MAX_ANSWER = 4000
MAX_LOG_LINES = 40
MAX_ERRORS = 10
MAX_LINE = 300  # characters per log line or error
MAX_VERSIONS = 16
STATUSES = ("open", "answered", "closed")
MAX_PER_HOUR = 10  # tickets one learner may file in an hour: each is a mail to the centre
_NAME = re.compile(r"[A-Za-z0-9._+-]{0,64}")  # node, partition, account, package names
_VERSION = re.compile(r"[A-Za-z0-9._+-]{1,40}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# What a log line may carry that is the learner's secret: tokens in URLs and headers.
_SECRET = re.compile(r"(?i)(token[=:\s]+|authorization:\s*\w+\s+)[^\s&\"']+")


class SupportError(ValueError):
    """A support request or answer that cannot be taken; the message names the field."""


@dataclass(frozen=True)
class SupportContext:
    """What the session attaches to a request (each field bounded by `parse_support_request`)."""

    job_id: str = ""
    node: str = ""
    partition: str = ""
    account: str = ""
    notebook: str = ""
    log_lines: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    versions: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data.update(
            log_lines=list(self.log_lines), errors=list(self.errors), versions=dict(self.versions)
        )
        return data


@dataclass(frozen=True)
class SupportRequest:
    """A learner's message and its context."""

    text: str
    context: SupportContext = field(default_factory=SupportContext)

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "context": self.context.to_json()}


def redact(line: str) -> str:
    """`line` with what looks like a token (``token=…``, ``Authorization: token …``) hidden."""
    return _SECRET.sub(lambda m: f"{m.group(1)}[hidden]", line)


def one_line(value: str, limit: int = MAX_LINE) -> str:
    """`value` as one line: control characters and line breaks become spaces, cut at `limit`."""
    return _CONTROL.sub(" ", value.replace("\n", " ").replace("\t", " "))[:limit].strip()


def clean_text(value: object, where: str, limit: int) -> str:
    """A message: a string of at most `limit` characters, line breaks kept (CR LF as LF),
    other control characters dropped; refused when empty or too long."""
    if not isinstance(value, str):
        raise SupportError(f"{where}: expected text")
    text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n")).strip()
    if not text:
        raise SupportError(f"{where}: write what went wrong")
    if len(text) > limit:
        raise SupportError(f"{where}: at most {limit} characters (this one has {len(text)})")
    return text


def _name(raw: Mapping, key: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise SupportError(f"context.{key}: letters, digits, . _ + - (64 at most)")
    return value


def _lines(raw: Mapping, key: str, most: int) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SupportError(f"context.{key}: expected a list of lines")
    if len(value) > most:
        raise SupportError(f"context.{key}: at most {most} lines")
    return tuple(redact(one_line(v)) for v in value)


def _versions(raw: Mapping) -> tuple[tuple[str, str], ...]:
    value = raw.get("versions", {})
    if not isinstance(value, dict) or len(value) > MAX_VERSIONS:
        raise SupportError(f"context.versions: at most {MAX_VERSIONS} name: version pairs")
    for name, version in value.items():
        if not (
            _VERSION.fullmatch(name) and isinstance(version, str) and _VERSION.fullmatch(version)
        ):
            raise SupportError("context.versions: names and versions are letters, digits, . _ + -")
    return tuple(value.items())  # in the order sent: the preview's


def parse_context(raw: object) -> SupportContext:
    """The context a session sent, each field checked and bounded."""
    if not isinstance(raw, dict):
        raise SupportError("context: expected an object")
    known = {"job_id", "node", "partition", "account", "notebook", "log_lines", "errors"}
    if unknown := sorted(set(raw) - known - {"versions"}):
        raise SupportError(f"context: unknown field {unknown[0][:40]!r}")
    job_id = raw.get("job_id", "")
    if not isinstance(job_id, str) or not re.fullmatch(r"\d{0,12}", job_id):
        raise SupportError("context.job_id: a Slurm job id (digits)")
    notebook = raw.get("notebook", "")
    if not isinstance(notebook, str):
        raise SupportError("context.notebook: expected a file name")
    return SupportContext(
        job_id=job_id,
        node=_name(raw, "node"),
        partition=_name(raw, "partition"),
        account=_name(raw, "account"),
        notebook=one_line(notebook, 200),
        log_lines=_lines(raw, "log_lines", MAX_LOG_LINES),
        errors=_lines(raw, "errors", MAX_ERRORS),
        versions=_versions(raw),
    )


def parse_support_request(raw: object) -> SupportRequest:
    """The only way a `SupportRequest` comes from outside: ``{"text", "context"}``, checked."""
    if not isinstance(raw, dict):
        raise SupportError("expected a JSON object with text and context")
    if unknown := sorted(set(raw) - {"text", "context"}):
        raise SupportError(f"unknown field {unknown[0][:40]!r} (allowed: text, context)")
    text = clean_text(raw.get("text"), "text", MAX_TEXT)
    return SupportRequest(text, parse_context(raw.get("context", {})))


def context_text(context: SupportContext) -> str:
    """The context as the support centre reads it (and the learner sees before sending)."""
    c = context
    job = f"job {c.job_id or '(none)'} on node {c.node or '(unknown)'}"
    account = c.account or "(not in the session's environment)"
    where = f"partition {c.partition or '(unknown)'}, account {account}"
    lines = [
        f"Session: {job}, {where}",
        f"Open notebook: {c.notebook or '(none)'}",
        "Versions: " + (", ".join(f"{n} {v}" for n, v in c.versions) or "(unknown)"),
        "Last errors:" + ("" if c.errors else " (none)"),
        *(f"  {line}" for line in c.errors),
        "Recent log lines:" + ("" if c.log_lines else " (none)"),
        *(f"  {line}" for line in c.log_lines),
    ]
    return "\n".join(lines)


def preview_text(request: SupportRequest) -> str:
    """Exactly what is sent: the learner's message, then the context."""
    return f"{request.text}\n\n--- attached by FactoryHub ---\n{context_text(request.context)}"


def subject(ticket: int, user: str, request: SupportRequest) -> str:
    """The mail's subject: one line, the ticket, the learner and their first words."""
    first = one_line(request.text.split("\n", 1)[0], 60)
    return f"[FactoryHub #{ticket}] {one_line(user, 40)}: {first}"


def support_mail(
    ticket: int, user: str, request: SupportRequest, settings: SupportSettings, site: Site
) -> EmailMessage:
    """The plain-text mail for the support centre (`email.policy.SMTP` refuses a header with a
    line break, so a subject can never add a header)."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = subject(ticket, user, request)
    message["From"] = settings.mail_from
    message["To"] = settings.mail_to
    message["X-FactoryHub-Ticket"] = str(ticket)
    intro = f"Ticket #{ticket} from {user} on {site.hub.title} ({site.hub.url})"
    message.set_content(f"{intro}\n\n{preview_text(request)}\n")
    return message


def parse_answer(text: object, status: object) -> tuple[str, str]:
    """A staff member's answer and the ticket's new status, checked."""
    if status not in STATUSES:
        raise SupportError(f"status: one of {', '.join(STATUSES)}")
    answer = "" if text in ("", None) else clean_text(text, "answer", MAX_ANSWER)
    return answer, str(status)


def is_support_staff(site: Site, user: str, admin: bool, groups: tuple[str, ...]) -> bool:
    """Who sees and answers every ticket: the hub's admins and the site's staff group."""
    staff = site.support.staff_group
    return admin or user in site.hub.admin_users or bool(staff and staff in groups)
