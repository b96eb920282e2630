"""The benchmarks' lean single-user server (factoryhub.demo.leanserver): it takes and ignores
the spawner's arguments, answers the hub's proof challenge with the session token's HMAC and
everything else under its prefix with jupyter-server's version JSON, over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json

from factoryhub.demo.leanserver import (
    SESSION_EXTENSION_ARG,
    LeanSettings,
    answer,
    listen,
    read_settings,
    serve,
)
from factoryhub.handshake import new_challenge, proves_identity

ENV = {"JUPYTERHUB_SERVICE_PREFIX": "/user/ws-p7-001/", "JUPYTERHUB_API_TOKEN": "t0ken"}


def test_the_spawners_arguments_are_taken_and_ignored():
    argv = ["--ServerApp.ip=127.0.0.1", "--LabApp.workspaces_dir=/x", "--ServerApp.port=0"]
    settings = read_settings([*argv, SESSION_EXTENSION_ARG, "--debug"], ENV)
    assert settings == LeanSettings("127.0.0.1", 0, "/user/ws-p7-001/", "t0ken", report=True)
    floor = read_settings(["--ServerApp.port=30001"], {"JUPYTERHUB_SERVICE_PREFIX": "/floor/a"})
    assert (floor.port, floor.prefix, floor.report) == (30001, "/floor/a/", False)
    assert floor.ip == LeanSettings.ip  # IPv4's every interface, one socket


async def test_with_no_address_it_listens_on_one_ipv4_socket_at_the_port_it_reports():
    """Every interface would give asyncio an IPv6 socket too, on another port: the hub, which
    connects to the node's IPv4 address, found nothing (or another server) at the reported one
    in 3 of 8 starts."""
    server, port = await listen(read_settings([], ENV))
    try:
        assert len(server.sockets) == 1 and server.sockets[0].getsockname()[1] == port
        status, _ = await _get(port, "/user/ws-p7-001/api")
        assert status == "HTTP/1.1 200 OK"
    finally:
        server.close()
        await server.wait_closed()


def test_the_proof_is_the_tokens_and_everything_else_is_the_version():
    settings = read_settings([], ENV)
    challenge = new_challenge()
    status, _, body = answer(f"/user/ws-p7-001/factoryhub/proof?challenge={challenge}", settings)
    assert status == 200 and proves_identity("t0ken", challenge, body.decode())
    assert not proves_identity("other", challenge, body.decode())
    assert answer("/user/ws-p7-001/api", settings)[:2] == (200, "application/json")
    assert json.loads(answer("/user/ws-p7-001/api/status", settings)[2]) == {"version": "2.21.1"}
    assert answer("/user/someone-else/api", settings)[0] == 404


async def _get(port: int, target: str) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reply = await reader.read()
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), body


async def test_it_answers_over_a_socket(unused_tcp_port):
    settings = read_settings([f"--ServerApp.port={unused_tcp_port}"], ENV)
    task = asyncio.create_task(serve(settings))
    try:
        for _ in range(100):
            with contextlib.suppress(OSError):
                status, body = await _get(unused_tcp_port, "/user/ws-p7-001/api")
                break
            await asyncio.sleep(0.02)
        assert status == "HTTP/1.1 200 OK" and json.loads(body) == {"version": "2.21.1"}
        challenge = new_challenge()
        _, proof = await _get(
            unused_tcp_port, f"/user/ws-p7-001/factoryhub/proof?challenge={challenge}"
        )
        assert proves_identity("t0ken", challenge, proof.decode())
        status, _ = await _get(unused_tcp_port, "/elsewhere")
        assert status == "HTTP/1.1 404 Error"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
