"""The hub service from a kernel: its JSON API through the hub's proxy, with the session's own
token (JupyterHub gives the session's server, and so its kernels, JUPYTERHUB_API_TOKEN; its
scopes let it call the FactoryHub service as its learner and nothing more)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping

from factoryhub.announcements import service_url
from factoryhub.site import Site

TIMEOUT = 20.0  # a support request waits for the mail to the support centre


class ServiceUnavailable(RuntimeError):
    """The hub service did not answer, or refused; the message says what it said."""


def call_service(
    site: Site,
    method: str,
    path: str,
    body: object = None,
    environ: Mapping[str, str] | None = None,
) -> dict:
    """``method`` ``path`` (e.g. "api/support") of the hub service; its JSON answer."""
    env = os.environ if environ is None else environ
    token = env.get("JUPYTERHUB_API_TOKEN", "")
    if not token:
        raise ServiceUnavailable("no JUPYTERHUB_API_TOKEN: this works inside a FactoryHub session")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - the site's own hub URL (http or https)
        f"{service_url(site)}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        raise ServiceUnavailable(_message(exc)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ServiceUnavailable(f"the hub service did not answer: {exc}") from None


def _message(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("message") or exc.reason)
    except ValueError:
        return f"the hub service answered {exc.code} {exc.reason}"
