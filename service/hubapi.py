"""The hub's REST API as this service calls it, with the service's own token (the environment
JupyterHub starts it with) and the rights of its role (`spawners.hubconfig`): start and stop a
seat's server, grant and revoke shares of a server. Callers check who may ask first."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

TIMEOUT = 20.0


class HubAPIError(Exception):
    """The hub refused or did not answer; `status` is its HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def user_path(user: str, *rest: str) -> str:
    return "/".join([quote(user, safe=""), *(quote(part, safe="") for part in rest)])


async def hub_api(method: str, path: str, body: object = None) -> dict:
    """`method` `path` (after /hub/api/) as this service; the JSON answer ({} when empty)."""
    url = f"{os.environ['JUPYTERHUB_API_URL'].rstrip('/')}/{path}"
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    try:
        answer = await AsyncHTTPClient().fetch(
            url,
            method=method,
            headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=TIMEOUT,
            follow_redirects=False,
        )
    except HTTPClientError as exc:
        message = ""
        if exc.response is not None and exc.response.body:
            try:
                message = str(json.loads(exc.response.body).get("message", ""))[:300]
            except ValueError:
                message = ""
        raise HubAPIError(exc.code, message or str(exc)) from None
    except OSError as exc:
        raise HubAPIError(0, f"the hub did not answer: {exc}") from None
    return json.loads(answer.body) if answer.body else {}
