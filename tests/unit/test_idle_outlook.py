"""JupyterLab's idle warning and "Keep my session" (issue 16): when the culler would stop a
session (factoryhub.culling.idle_outlook), a learner's own keep (keep_session, replacing
their earlier keep), the budget indicator's words (session.services.indicator_text), the
session's relay to the hub service, and the plugin's files as pyproject.toml ships them."""

import json
import shutil
import subprocess
import tomllib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application, RequestHandler

from factoryhub.culling import (
    Exemption,
    ServerView,
    cull_reason,
    exemptions_text,
    idle_outlook,
    keep_session,
    parse_exemptions,
)
from factoryhub.session.services import call_service, indicator_text, server_name
from factoryhub.site import CullingSettings, SiteError, parse_site

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RULES = CullingSettings(idle_minutes=60, gpu_idle_minutes=15, warn_minutes=5)
STAFF = {"trainer"}


def view(**fields) -> ServerView:
    values = dict(
        user="alice", name="", gpus=0, reservation="", inactive_minutes=0.0, age_minutes=5.0
    )
    values.update(fields)
    return ServerView(**values)


def test_a_gpu_session_is_told_when_its_rule_stops_it():
    outlook = idle_outlook(view(gpus=2, inactive_minutes=12), RULES, STAFF, [], NOW)
    assert (outlook.rule, outlook.gpus, outlook.limit_minutes) == ("gpu", 2, 15)
    assert outlook.seconds_left == pytest.approx(180) and outlook.warn_minutes == 5
    cpu = idle_outlook(view(inactive_minutes=12), RULES, STAFF, [], NOW)
    assert cpu.rule == "idle" and cpu.seconds_left == pytest.approx(48 * 60)
    late = idle_outlook(view(gpus=1, inactive_minutes=40), RULES, STAFF, [], NOW)
    assert late.seconds_left == 0
    unknown = idle_outlook(view(gpus=1, inactive_minutes=None), RULES, STAFF, [], NOW)
    assert unknown.rule == "gpu" and unknown.seconds_left is None


def test_sessions_never_stopped_say_why():
    staff = idle_outlook(view(user="trainer", gpus=1), RULES, STAFF, [], NOW)
    assert staff.rule == "" and "trainer or admin" in staff.exempt
    off = idle_outlook(view(gpus=1), replace(RULES, enabled=False), STAFF, [], NOW)
    assert off.rule == "" and off.exempt == "culling is off"


def test_keep_adds_one_idle_period_and_the_culler_agrees():
    idle = view(gpus=1, inactive_minutes=14)
    kept = keep_session(idle, RULES, NOW)
    assert kept == Exemption("alice", "", (NOW + timedelta(minutes=15)).isoformat(), "alice")
    outlook = idle_outlook(idle, RULES, STAFF, [kept], NOW)
    assert outlook.seconds_left == pytest.approx(15 * 60) and outlook.kept_until == kept.until
    # the arbiter keeps it until then, and stops it after if it stayed idle
    assert cull_reason(replace(idle, inactive_minutes=20), RULES, STAFF, [kept], NOW) is None
    later = NOW + timedelta(minutes=16)
    assert cull_reason(replace(idle, inactive_minutes=30), RULES, STAFF, [kept], later)
    # a keep covers the learner's own server only
    other = view(user="bob", gpus=1, inactive_minutes=14)
    assert idle_outlook(other, RULES, STAFF, [kept], NOW).kept_until == ""
    named = view(name="gpu-lab", gpus=1, inactive_minutes=14)
    assert idle_outlook(named, RULES, STAFF, [kept], NOW).kept_until == ""


def test_a_second_keep_replaces_the_first_but_never_a_trainers_exemption():
    first = keep_session(view(gpus=1), RULES, NOW)
    trainer = Exemption("alice", "", (NOW + timedelta(hours=5)).isoformat(), "trainer")
    bob = keep_session(view(user="bob", gpus=1), RULES, NOW)
    text = exemptions_text([first, trainer, bob], first, NOW)
    again = keep_session(view(gpus=1), RULES, NOW + timedelta(minutes=5))
    text = exemptions_text(parse_exemptions(text), again, NOW + timedelta(minutes=5))
    assert parse_exemptions(text) == [trainer, bob, again]


def test_warn_minutes_is_checked():
    text = '[hub]\n[session]\npartition="cpu"\nenvironment="d"\n[partitions.cpu]\n'
    text += '[environments.d]\nlabel="d"\nprefix="/p"\n'
    assert parse_site(text).culling.warn_minutes == 5.0
    with pytest.raises(SiteError, match="warn_minutes must be at least 0"):
        parse_site(text + "[culling]\nwarn_minutes = -1\n")


def _account(name: str, limits: dict, used: dict) -> dict:
    lines = [f"You have … left on {name}."]
    return {"account": name, "lines": lines, "limits": limits, "used": used, "running": {}}


def test_the_indicator_names_the_sessions_account_gpu_hours_first():
    data = {
        "known": True,
        "accounts": [
            _account("training", {"cpu": 6000, "gres/gpu": 600}, {"gres/gpu": 30}),
            _account("ai-research", {"cpu": 600, "gres/gpu": 900}, {"gres/gpu": 150}),
        ],
    }
    short, details = indicator_text(data, "ai-research")
    assert short == "12.5 GPU-hours left on ai-research"
    assert details == "You have … left on ai-research."
    assert indicator_text(data, "")[0] == "9.5 GPU-hours left on training"  # the first one
    cpu_only = {"known": True, "accounts": [_account("t", {"cpu": 90}, {"cpu": 30})]}
    assert indicator_text(cpu_only, "t")[0] == "1 CPU-hours left on t"
    assert indicator_text({"known": False, "accounts": []}, "t") == ("", "")


def test_pyproject_ships_the_plugin_and_its_menu_schema(repo):
    files = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    shipped = {src for sources in files["data-files"].values() for src in sources}
    schema = repo / "labextension" / "schemas" / "factoryhub-session" / "support.json"
    assert str(schema.relative_to(repo)) in shipped
    menus = json.loads(schema.read_text())["jupyter.lab.menus"]["main"]
    assert menus[0]["id"] == "jp-mainmenu-help"
    assert {"command": "factoryhub:ask-support", "rank": 0.5} in menus[0]["items"]
    script = repo / "labextension" / "static" / "remoteEntry.js"
    text = script.read_text()
    for plugin in ("idle-warning", "budget-indicator", "support", "announcements"):
        assert f'id: NAME + ":{plugin}"' in text
    if shutil.which("node"):
        assert subprocess.run(["node", "--check", str(script)], check=False).returncode == 0


class _Keep(RequestHandler):
    """The hub service's keep endpoint as the session meets it: records what it was sent."""

    def post(self):
        self.application.settings["seen"].append(
            (self.request.headers.get("Authorization"), json.loads(self.request.body))
        )
        if self.application.settings["refuse"]:
            self.set_status(404)
            self.finish({"message": "you have no running server 'gpu-lab'"})
            return
        self.finish({"rule": "gpu", "kept_until": "2030-01-01T12:15:00+00:00"})


async def test_the_session_keeps_its_own_server_with_its_own_token(demo_site):
    seen = []
    sock, port = bind_unused_port()
    app = Application([(r"/services/factoryhub/api/culling/keep", _Keep)], seen=seen, refuse=False)
    server = HTTPServer(app)
    server.add_sockets([sock])
    site = replace(demo_site, hub=replace(demo_site.hub, url=f"http://127.0.0.1:{port}"))
    body = {"server": server_name({"JUPYTERHUB_SERVER_NAME": "gpu-lab"})}
    kept = await call_service(site, "tok", "POST", "api/culling/keep", body=body)
    app.settings["refuse"] = True
    refused = await call_service(site, "tok", "POST", "api/culling/keep", body=body)
    server.stop()
    gone = await call_service(site, "tok", "POST", "api/culling/keep", body=body)
    assert seen == [("token tok", {"server": "gpu-lab"})] * 2
    assert kept == (200, {"rule": "gpu", "kept_until": "2030-01-01T12:15:00+00:00"})
    assert refused == (404, {"message": "you have no running server 'gpu-lab'"})
    assert gone == (502, {"message": "the hub service did not answer"})


def test_a_trainer_made_by_single_sign_on_is_not_warned_of_a_stop(demo_site):
    """JupyterLab's outlook counts staff as the culler does: a trainer whom the identity
    provider's groups make one (the hub's trainers' group), not named in site.toml, is told
    their session is never stopped (they were warned of a stop the culler would not make)."""
    from types import SimpleNamespace

    from factoryhub.identity import TRAINERS
    from factoryhub.service.culling_api import OwnSessionAPI

    sso = {"name": "sso-trainer", "admin": False, "groups": [TRAINERS]}
    learner = {"name": "sso-learner", "admin": False, "groups": []}
    assert "sso-trainer" not in demo_site.hub.trainers
    for caller, kept in ((sso, True), (learner, False)):
        handler = SimpleNamespace(site=demo_site, current_user=caller)
        staff = OwnSessionAPI.staff(handler)
        outlook = idle_outlook(view(user=caller["name"], gpus=1), RULES, staff, [], NOW)
        assert (outlook.rule == "") is kept
