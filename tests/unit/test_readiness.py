"""The hub's side of the readiness proof (`spawners.readiness.ask_for_proof`) against real
HTTP servers: the session's answer is accepted, a wrong one or an error status refused at once,
and a server that did not answer in time (the hub's HTTP queue under 200 starts) asked again."""

import asyncio
import logging

from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from factoryhub.handshake import session_proof
from factoryhub.spawners import readiness
from factoryhub.spawners.readiness import ask_for_proof

TOKEN = "the-session-token"


def serve(behaviour) -> tuple[HTTPServer, str, list[str]]:
    """A server at /user/a/ whose proof handler does `behaviour(handler, n)` for request n."""
    seen: list[str] = []

    class Proof(RequestHandler):
        async def get(self) -> None:
            seen.append(self.get_argument("challenge"))
            await behaviour(self, len(seen))

    sock, port = bind_unused_port()
    server = HTTPServer(Application([(r"/user/a/factoryhub/proof", Proof)]))
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}/user/a/", seen


async def honest(handler, n) -> None:
    handler.write(session_proof(TOKEN, handler.get_argument("challenge")))


async def test_the_sessions_answer_is_accepted_and_a_wrong_one_refused_at_once(caplog):
    server, base, seen = serve(honest)
    try:
        assert await ask_for_proof(base, TOKEN, 2.0)
        assert not await ask_for_proof(base, "another token", 2.0)
        assert len(seen) == 2  # the wrong answer was not asked again
        assert "not the session token's" in caplog.text and TOKEN not in caplog.text
    finally:
        server.stop()


async def test_an_error_status_is_a_no_at_once(caplog):
    async def not_found(handler, n) -> None:
        handler.set_status(404)

    server, base, seen = serve(not_found)
    try:
        assert not await ask_for_proof(base, TOKEN, 2.0)
        assert len(seen) == 1 and "answered HTTP 404" in caplog.text
    finally:
        server.stop()


async def test_a_server_that_did_not_answer_in_time_is_asked_again(monkeypatch, caplog):
    """The first try times out (as a request waiting in the hub's queue did under 200 starts);
    the second is answered: a genuine session is routed, not ended as an impostor."""
    monkeypatch.setattr(readiness, "RETRY_AFTER", 0.05)

    async def slow_first(handler, n) -> None:
        if n == 1:
            await asyncio.sleep(1.0)
        await honest(handler, n)

    server, base, seen = serve(slow_first)
    try:
        with caplog.at_level(logging.WARNING):
            assert await ask_for_proof(base, TOKEN, 0.3)
        assert len(seen) == 2 and "no answer (try 1 of 3)" in caplog.text
    finally:
        server.stop()


async def test_nobody_listening_is_a_no_after_every_try(monkeypatch, caplog):
    monkeypatch.setattr(readiness, "RETRY_AFTER", 0.01)
    sock, port = bind_unused_port()
    sock.close()  # a port nothing listens on
    assert not await ask_for_proof(f"http://127.0.0.1:{port}/user/a/", TOKEN, 0.5)
    assert "try 3 of 3" in caplog.text
