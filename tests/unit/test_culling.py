"""Idle culling: the rules (factoryhub.culling), the arbiter jupyterhub-idle-culler calls
(factoryhub.service.culler), the service and role in the hub's configuration, the records and
what the spawn form says."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from traitlets.config import Config

from factoryhub.culling import (
    CullRecord,
    ServerView,
    cull_notice,
    cull_reason,
    read_records,
    records_text,
    server_view,
    staff_of,
    write_record,
)
from factoryhub.site import CullingSettings, SiteError, parse_site
from factoryhub.spawners.hubconfig import CULLER, CULLER_SCOPES, apply_site

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
RULES = CullingSettings(idle_minutes=60, gpu_idle_minutes=15, max_age_hours=8)
STAFF = {"trainer", "admin"}


def view(**fields) -> ServerView:
    values = dict(
        user="alice", name="", gpus=0, reservation="", inactive_minutes=0.0, age_minutes=5.0
    )
    values.update(fields)
    return ServerView(**values)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"inactive_minutes": 14.0, "gpus": 2}, None),
        ({"inactive_minutes": 15.0, "gpus": 2}, "held 2 GPUs and was idle for 15 minutes"),
        ({"inactive_minutes": 59.0}, None),  # a CPU session idle as long is kept
        ({"inactive_minutes": 60.0}, "was idle for 1 h (sessions are stopped after 1 h idle)"),
        ({"age_minutes": 8 * 60.0}, "ran for 8 h, the longest a session may run here"),
        ({"inactive_minutes": None, "age_minutes": None}, None),  # nothing known: kept
        ({"inactive_minutes": 600.0, "gpus": 4, "user": "trainer"}, None),  # staff
        ({"inactive_minutes": 600.0, "age_minutes": 900.0, "user": "admin"}, None),
    ],
)
def test_the_rules(fields, expected):
    reason = cull_reason(view(**fields), RULES, STAFF)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and expected in reason


def test_a_gpu_session_goes_before_a_cpu_session_with_the_same_start():
    for minutes in range(0, 200):
        gpu = cull_reason(view(inactive_minutes=float(minutes), gpus=1), RULES, STAFF)
        cpu = cull_reason(view(inactive_minutes=float(minutes)), RULES, STAFF)
        assert not (cpu and not gpu), minutes
    first_gpu = min(
        m for m in range(200) if cull_reason(view(inactive_minutes=m, gpus=1), RULES, ())
    )
    first_cpu = min(m for m in range(200) if cull_reason(view(inactive_minutes=m), RULES, ()))
    assert (first_gpu, first_cpu) == (15, 60)


def test_exemptions_by_user_server_and_reservation_and_off():
    idle = {"inactive_minutes": 500.0, "gpus": 1}
    rules = replace(
        RULES, exempt_users=("bob",), exempt_servers=("demo",), exempt_reservations=("ws1",)
    )
    assert cull_reason(view(user="bob", **idle), rules, ()) is None
    assert cull_reason(view(name="demo", **idle), rules, ()) is None
    assert cull_reason(view(reservation="ws1", **idle), rules, ()) is None
    assert cull_reason(view(reservation="ws2", **idle), rules, ()) is not None
    assert cull_reason(view(user="trainer", **idle), replace(RULES, exempt_staff=False), STAFF)
    assert cull_reason(view(**idle), replace(RULES, enabled=False), ()) is None


def test_server_view_reads_the_hubs_server_model():
    model = {
        "full_name": "alice/gpu-lab",
        "started": "2030-01-01T10:00:00.000000Z",
        "user_options": {"gpus": 2, "reservation": "ws1", "partition": "gpu"},
    }
    seen = server_view(model, timedelta(minutes=20), NOW)
    assert seen == ServerView("alice", "gpu-lab", 2, "ws1", 20.0, 120.0)
    bare = server_view({"full_name": "bob/", "user_options": {"gpus": "x"}}, None, NOW)
    assert bare == ServerView("bob", "", 0, "", None, None)


def test_demo_site_culling_settings_and_bad_values(demo_site):
    assert demo_site.culling.gpu_idle_minutes < demo_site.culling.idle_minutes
    assert staff_of(demo_site) == {"trainer", "admin"}
    text = '[hub]\n[session]\npartition="cpu"\nenvironment="d"\n[partitions.cpu]\n'
    text += '[environments.d]\nlabel="d"\nprefix="/p"\n'
    for bad, message in [
        ("[culling]\ngpu_idle_minutes = 0\n", "must be over 0"),
        ("[culling]\nevery_seconds = 0\n", "every_seconds must be at least 1"),
        ("[culling]\nidle_minute = 3\n", "unknown key culling.idle_minute"),
        ('[culling]\nidle_minutes = "soon"\n', "culling.idle_minutes: expected float"),
    ]:
        with pytest.raises(SiteError, match=message):
            parse_site(text + bad)


def test_the_culler_is_a_hub_service_with_only_the_scopes_it_needs(demo_site, repo):
    c = Config()
    apply_site(c, demo_site, repo / "hub_config" / "site.toml")
    (culler,) = [s for s in c.JupyterHub.services if s["name"] == CULLER]
    assert culler["command"][-2:] == ["-m", "factoryhub.service.culler"]
    assert "url" not in culler  # no web endpoint: nobody can reach it
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == CULLER]
    assert role["services"] == [CULLER]
    assert (
        set(role["scopes"])
        == set(CULLER_SCOPES)
        == {
            "list:users",
            "read:users:groups",  # single sign-on's trainers are a group (the arbiter's staff)
            "read:users:activity",
            "read:servers",
            "delete:servers",
        }
    )
    off = replace(demo_site, culling=replace(demo_site.culling, enabled=False))
    c = Config()
    apply_site(c, off, repo / "hub_config" / "site.toml")
    assert all(s["name"] != CULLER for s in c.JupyterHub.services)


def test_records_are_kept_per_learner_and_the_form_says_the_last(demo_site, tmp_path):
    site = replace(demo_site, hub=replace(demo_site.hub, state_dir=str(tmp_path)))
    first = CullRecord("alice", "", (NOW - timedelta(hours=2)).isoformat(), "it was idle", 0)
    last = CullRecord("alice", "gpu-lab", NOW.isoformat(), "it held 1 GPU and was idle", 1)
    write_record(site, first)
    write_record(site, last)
    lines = read_records(site, "alice")
    assert [CullRecord.from_line(line) for line in lines] == [first, last]
    assert read_records(site, "bob") == []
    assert read_records(site, "../etc/passwd") == []  # no such name, no file outside
    notice = cull_notice(lines, NOW + timedelta(minutes=5))
    assert notice.startswith("Your session 'gpu-lab' was stopped at ")
    assert "because it held 1 GPU and was idle" in notice
    assert cull_notice(lines, NOW + timedelta(hours=25)) == ""  # a day later: not again
    assert cull_notice(["not json", '{"user": 1}'], NOW) == ""
    many = "".join(records_text([], first) for _ in range(30)).splitlines()
    assert len(records_text(many, last).splitlines()) == 20


async def test_the_arbiter_decides_records_and_follows_site_toml(demo_site, tmp_path):
    from factoryhub.service.culler import SiteCullArbiter

    class Fixed:
        def __init__(self, site):
            self.site = site

        def get(self):
            return self.site

    site = replace(demo_site, hub=replace(demo_site.hub, state_dir=str(tmp_path)))
    site = replace(site, culling=replace(site.culling, idle_minutes=10, gpu_idle_minutes=2))

    async def learner(name: str) -> dict:
        return {"name": name, "admin": False, "groups": []}

    arbiter = SiteCullArbiter(Fixed(site), hub_user=learner)
    gpu = {"full_name": "alice/", "user_options": {"gpus": 1}, "started": NOW.isoformat()}
    cpu = {"full_name": "bob/", "user_options": {"gpus": 0}, "started": NOW.isoformat()}
    trainer = {"full_name": "trainer/", "user_options": {"gpus": 4}}
    three = timedelta(minutes=3)
    assert await arbiter(inactive=three, inactive_limit=600, server=gpu) is True
    assert await arbiter(inactive=three, inactive_limit=600, server=cpu) is False
    assert await arbiter(inactive=timedelta(hours=9), inactive_limit=600, server=trainer) is False
    (line,) = read_records(site, "alice")
    assert "held 1 GPU and was idle for 3 minutes" in CullRecord.from_line(line).reason
    assert read_records(site, "bob") == read_records(site, "trainer") == []


def test_the_spawn_form_shows_the_last_stop(demo_site):
    from factoryhub.spawners.form import render_options_form
    from factoryhub.spawners.notices import Notices

    html = render_options_form(demo_site, notices=Notices(culled="Your last session was stopped"))
    assert '<p class="alert alert-info" id="fh-culled">Your last session was stopped</p>' in html
    assert 'id="fh-culled"' not in render_options_form(demo_site)


def test_exemptions_granted_by_staff_keep_a_session_until_they_run_out(demo_site, tmp_path):
    from factoryhub.culling import (
        ExemptionError,
        add_exemption,
        new_exemption,
        parse_exemptions,
        read_exemptions,
    )

    site = replace(demo_site, hub=replace(demo_site.hub, state_dir=str(tmp_path)))
    keep = new_exemption({"user": "alice", "server": "gpu-lab", "hours": 2}, "trainer", NOW)
    add_exemption(site, keep, NOW)
    add_exemption(site, new_exemption({"user": "bob", "hours": 1}, "admin", NOW), NOW)
    granted = read_exemptions(site)
    assert [(e.user, e.server, e.by) for e in granted] == [
        ("alice", "gpu-lab", "trainer"),
        ("bob", "*", "admin"),
    ]
    idle = {"inactive_minutes": 500.0, "gpus": 1}
    soon = NOW + timedelta(minutes=30)
    assert cull_reason(view(name="gpu-lab", **idle), RULES, (), granted, soon) is None
    assert cull_reason(view(name="other", **idle), RULES, (), granted, soon) is not None
    assert cull_reason(view(user="bob", name="any", **idle), RULES, (), granted, soon) is None
    later = NOW + timedelta(hours=3)  # run out: stopped again
    assert cull_reason(view(name="gpu-lab", **idle), RULES, (), granted, later) is not None
    # adding one later drops those that ran out
    add_exemption(site, new_exemption({"user": "carol", "hours": 1}, "admin", later), later)
    assert [e.user for e in read_exemptions(site)] == ["carol"]
    for bad, message in [
        ({"user": "alice", "hours": 0}, "hours"),
        ({"user": "alice", "hours": 73}, "hours"),
        ({"user": "alice", "hours": True}, "hours"),
        ({"user": "../x", "hours": 1}, "user"),
        ({"user": "alice", "server": "a b", "hours": 1}, "server"),
        ({"user": "alice", "hours": 1, "forever": True}, "send"),
        ([], "send"),
    ]:
        with pytest.raises(ExemptionError, match=message):
            new_exemption(bad, "trainer", NOW)
    assert parse_exemptions("not json") == parse_exemptions('[{"user": "x"}]') == []
    assert parse_exemptions('[{"user": "a", "server": "", "until": "soon", "by": "t"}]') == []


async def test_the_arbiter_exempts_staff_the_hub_knows_of_single_sign_on(demo_site, tmp_path):
    """Under single sign-on, trainers and admins are not in site.toml: the provider's groups
    make them members of the hub's trainers' group or JupyterHub admins (factoryhub.identity).
    The arbiter asks the hub about a session's owner before stopping it, and only then."""
    from factoryhub.identity import LEARNERS, TRAINERS
    from factoryhub.service.culler import SiteCullArbiter
    from factoryhub.service.hubapi import HubAPIError

    class Fixed:
        def __init__(self, site):
            self.site = site

        def get(self):
            return self.site

    models = {
        "sso-trainer": {"name": "sso-trainer", "admin": False, "groups": [LEARNERS, TRAINERS]},
        "sso-admin": {"name": "sso-admin", "admin": True, "groups": []},
        "sso-learner": {"name": "sso-learner", "admin": False, "groups": [LEARNERS]},
    }
    asked: list[str] = []

    async def hub_user(name: str) -> dict:
        asked.append(name)
        if name not in models:
            raise HubAPIError(0, "the hub did not answer")
        return models[name]

    site = replace(demo_site, hub=replace(demo_site.hub, state_dir=str(tmp_path)))
    arbiter = SiteCullArbiter(Fixed(site), hub_user=hub_user)

    async def stops(user: str, minutes: float = 9 * 60) -> bool:
        server = {"full_name": f"{user}/", "user_options": {"gpus": 1}}
        return await arbiter(inactive=timedelta(minutes=minutes), inactive_limit=60, server=server)

    assert await stops("sso-trainer") is False
    assert await stops("sso-admin") is False
    assert await stops("sso-learner") is True
    assert await stops("unknown") is False  # the hub cannot say: kept, stopped on a later pass
    assert asked == ["sso-trainer", "sso-admin", "sso-learner", "unknown"]
    assert await stops("sso-trainer", minutes=1) is False  # not idle long enough: no question
    assert len(asked) == 4
    assert read_records(site, "sso-trainer") == read_records(site, "sso-admin") == []
    (line,) = read_records(site, "sso-learner")
    assert "held 1 GPU" in CullRecord.from_line(line).reason
    # with exempt_staff off, staff are culled like anyone, and the hub is not asked
    off = replace(site, culling=replace(site.culling, exempt_staff=False))
    arbiter = SiteCullArbiter(Fixed(off), hub_user=hub_user)
    assert await stops("sso-trainer") is True
    assert len(asked) == 4


@pytest.mark.parametrize(
    ("model", "staff"),
    [
        ({"name": "t", "admin": False, "groups": ["factoryhub-trainers"]}, True),
        ({"name": "a", "admin": True}, True),
        ({"name": "l", "admin": False, "groups": ["factoryhub-learners"]}, False),
        ({"name": "x", "admin": "true", "groups": "factoryhub-trainers"}, False),  # not JSON's
        ({"name": "y", "groups": [["factoryhub-trainers"], None]}, False),
        ({"name": "z"}, False),  # a role without read:users:groups sees no groups
    ],
)
def test_hub_staff_are_admins_and_the_trainers_group(model, staff):
    from factoryhub.culling import is_hub_staff

    assert is_hub_staff(model) is staff
