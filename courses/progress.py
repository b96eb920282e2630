"""An exercise passed in a workshop seat's session, reported to the hub service from the
kernel (``POST api/progress`` with the session's token, which the kernel inherits: the
service files it under the token's own seat, and refuses anyone who is no seat of a running
workshop — the kernel cannot tell, a seat from the site's pool having the account's own name).
Nothing happens outside a FactoryHub session, and nothing a report does can fail or slow the
learner's cell: it is sent from a thread, once per exercise, and a failure is forgotten."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Mapping

from factoryhub.announcements import service_url
from factoryhub.datasets import DatasetError, session_site

TIMEOUT = 5.0


def _send(url: str, token: str, body: dict) -> None:
    request = urllib.request.Request(  # noqa: S310 - the site's own hub URL (http or https)
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT):  # noqa: S310
            pass
    except (OSError, ValueError):
        pass  # progress is a courtesy to the trainers; the exercise itself is done


def report_passed(course: str, exercise: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send "`course`:`exercise` passed" for this session's user (the service keeps it for a
    seat only); False outside a FactoryHub session."""
    env = os.environ if environ is None else environ
    token = env.get("JUPYTERHUB_API_TOKEN", "")
    if not course or not token:
        return False
    try:
        site = session_site(env)
    except DatasetError:
        return False
    body = {"exercises_passed": [f"{course}:{exercise}"]}
    url = f"{service_url(site)}api/progress"
    threading.Thread(target=_send, args=(url, token, body), daemon=True).start()
    return True
