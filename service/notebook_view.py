"""A trainer looks at a seat's notebooks, read-only (issue 15), from the cohort page:

- ``POST workshops/<name>/seats/<seat>/notebooks`` (``path``: a folder, "" for the home): the
  folders and notebooks there, each a button to look at it;
- ``POST workshops/<name>/seats/<seat>/notebook`` (``path``: a ``.ipynb``): the notebook
  rendered as HTML (`factoryhub.notebookview`), and the learner is told in JupyterLab.

Both are POSTs with this service's form token and go through the seat actions' own check
(`workshop_actions._SeatAction._seat`): the workshop's trainers and the site's admins, that
workshop's seats only, an active workshop, a seat somebody joined on.

The notebook is read from the seat's running server through the hub's proxy with the contents
API. Not with this service's own token: the learner's server is the learner's process and sees
every header sent to it, and that token can reach every server of the site. For each look the
service makes a token *of the seat itself*, limited to the seat's own server and a minute, and
deletes it afterwards: if the learner's server keeps it, the learner gains nothing they lacked.
Making it needs the hub's ``tokens`` scope, which JupyterHub cannot limit to the workshops'
seats; this module only ever makes one for a seat the caller trains (the check above).

What comes back is hostile. It is rendered (`factoryhub.notebookview`) in a process of its
own, killed past a time limit and given no secret of the service; the view is served with a
Content-Security-Policy that allows no script, no request and no form, sandboxed (an opaque
origin: the trainer's cookie for this service is out of reach even if something slipped
through), ``nosniff`` and no referrer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from factoryhub.announcements import NewAnnouncement
from factoryhub.notebookview import (
    MAX_BYTES,
    NotebookError,
    PathError,
    folder_path,
    highlight_css,
    listing,
    notebook_path,
)
from factoryhub.site import Site
from factoryhub.workshoprecord import Workshop

from .hubapi import HubAPIError, hub_api, user_path
from .pages import SITE_FILE, ServicePage
from .support_page import form_token
from .workshop_actions import _SEAT, _SeatAction, slot_end_utc

log = logging.getLogger(__name__)
PIPE = asyncio.subprocess.PIPE
TIMEOUT = 20.0  # seconds a read from the learner's server may take
TOKEN_SECONDS = 60  # the life of the seat's token made for one look
TELL_AGAIN = 600.0  # seconds before the same look at the same notebook is told again
RENDER_SECONDS = 30.0  # a notebook that takes longer to render is not shown
_renders = asyncio.Semaphore(2)  # renders at once, for the whole service
# The view: nothing but the page's own styles and data: images; no script, no request, no
# form, no frame; sandboxed into an opaque origin.
VIEW_CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox;"
    " base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The listing: the hub's stylesheet, and forms posted to this service only; no script.
LIST_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
Reader = Callable[[str, dict, int], Awaitable[dict]]  # (path, query, byte limit) -> model
_told: dict[tuple[str, str, str], float] = {}  # (trainer, seat, path) -> when last told


class SessionUnavailable(Exception):
    """The seat's session cannot be read now; the message says why, in a sentence."""


def proxy_origin(site: Site) -> str:
    """Where the hub's proxy listens (``bind_url``, else ``url``): scheme://host:port."""
    public = urlparse(site.hub.bind_url or site.hub.url)
    return f"{public.scheme}://{public.netloc}"


def proxy_ca(site: Site, site_path: str) -> str | None:
    """The certificate to trust for the proxy's HTTPS: the site's own chain, or the one made
    beside the hub's site.toml for ``tls_self_signed`` (factoryhub.demo.hubtls); None: the
    system's CAs (and plain HTTP)."""
    if site.hub.tls_cert:
        candidate = Path(site.hub.tls_cert)
    elif site.hub.tls_self_signed:
        candidate = Path(site_path).parent / "tls" / "cert.pem"
    else:
        return None
    return str(candidate) if os.access(candidate, os.R_OK) else None


def contents_url(origin: str, base_url: str, seat: str, path: str, **query: str) -> str:
    """The contents API address of `path` on `seat`'s default server, through the proxy; each
    part of the path quoted on its own (a "/" of a name cannot become a separator)."""
    parts = "/".join(quote(part, safe="") for part in path.split("/")) if path else ""
    return f"{origin}{base_url}user/{quote(seat, safe='')}/api/contents/{parts}?{urlencode(query)}"


def should_tell(trainer: str, seat: str, path: str, now: float) -> bool:
    """Whether this look is told to the learner: once per notebook and trainer per
    `TELL_AGAIN` seconds (a trainer who reloads does not flood the learner's JupyterLab)."""
    for key in [k for k, when in _told.items() if now - when > TELL_AGAIN]:
        del _told[key]
    if (trainer, seat, path) in _told:
        return False
    _told[(trainer, seat, path)] = now
    return True


async def _running(seat: str) -> None:
    try:
        model = await hub_api("GET", f"users/{user_path(seat)}")
    except HubAPIError as exc:
        log.warning("notebook view: %s's server not read from the hub: %s", seat, exc)
        message = "The hub did not say whether the session runs; try again."
        raise SessionUnavailable(message) from None
    server = (model.get("servers") or {}).get("")
    if not server:
        raise SessionUnavailable(
            f"{seat}'s session is stopped: the learner (or Restart on the cohort page) must"
            " start it first."
        )
    if not server.get("ready"):
        raise SessionUnavailable(f"{seat}'s session is still starting; try again in a minute.")


async def _seat_token(seat: str, trainer: str) -> tuple[str, str]:
    """A token of `seat` for its own server alone, for a minute: (id, token)."""
    made = await hub_api(
        "POST",
        f"users/{user_path(seat)}/tokens",
        {
            "scopes": [f"access:servers!server={seat}/"],
            "expires_in": TOKEN_SECONDS,
            "note": f"read-only look by trainer {trainer} (FactoryHub)",
        },
    )
    return str(made["id"]), str(made["token"])


async def _get(url: str, token: str, ca_certs: str | None, limit: int) -> dict:
    """One GET from the learner's server; its JSON. Redirects are never followed (one from
    the learner's server would carry the token elsewhere) and at most `limit` bytes read."""
    client = AsyncHTTPClient(force_instance=True, max_body_size=limit)
    try:
        answer = await client.fetch(
            url,
            headers={"Authorization": f"token {token}", "Accept": "application/json"},
            request_timeout=TIMEOUT,
            follow_redirects=False,
            ca_certs=ca_certs,
        )
    except HTTPClientError as exc:
        raise SessionUnavailable(_unavailable(exc.code, limit)) from None
    except OSError as exc:
        log.warning("notebook view: %s not reached: %s", url.split("?")[0], exc)
        raise SessionUnavailable("The session did not answer through the hub's proxy.") from None
    finally:
        client.close()
    try:
        return json.loads(answer.body)
    except (ValueError, RecursionError):
        raise SessionUnavailable("The learner's server did not answer with JSON.") from None


def _unavailable(code: int, limit: int) -> str:
    if code in (301, 302, 303, 307, 308, 424, 502, 503):  # the proxy sends it to the hub
        return "The session is stopped or not reachable now: start it first, then look again."
    if code == 404:
        return "There is no such notebook or folder in the learner's home."
    if code == 400:
        return "The learner's server says this is not a notebook it can read."
    if code == 599:
        most = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB"
        return f"The learner's server did not answer in time, or sent more than {most}."
    return f"The learner's server refused the read (HTTP {code})."


async def render_apart(model: dict) -> str:
    """The notebook's sanitised HTML, rendered by ``python -m factoryhub.notebookview`` in a
    process of its own: killed past `RENDER_SECONDS` (a learner can write markdown that takes
    minutes), and holding no secret of the service (its environment is a locale and a path)."""
    env = {"LANG": "C.UTF-8", "PATH": os.defpath}
    if "PYTHONPATH" in os.environ:  # the tests' work tree; nothing secret
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    async with _renders:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "factoryhub.notebookview",
            stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd="/", env=env,
        )  # fmt: skip
        try:
            out, err = await asyncio.wait_for(
                child.communicate(json.dumps(model).encode()), RENDER_SECONDS
            )
        except TimeoutError:
            child.kill()
            await child.wait()
            raise NotebookError(
                f"this notebook takes more than {RENDER_SECONDS:.0f} s to show; open it with"
                " the learner (View / join) instead"
            ) from None
    if child.returncode == 2:
        raise NotebookError(err.decode(errors="replace")[:300])
    if child.returncode != 0:
        log.warning("notebook view: the renderer ended with %s: %s", child.returncode, err[-500:])
        raise NotebookError("the notebook could not be shown")
    return out.decode(errors="replace")


class _SeatLook(_SeatAction):
    """A look at a seat's files: the seat actions' own check, errors as pages."""

    def write_error(self, status_code: int, **kwargs: object) -> None:
        ServicePage.write_error(self, status_code, **kwargs)

    @contextlib.asynccontextmanager
    async def reader(self, seat: str) -> AsyncIterator[Reader]:
        """A reader of the seat's running server for one look, with one token of the seat
        (deleted at the end); a 409 with a sentence when the session cannot be read."""
        site = self.site
        origin, base = proxy_origin(site), self.hub_prefix.removesuffix("hub/")
        ca_certs = proxy_ca(site, self.settings[SITE_FILE].path)
        try:
            await _running(seat)
            try:
                token_id, token = await _seat_token(seat, self.current_user["name"])
            except HubAPIError as exc:
                log.warning("notebook view: no token made for %s: %s", seat, exc)
                message = "The hub did not let the service read the session."
                raise SessionUnavailable(message) from None
            try:
                yield lambda path, query, limit: _get(
                    contents_url(origin, base, seat, path, **query), token, ca_certs, limit
                )
            finally:
                await _forget(seat, token_id)
        except SessionUnavailable as exc:
            raise web.HTTPError(409, str(exc)) from None

    def secure_headers(self, csp: str) -> None:
        self.set_header("Content-Security-Policy", csp)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")

    def path_argument(self, check) -> str:
        try:
            return check(self.get_body_argument("path", ""))
        except PathError as exc:
            raise web.HTTPError(400, str(exc)) from None


async def _forget(seat: str, token_id: str) -> None:
    try:
        await hub_api("DELETE", f"users/{user_path(seat)}/tokens/{quote(token_id, safe='')}")
    except HubAPIError as exc:  # it expires within TOKEN_SECONDS anyway
        log.warning("notebook view: %s's look token %s not deleted: %s", seat, token_id, exc)


class NotebookListHandler(_SeatLook):
    @web.authenticated
    async def post(self, name: str, seat: str) -> None:
        workshop = self._seat(name, seat)
        folder = self.path_argument(folder_path)
        async with self.reader(seat) as read:
            model = await read(folder, {"type": "directory"}, MAX_BYTES)
        user = self.current_user["name"]
        parent = folder.rsplit("/", 1)[0] if "/" in folder else ""
        self.secure_headers(LIST_CSP)
        self.finish(
            self.render_page(
                "notebook_list.html",
                workshop=workshop,
                seat=seat,
                folder=folder,
                parent=parent,
                entries=listing(model, folder),
                token=form_token(self.settings["cookie_secret"], user, "workshop"),
            )
        )


class NotebookViewHandler(_SeatLook):
    @web.authenticated
    async def post(self, name: str, seat: str) -> None:
        workshop = self._seat(name, seat)
        path = self.path_argument(notebook_path)
        async with self.reader(seat) as read:
            meta = await read(path, {"type": "notebook", "content": "0"}, 65536)
            size = meta.get("size") if isinstance(meta, dict) else None
            if isinstance(size, int) and size > MAX_BYTES:
                raise web.HTTPError(
                    413, f"This notebook is bigger than {MAX_BYTES // (1024 * 1024)} MB: open"
                    " it with the learner (View / join) instead."
                )  # fmt: skip
            # as JSON in JSON a notebook may grow (\u escapes): twice the file's bound
            model = await read(path, {"type": "notebook"}, 2 * MAX_BYTES)
        try:
            body = await render_apart(model)
        except NotebookError as exc:
            raise web.HTTPError(422, str(exc)) from None
        trainer = self.current_user["name"]
        self._tell(workshop, seat, path, trainer)
        self.secure_headers(VIEW_CSP)
        self.finish(
            self.render_page(
                "notebook_view.html",
                workshop=workshop,
                seat=seat,
                path=path,
                body=body,
                highlight=highlight_css(),
                fetched=datetime.now(UTC).strftime("%H:%M UTC"),
            )
        )

    def _tell(self, workshop: Workshop, seat: str, path: str, trainer: str) -> None:
        """The learner sees it in JupyterLab, as with the share (an announcement for them)."""
        if not should_tell(trainer, seat, path, time.monotonic()):
            return
        notice = NewAnnouncement(
            text=f"Trainer {trainer} looked at your notebook {path} (read-only).",
            partition="",
            expires=slot_end_utc(workshop),
            user=seat,
        )
        self.db.announce(notice, trainer, datetime.now(UTC))
        log.info("workshop %s: %s looked at %s's %s", workshop.name, trainer, seat, path)


def notebook_routes(prefix: str) -> list[tuple]:
    base = rf"{prefix}workshops/([a-z0-9]{{1,16}})/seats/{_SEAT}"
    return [
        (rf"{base}/notebooks", NotebookListHandler),
        (rf"{base}/notebook", NotebookViewHandler),
    ]
