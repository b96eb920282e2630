"""The handshake between a session and the hub, as data (pure; both sides import it).

- **The port**, in the job's own Slurm comment, ``fhport:<port>``: the channel carries one
  integer and nothing else. The job writes it (a learner may only change their own job); the hub
  reads it in the same `squeue --json` it polls with and accepts only an exact match in the
  unprivileged port range. The host never comes from the job: the hub takes the node from Slurm
  and its address from the node's NodeAddr.
- **The wake-up**: a session started as an immediate allocation's step also says the same
  report, one line, on a descriptor to the hub (its step's output, `READY_FD_ENV`), just
  before it sets the comment: the hub then need not ask Slurm again to read it (every look is
  an `squeue` of the whole site), and the comment's `scontrol update` is not on the start's
  path. The comment stays the record for a hub that was not waiting on the step (a queued
  job, a look after the wake-up was missed). Both channels are the learner's own, so what
  either says is proven before the hub routes to it.
- **The proof**: a port says nothing of who listens on it; a learner could report any port of
  the node, another service's among them. So before the hub routes to it, the server proves it is
  this session's: the hub sends a fresh random challenge to ``<base_url>factoryhub/proof`` and
  expects its HMAC under the session's API token, which only the hub and this session's own
  processes hold.

The session's side is `factoryhub.session`, the hub's `factoryhub.spawners.readiness`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "fhport:"
READY_FD_ENV = "FACTORYHUB_READY_FD"  # a descriptor to the hub: "the server listens at <port>"
_REPORT = re.compile(r"fhport:(\d{4,5})", re.ASCII)
LOWEST_PORT = 1024
HIGHEST_PORT = 65535
PROOF_PATH = "factoryhub/proof"
_CHALLENGE = re.compile(r"[0-9a-f]{64}", re.ASCII)


def format_port_report(port: int) -> str:
    """The comment a session sets once it listens."""
    if not LOWEST_PORT <= port <= HIGHEST_PORT:
        raise ValueError(f"port {port} is outside {LOWEST_PORT}-{HIGHEST_PORT}")
    return f"{PREFIX}{port}"


def parse_port_report(comment: str) -> int | None:
    """The port in a job comment, or None for anything that is not exactly a port report."""
    match = _REPORT.fullmatch(comment)
    if not match:
        return None
    port = int(match.group(1))
    return port if LOWEST_PORT <= port <= HIGHEST_PORT else None


def wake_line(port: int) -> bytes:
    """What a session says on its wake-up descriptor once it listens (before the comment)."""
    return f"{format_port_report(port)}\n".encode()


def port_in_wake(line: bytes) -> int | None:
    """The port in a wake-up line, or None for anything that is not exactly a port report
    (the line is still a wake-up: look at Slurm)."""
    try:
        text = line.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    return parse_port_report(text)


def new_challenge() -> str:
    return secrets.token_hex(32)


def session_proof(token: str, challenge: str) -> str:
    """The answer to `challenge` of a server holding `token` ("" for a malformed challenge)."""
    if not token or not _CHALLENGE.fullmatch(challenge):
        return ""
    return hmac.new(token.encode(), challenge.encode(), hashlib.sha256).hexdigest()


def proves_identity(token: str, challenge: str, answer: str) -> bool:
    expected = session_proof(token, challenge)
    return bool(expected) and hmac.compare_digest(expected, answer.strip()[:64])
