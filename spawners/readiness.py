"""The hub's side of the readiness handshake (`factoryhub.handshake`): ask the server at a
reported port to prove it is the session's before any route leads to it."""

from __future__ import annotations

import asyncio
import logging

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from factoryhub.handshake import PROOF_PATH, new_challenge, proves_identity

# A server that did not answer at all (a timeout, including one in the hub's own queue of HTTP
# requests while 200 learners start at once, or a refused connection) is asked again; one that
# answered wrongly is not. P7 (200 seats at once, no spawn limit) saw 2 genuine sessions ended
# as impostors after one unanswered try of 5 s.
ATTEMPTS = 3
RETRY_AFTER = 1.0
_log = logging.getLogger(__name__)


async def ask_for_proof(
    base: str,
    token: str,
    timeout: float = 5.0,
    *,
    attempts: int = ATTEMPTS,
    log: logging.Logger | logging.LoggerAdapter | None = None,
) -> bool:
    """Whether the server at `base` (``http://host:port/user/…/``) holds `token` (the hub's
    side of the handshake). A wrong answer, or an HTTP error status, is a no at once; no answer
    within `timeout` is asked again, up to `attempts` times. Each failure is logged with its
    reason (never the token or the answer)."""
    log = log or _log
    for attempt in range(1, attempts + 1):
        challenge = new_challenge()
        url = f"{base.rstrip('/')}/{PROOF_PATH}?challenge={challenge}"
        try:
            response = await AsyncHTTPClient().fetch(
                url, request_timeout=timeout, follow_redirects=False
            )
        except HTTPClientError as exc:
            if exc.code != 599:  # it answered, with an error status: not this session's server
                log.warning("proof at %s: the server answered HTTP %s", base, exc.code)
                return False
            reason = str(exc)
        except (OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
        else:
            if proves_identity(token, challenge, response.body[:128].decode(errors="replace")):
                return True
            log.warning("proof at %s: the answer is not the session token's", base)
            return False
        log.warning("proof at %s: no answer (try %d of %d): %s", base, attempt, attempts, reason)
        if attempt < attempts:
            await asyncio.sleep(RETRY_AFTER)
    return False
