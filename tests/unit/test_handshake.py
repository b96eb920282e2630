import pytest

from factoryhub.handshake import (
    READY_FD_ENV,
    format_port_report,
    new_challenge,
    parse_port_report,
    proves_identity,
    session_proof,
    wake_line,
)


def test_round_trip():
    assert parse_port_report(format_port_report(37201)) == 37201


@pytest.mark.parametrize(
    "comment",
    [
        "",
        "(null)",
        "37201",
        "fhport:80",
        "fhport:99999",
        "fhport:3720a",
        "fhport: 37201",
        "fhport:37201\n",
        "fhport:37201;host=evil",
        "host=10.0.0.9 fhport:37201",
        "fhport:٣٧٢٠١",
        "FHPORT:37201",
    ],
)
def test_anything_but_a_port_is_ignored(comment):
    assert parse_port_report(comment) is None


def test_format_refuses_privileged_ports():
    with pytest.raises(ValueError):
        format_port_report(22)


async def test_the_session_wakes_a_waiting_hub_once_through_its_step_output():
    import os

    from factoryhub.handshake import READY_FD_ENV
    from factoryhub.session.report import announce_ready
    from factoryhub.spawners.launch import ReadyPipe

    pipe = ReadyPipe()
    step_end = os.dup(pipe.write_fd)  # what the step inherits through srun
    await pipe.start()
    assert not await pipe.wait(0.05)  # nothing said yet: look at Slurm as usual
    environ = {READY_FD_ENV: str(step_end)}
    announce_ready(45678, environ)
    assert await pipe.wait(1.0) and pipe.port == 45678  # the port, as the comment has it
    assert READY_FD_ENV not in environ  # kernels started later do not get it
    announce_ready(45678, environ)  # a second call does nothing
    pipe.close()


@pytest.mark.parametrize(
    "line",
    [b"port reported\n", b"fhport:80\n", b"fhport:45678 fhport:1\n", b"\xff\xfe\n", b"x" * 5000],
)
async def test_a_wake_up_that_is_not_exactly_a_port_report_gives_no_port(line):
    import os

    from factoryhub.spawners.launch import ReadyPipe

    pipe = ReadyPipe()
    step_end = os.dup(pipe.write_fd)
    await pipe.start()
    os.write(step_end, line)
    os.close(step_end)
    await pipe.wait(1.0)
    assert pipe.port is None
    pipe.close()


async def test_closing_the_ready_pipe_twice_closes_nothing_else():
    import os

    from factoryhub.spawners.launch import ReadyPipe

    pipe = ReadyPipe()
    await pipe.start()
    pipe.close()
    other_r, other_w = os.pipe()  # may reuse the numbers the pipe had
    pipe.close()
    os.write(other_w, b"x")  # still open: the second close touched nothing
    assert os.read(other_r, 1) == b"x"
    os.close(other_r)
    os.close(other_w)


def test_only_the_holder_of_the_token_answers_a_challenge():
    challenge = new_challenge()
    answer = session_proof("token-of-alices-session", challenge)
    assert proves_identity("token-of-alices-session", challenge, answer)
    assert not proves_identity("token-of-bobs-session", challenge, answer)
    assert not proves_identity("token-of-alices-session", new_challenge(), answer)  # no replay
    assert not proves_identity("token-of-alices-session", challenge, "")


@pytest.mark.parametrize("challenge", ["", "abc", "g" * 64, "A" * 64, "0" * 65])
def test_a_malformed_challenge_gets_no_answer(challenge):
    assert session_proof("token", challenge) == ""
    assert not proves_identity("token", challenge, "")


async def test_the_session_reports_the_port_jupyter_server_chose_once_it_listens(monkeypatch):
    import asyncio
    import logging

    from jupyter_server.serverapp import ServerApp
    from tornado.ioloop import IOLoop

    from factoryhub.session import report

    app = ServerApp(port=0, ip="127.0.0.1", log=logging.getLogger("test-serverapp"))
    app.io_loop, app.web_app = IOLoop.current(), object()  # what init_httpserver needs
    app.ssl_options = None  # as init_webapp leaves it without a certificate
    assert report.bound_port(app) == 0  # extensions load before the server is made
    comments = []

    class Client:
        async def set_comment(self, job_id, comment):
            comments.append((job_id, comment))

    monkeypatch.setattr(report, "session_client", Client)
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    reporting = asyncio.ensure_future(report.report_port(app))  # queued at extension load
    app.init_httpserver()  # --ServerApp.port=0: jupyter-server picks a port, queues its bind
    try:
        await asyncio.wait_for(reporting, 5)
        port = report.bound_port(app)
        assert port > 1024 and comments == [("123", format_port_report(port))]
        _, writer = await asyncio.open_connection("127.0.0.1", port)  # it listens
        writer.close()
    finally:
        app.http_server.stop()


async def test_a_waiting_hub_is_woken_before_the_comment_is_written(monkeypatch):
    """The wake-up first: a room's 200 `scontrol update`s of the comment come after each
    start, not inside it (P7); the comment is still written."""
    import logging
    import os

    from factoryhub.session import report

    class App:
        http_server, port, log = object(), 45678, logging.getLogger("test-serverapp")

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    said_first = []

    class Client:
        async def set_comment(self, job_id, comment):
            try:
                said_first.append(os.read(read_end, 100))
            except BlockingIOError:
                said_first.append(b"")

    monkeypatch.setattr(report, "session_client", Client)
    monkeypatch.setenv("SLURM_JOB_ID", "123")
    monkeypatch.setenv(READY_FD_ENV, str(write_end))
    try:
        await report.report_port(App())
        assert said_first == [wake_line(45678)]
    finally:
        os.close(read_end)
