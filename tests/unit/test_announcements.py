"""Announcements: checked as posted, shown until they expire (for everyone or a partition's
users), kept by the hub service and read by the spawn form; the CLI's requests."""

import argparse
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from factoryhub.announcements import (
    Announcement,
    AnnouncementError,
    current,
    parse_announcement,
    service_url,
)
from factoryhub.cli.announce import request_for
from factoryhub.servicedb import ServiceDB, read_announcements
from factoryhub.spawners.form import render_options_form

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_an_announcement_lasts_for_or_until():
    a = parse_announcement({"text": "Down at 14:00", "for": "5h"}, _site(), NOW)
    assert a.expires == NOW + timedelta(hours=5) and a.partition == ""
    b = parse_announcement(
        {"text": "GPU drivers", "partition": "gpu", "until": "2026-12-03T18:00"}, _site(), NOW
    )
    assert b.expires == datetime(2026, 12, 3, 18, 0, tzinfo=UTC) and b.partition == "gpu"


def _site():
    from conftest import REPO

    from factoryhub.site import load_site

    return load_site(REPO / "hub_config" / "site.toml")


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"text": "x"}, "either until"),
        ({"text": "x", "for": "2h", "until": "2030-01-01"}, "either until"),
        ({"text": "x", "for": "2 weeks"}, "not a duration"),
        ({"text": "x", "until": "tomorrow"}, "not an ISO date"),
        ({"text": "x", "until": "2026-12-01T00:00"}, "has passed"),
        ({"text": "x", "for": "31d"}, "at most 30 days"),
        ({"text": "x", "for": "1h", "partition": "tpu"}, "partition: 'tpu' is not one of"),
        ({"text": "x" * 501, "for": "1h"}, "at most 500 characters"),
        ({"text": "x", "for": "1h", "colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_announcements_are_refused_by_their_field(raw, message):
    with pytest.raises(AnnouncementError, match=message):
        parse_announcement(raw, _site(), NOW)


def test_current_ones_are_those_unexpired_for_everyone_or_the_partition():
    def made(i, partition, hours):
        return Announcement(
            i, f"n{i}", partition, NOW + timedelta(minutes=i), NOW + timedelta(hours=hours), "admin"
        )

    items = [made(1, "", 1), made(2, "gpu", 1), made(3, "", -1), made(4, "cpu", 2)]
    assert [a.id for a in current(items, NOW, "gpu")] == [2, 1]
    assert [a.id for a in current(items, NOW)] == [4, 2, 1]


def test_the_form_shows_what_the_service_keeps_escaped(tmp_path):
    site = _site()
    site = replace(site, hub=replace(site.hub, state_dir=str(tmp_path)))
    db = ServiceDB(tmp_path / "factoryhub-service.sqlite")
    now = datetime.now(UTC)
    db.announce(
        parse_announcement({"text": "<b>Down</b> at 14:00", "for": "1h"}, site, now), "admin", now
    )
    db.announce(
        parse_announcement({"text": "old", "for": "1m"}, site, now - timedelta(hours=1)),
        "admin",
        now - timedelta(hours=1),
    )
    assert [a.text for a in read_announcements(site)] == ["<b>Down</b> at 14:00"]
    form = render_options_form(site)
    assert "&lt;b&gt;Down&lt;/b&gt; at 14:00" in form and "fh-announcement" in form
    assert ">old<" not in form


def test_no_database_yet_means_no_announcement(tmp_path):
    site = _site()
    assert read_announcements(replace(site, hub=replace(site.hub, state_dir=str(tmp_path)))) == []


def test_the_cli_asks_the_service_rest_api():
    def args(action, text=None, **kw):
        return argparse.Namespace(
            action=action,
            text=text,
            partition=kw.get("partition", ""),
            lasting=kw.get("lasting"),
            until=kw.get("until"),
        )

    assert request_for(args("post", "Down at 2", lasting="3h", partition="gpu")) == (
        "POST",
        "api/announcements",
        {"text": "Down at 2", "partition": "gpu", "for": "3h"},
    )
    assert request_for(args("list")) == ("GET", "api/announcements", None)
    assert request_for(args("withdraw", "4")) == ("DELETE", "api/announcements/4", None)
    with pytest.raises(SystemExit, match="number"):
        request_for(args("withdraw", "4; rm"))
    assert service_url(_site()) == "http://127.0.0.1:8000/services/factoryhub/"


def test_every_hub_page_shows_them_to_a_logged_in_user(tmp_path, repo):
    from traitlets.config import Config

    from factoryhub.spawners.hubconfig import apply_site
    from unit.test_hubconfig import _hub_page

    site = _site()
    site = replace(site, hub=replace(site.hub, state_dir=str(tmp_path)))
    c = Config()
    apply_site(c, site, repo / "hub_config" / "site.toml")
    now = datetime.now(UTC)
    new = parse_announcement(
        {"text": "<i>GPU</i> drivers", "partition": "gpu", "for": "1h"}, site, now
    )
    ServiceDB(tmp_path / "factoryhub-service.sqlite").announce(new, "admin", now)
    tv = c.JupyterHub.template_vars
    # as JupyterHub does: a callable value is called with the user
    c.JupyterHub.template_vars = {
        **tv,
        "factoryhub_announcements": tv["factoryhub_announcements"](None),
    }
    page = _hub_page(c, "alice")
    assert "<b>gpu partition:</b> &lt;i&gt;GPU&lt;/i&gt; drivers" in page
    assert 'id="fh-nav-support"' in page and 'id="fh-nav-datasets"' in page
    assert 'id="fh-page-announcements"' not in _hub_page(c, None)


def test_the_cli_says_what_went_wrong_without_a_traceback(tmp_path, capsys, monkeypatch):
    from factoryhub.cli.main import main

    monkeypatch.delenv("FACTORYHUB_TOKEN", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    site = tmp_path / "site.toml"
    text = (__import__("conftest").REPO / "hub_config" / "site.toml").read_text()
    site.write_text(text.replace('url = "http://127.0.0.1:8000"', 'url = "http://127.0.0.1:9"'))
    with pytest.raises(SystemExit, match="an admin's API token is needed"):
        main(["announce", "list", "--site", str(site)])
    monkeypatch.setenv("FACTORYHUB_TOKEN", "t")
    with pytest.raises(SystemExit, match="did not answer"):
        main(["announce", "post", "Down at 2", "--for", "1h", "--site", str(site)])
    with pytest.raises(SystemExit, match="post takes the announcement's text"):
        main(["announce", "post", "--site", str(site)])
