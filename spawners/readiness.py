"""The hub's side of the readiness handshake (`factoryhub.handshake`): ask the server at a
reported port to prove it is the session's before any route leads to it."""

from __future__ import annotations

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from factoryhub.handshake import PROOF_PATH, new_challenge, proves_identity


async def ask_for_proof(base: str, token: str, timeout: float = 5.0) -> bool:
    """Whether the server at `base` (``http://host:port/user/…/``) holds `token` (the hub's
    side of the handshake): any failure to answer correctly is a no."""
    challenge = new_challenge()
    url = f"{base.rstrip('/')}/{PROOF_PATH}?challenge={challenge}"
    try:
        response = await AsyncHTTPClient().fetch(
            url, request_timeout=timeout, follow_redirects=False
        )
    except (HTTPClientError, OSError, TimeoutError):
        return False
    return proves_identity(token, challenge, response.body[:128].decode(errors="replace"))
