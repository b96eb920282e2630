"""Support requests in the hub service.

- ``POST api/support`` (JSON ``{"text", "context"}``, the learner's session token, as the
  support widget sends it): a ticket is kept (numbered, status "open"), mailed to the support
  centre (site.toml [support]) and its number answered; ``GET api/support``: the caller's own
  tickets with their answers.
- ``GET support``: the support page. Support staff (the hub's admins, the site's staff group)
  see every ticket and answer it (``POST support/<n>``, a form with a token of this service);
  everyone else sees their own tickets only.

A learner's text is shown escaped (Jinja autoescape) and mailed as plain text.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http import HTTPStatus

from tornado import web

from factoryhub.datasets import groups_of
from factoryhub.servicedb import ServiceDB, db_path
from factoryhub.site import Site, SupportSettings
from factoryhub.support import (
    MAX_PER_HOUR,
    STATUSES,
    SupportError,
    SupportRequest,
    is_support_staff,
    parse_answer,
    parse_support_request,
    preview_text,
    support_mail,
)

from .pages import ServicePage

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a request's JSON: the text and the context's bounded lines fit
SMTP_TIMEOUT = 10.0


@lru_cache(maxsize=4)
def service_db(path: str) -> ServiceDB:
    return ServiceDB(path)


def form_token(secret: bytes, user: str, purpose: str) -> str:
    """A token for this service's own forms: only a page this service served to `user` has it
    (a form posted from another site has not)."""
    return hmac.new(secret, f"{user}\0{purpose}".encode(), hashlib.sha256).hexdigest()


def send_mail(settings: SupportSettings, message) -> None:
    """Deliver `message` by SMTP (blocking; run it in a thread)."""
    with smtplib.SMTP(settings.host, settings.port, timeout=SMTP_TIMEOUT) as smtp:
        if settings.starttls:
            # the server's certificate and name checked against the system's CAs (smtplib's
            # own default checks neither)
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        smtp.send_message(message)


class ServiceAPI(ServicePage):
    """JSON handlers of the service: errors as ``{"message"}``, never a page or a traceback."""

    def reply(self, status: int, body: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def write_error(self, status_code: int, **kwargs: object) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = HTTPStatus(status_code).phrase
        if isinstance(exc, web.HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message
        self.reply(status_code, {"message": message})

    def json_body(self) -> object:
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"at most {MAX_BODY // 1024} KB")
        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            raise web.HTTPError(415, "send JSON (Content-Type: application/json)")
        try:
            return json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "the body is not JSON") from None

    def require_token_or_form(self, purpose: str) -> None:
        """A change needs the caller's API token, or this service's form token (a browser's
        cookie alone, which another site's page could make it send, is not enough)."""
        if getattr(self, "_token_authenticated", False):
            return
        user = self.current_user["name"]
        given = self.get_argument("_token", "") or self.request.headers.get(
            "X-FactoryHub-Token", ""
        )
        expected = form_token(self.settings["cookie_secret"], user, purpose)
        if not hmac.compare_digest(given, expected):
            raise web.HTTPError(403, "use your API token, or this service's own page")

    @property
    def db(self) -> ServiceDB:
        return service_db(str(db_path(self.site)))


def staff(site: Site, user: dict) -> bool:
    name = user["name"]
    return is_support_staff(site, name, bool(user.get("admin")), groups_of(name))


async def deliver(site: Site, number: int, user: str, request: SupportRequest, db) -> bool:
    """Mail ticket `number` to the support centre; False (and the ticket kept unmailed, shown
    so on the support page) when the site has no SMTP server or it refused."""
    settings = site.support
    if not settings.host:
        return False
    message = support_mail(number, user, request, settings, site)
    try:
        await asyncio.to_thread(send_mail, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("support ticket #%d not mailed to %s: %s", number, settings.mail_to, exc)
        return False
    db.mark_mailed(number)
    return True


class TooMany(Exception):
    """The learner filed `MAX_PER_HOUR` tickets in the last hour."""


async def file_ticket(handler: ServiceAPI, user: str, request: SupportRequest) -> tuple[int, bool]:
    """Keep and mail `request` of `user`: (its number, whether it was mailed)."""
    site, db = handler.site, handler.db
    now = datetime.now(UTC)
    if db.tickets_since(user, now - timedelta(hours=1)) >= MAX_PER_HOUR:
        handler.set_header("Retry-After", "3600")
        raise TooMany(
            f"at most {MAX_PER_HOUR} requests an hour: your tickets are on the support page"
        )
    number = db.add_ticket(user, request, now)
    log.info("support ticket #%d from %s", number, user)
    return number, await deliver(site, number, user, request, db)


class SupportAPIHandler(ServiceAPI):
    """A learner's tickets: file one, or read their own."""

    @web.authenticated
    def get(self) -> None:
        user = self.current_user["name"]
        self.reply(200, {"tickets": [t.to_json() for t in self.db.tickets(user)]})

    @web.authenticated
    async def post(self) -> None:
        self.require_token_or_form("support")
        user = self.current_user["name"]
        try:
            request = parse_support_request(self.json_body())
            number, mailed = await file_ticket(self, user, request)
        except SupportError as exc:
            self.reply(400, {"message": str(exc)})
            return
        except TooMany as exc:
            self.reply(429, {"message": str(exc)})
            return
        where = self.site.support.mail_to if mailed else "the support page"
        self.reply(
            201,
            {
                "ticket": number,
                "status": "open",
                "mailed": mailed,
                "message": f"Ticket #{number} is with the support centre ({where}).",
                "sent": preview_text(request),
            },
        )


class SupportPageHandler(ServiceAPI):
    """The support page: every ticket for staff, one's own for everyone else; and a form to
    ask without a session (no session context then: "is the machine down?")."""

    def write_error(self, status_code: int, **kwargs: object) -> None:
        ServicePage.write_error(self, status_code, **kwargs)  # a page, not JSON

    @web.authenticated
    def get(self) -> None:
        user = self.current_user
        site = self.site
        is_staff = staff(site, user)
        tickets = self.db.tickets(None if is_staff else user["name"])
        secret = self.settings["cookie_secret"]
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page(
                "support.html",
                active="support",
                staff=is_staff,
                tickets=tickets,
                statuses=STATUSES,
                token=form_token(secret, user["name"], "answer"),
                ask_token=form_token(secret, user["name"], "support"),
                preview=preview_text,
            )
        )

    @web.authenticated
    async def post(self) -> None:
        self.require_token_or_form("support")
        user = self.current_user["name"]
        try:
            request = parse_support_request({"text": self.get_body_argument("text", "")})
            number, _ = await file_ticket(self, user, request)
        except SupportError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except TooMany as exc:
            raise web.HTTPError(429, str(exc)) from None
        self.redirect(f"{self.service_prefix}support#ticket-{number}", status=303)


class AnswerHandler(ServiceAPI):
    """A staff member's answer (and new status) for ticket `number`, from the support page."""

    def write_error(self, status_code: int, **kwargs: object) -> None:
        ServicePage.write_error(self, status_code, **kwargs)  # a page, not JSON

    @web.authenticated
    def post(self, number: str) -> None:
        user = self.current_user
        if not staff(self.site, user):
            raise web.HTTPError(403)
        self.require_token_or_form("answer")
        try:
            text, status = parse_answer(
                self.get_body_argument("answer", ""), self.get_body_argument("status", "")
            )
        except SupportError as exc:
            raise web.HTTPError(400, str(exc)) from None
        if not self.db.answer(int(number), user["name"], text, status, datetime.now(UTC)):
            raise web.HTTPError(404, f"there is no ticket #{int(number)}")
        log.info("support ticket #%d %s by %s", int(number), status, user["name"])
        self.redirect(f"{self.service_prefix}support#ticket-{int(number)}", status=303)
