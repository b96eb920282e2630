"""Templates are files: the spawn form and the service's pages render packaged Jinja templates,
a site's own template directories (site.toml `[hub] template_dirs`) override them or extend
them block by block, every value is escaped, and the service reads site.toml only when it
changed and estimates the catalogue's courses at once."""

import asyncio
import os
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import tomli_w
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from tornado.web import Application

from factoryhub.course import Course, Resources
from factoryhub.estimate import Estimate
from factoryhub.request import ResourceRequest
from factoryhub.service import catalogue_page
from factoryhub.service.catalogue_page import CatalogueHandler
from factoryhub.service.pages import PREFIX, SITE_FILE, SiteFile
from factoryhub.service.teaching_page import TeachingHandler
from factoryhub.site import SiteError, parse_site
from factoryhub.spawners.form import render_options_form
from factoryhub.templating import template_environment


def with_templates(site, *dirs):
    return replace(site, hub=replace(site.hub, template_dirs=tuple(str(d) for d in dirs)))


def test_site_toml_names_template_directories_and_rejects_a_typo(repo):
    text = (repo / "hub_config" / "site.toml").read_text()
    site = parse_site(text.replace("[hub]\n", '[hub]\ntemplate_dirs = ["/etc/fh/templates"]\n'))
    assert site.hub.template_dirs == ("/etc/fh/templates",)
    with pytest.raises(SiteError, match=r"unknown key hub\.template_dir "):
        parse_site(text.replace("[hub]\n", '[hub]\ntemplate_dir = "/etc/fh/templates"\n'))


def test_the_packaged_form_renders_without_a_site_directory(demo_site):
    form = render_options_form(demo_site)
    assert 'id="fh-fields"' in form and 'name="partition"' in form and "site-note" not in form


def test_a_site_template_replaces_the_form(demo_site, tmp_path):
    (tmp_path / "form.html").write_text('<p id="site-form">{{ values.partition }}</p>')
    form = render_options_form(with_templates(demo_site, tmp_path))
    assert form == '<p id="site-form">cpu</p>'


def test_a_site_template_extends_ours_and_changes_one_block(demo_site, tmp_path):
    (tmp_path / "form.html").write_text(
        '{% extends "factoryhub/form.html" %}'
        '{% block intro %}<p id="site-note">Sessions end at 17:00.</p>{% endblock %}'
    )
    form = render_options_form(with_templates(demo_site, tmp_path))
    assert '<p id="site-note">Sessions end at 17:00.</p>' in form
    assert 'name="walltime"' in form and 'id="fh-capacity"' not in form  # no capacity: unknown


def test_the_first_site_directory_wins(demo_site, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "form.html").write_text(folder.name)
    assert render_options_form(with_templates(demo_site, first, second)) == "a"


def test_an_edited_site_template_shows_without_a_restart(demo_site, tmp_path):
    template = tmp_path / "form.html"
    template.write_text("before")
    site = with_templates(demo_site, tmp_path)
    assert render_options_form(site) == "before"
    template.write_text("after")
    later = template.stat().st_mtime + 5
    os.utime(template, (later, later))
    assert render_options_form(site) == "after"


def test_values_are_escaped_in_our_templates_and_the_sites(demo_site, tmp_path):
    prefill = ResourceRequest("cpu", 1, 2, 60, "default", course="c")
    form = render_options_form(demo_site, prefill=prefill, course_title="<script>x()</script>")
    assert "<script>x()</script>" not in form and "&lt;script&gt;x()&lt;/script&gt;" in form
    (tmp_path / "form.html").write_text("{{ confirm }}")
    site_form = render_options_form(
        with_templates(demo_site, tmp_path), prefill=prefill, course_title="<b>"
    )
    assert "&lt;b&gt;" in site_form and "<b>" not in site_form


def test_the_loader_offers_ours_under_the_prefix(tmp_path):
    env = template_environment("factoryhub.service", [tmp_path])
    assert env.autoescape is True
    (tmp_path / "service_page.html").write_text("site frame")
    assert env.get_template("service_page.html").render() == "site frame"
    assert "<!DOCTYPE html>" in env.get_template("factoryhub/service_page.html").render()


# The service's pages, in a tornado app of their own (the hub's OAuth is not under test: the
# caller is named by ?user=).


class _AsUser:
    def get_current_user(self):
        name = self.get_argument("user", "")
        return {"name": name} if name else None


class _Catalogue(_AsUser, CatalogueHandler):
    pass


class _Teaching(_AsUser, TeachingHandler):
    pass


class _NoCapacity:
    async def get(self):
        return None


def _course(name: str, title: str) -> Course:
    return Course(
        name=name,
        path=Path("/nonexistent") / name,
        title=title,
        summary="A summary.",
        audience="learners",
        level="beginner",
        duration="00:30:00",
        outcomes=("run a cell",),
        prerequisites=(),
        notebooks=("01.ipynb",),
        resources=Resources(partition="cpu", cpus=1, memory_gb=1, walltime="00:30:00"),
    )


@pytest.fixture
def service_site(repo, tmp_path):
    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["hub"]["catalogue_dir"] = str(tmp_path / "catalogue")
    raw["hub"]["template_dirs"] = [str(tmp_path / "templates")]
    (tmp_path / "templates").mkdir()
    path = tmp_path / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


@pytest.fixture
async def service(service_site, fake_slurm):
    args = {"client": fake_slurm, "cache": _NoCapacity()}
    prefix = "/services/factoryhub/"
    app = Application(
        [(f"{prefix}catalogue", _Catalogue, args), (f"{prefix}teaching", _Teaching)],
        **{SITE_FILE: SiteFile(str(service_site)), PREFIX: prefix},
    )
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    yield f"http://127.0.0.1:{port}{prefix}"
    server.stop()


async def _get(url: str):
    return await AsyncHTTPClient().fetch(url, raise_error=False)


async def test_the_catalogue_estimates_its_courses_at_once(service, monkeypatch):
    courses = [_course(f"c{i}", f"Course {i}") for i in range(3)]
    monkeypatch.setattr(catalogue_page, "published_courses", lambda site: courses)
    running, most = 0, 0

    async def slow_estimate(request, capacity, client, user, qos_limits):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.1)
        running -= 1
        return Estimate("now", f"starts now ({request.partition})")

    monkeypatch.setattr(catalogue_page, "estimate_start", slow_estimate)
    page = await _get(f"{service}catalogue?user=alice")
    assert page.code == 200 and most == 3
    body = page.body.decode()
    assert body.count('class="course"') == 3 and "Start: starts now (cpu)" in body
    assert 'href="/hub/spawn/alice/course-c0?opt-course=c0"' in body
    assert "<title>Courses · FactoryHub demo AI factory</title>" in body
    assert 'id="fh-nav-courses"' in body and 'id="fh-nav-teaching"' not in body


async def test_a_course_title_is_escaped_and_a_site_template_changes_a_card(
    service, service_site, monkeypatch
):
    courses = [_course("c0", "<img src=x onerror=alert(1)>")]
    monkeypatch.setattr(catalogue_page, "published_courses", lambda site: courses)
    body = (await _get(f"{service}catalogue?user=alice")).body.decode()
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    (service_site.parent / "templates" / "catalogue.html").write_text(
        '{% extends "factoryhub/catalogue.html" %}'
        '{% block intro %}<p id="site-intro">Workshop week</p>{% endblock %}'
    )
    body = (await _get(f"{service}catalogue?user=alice")).body.decode()
    assert '<p id="site-intro">Workshop week</p>' in body and 'id="course-c0"' in body


async def test_teaching_is_for_trainers_and_others_get_a_page_not_a_bare_403(service):
    trainer = await _get(f"{service}teaching?user=trainer")
    assert trainer.code == 200 and b"<h1>Teaching</h1>" in trainer.body
    assert b'id="fh-nav-teaching"' in trainer.body
    learner = await _get(f"{service}teaching?user=alice")
    assert learner.code == 403
    assert b"This page is not open to your account" in learner.body
    assert b'id="fh-nav-courses"' in learner.body  # in the site's frame, with its navigation


def test_site_toml_is_parsed_again_only_when_it_changes(service_site, monkeypatch):
    from factoryhub.service import pages

    reads = []
    real = pages.load_site
    monkeypatch.setattr(pages, "load_site", lambda path: reads.append(path) or real(path))
    site_file = SiteFile(str(service_site))
    first = site_file.get()
    assert site_file.get() is first and len(reads) == 1
    service_site.write_text(service_site.read_text().replace("FactoryHub demo", "Other"))
    later = service_site.stat().st_mtime + 5
    os.utime(service_site, (later, later))
    assert site_file.get().hub.title.startswith("Other") and len(reads) == 2


def test_a_broken_edit_of_site_toml_keeps_the_last_good_site(service_site):
    site_file = SiteFile(str(service_site))
    first = site_file.get()
    service_site.write_text(service_site.read_text() + "\n[hub]\nnope = 1\n")
    later = service_site.stat().st_mtime + 5
    os.utime(service_site, (later, later))
    assert site_file.get() is first


def test_a_site_template_added_later_shows_without_a_restart(demo_site, tmp_path):
    site = with_templates(demo_site, tmp_path)
    assert 'id="fh-fields"' in render_options_form(site)  # ours, while the site has none
    (tmp_path / "form.html").write_text("the site's")
    assert render_options_form(site) == "the site's"  # template text is not escaped, values are
    (tmp_path / "form.html").unlink()
    assert 'id="fh-fields"' in render_options_form(site)  # and ours again once it is gone
