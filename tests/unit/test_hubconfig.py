from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from traitlets.config import Config

from factoryhub.spawners.hubconfig import apply_site, hub_templates


def test_demo_site_config(demo_site, repo):
    c = Config()
    site_path = repo / "hub_config" / "site.toml"
    apply_site(c, demo_site, site_path)
    assert c.JupyterHub.spawner_class == "factoryhub"
    assert c.SlurmSpawner.site_path == str(site_path)
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.Authenticator.admin_users == {"admin"}
    assert c.PAMAuthenticator.allowed_groups == {"factoryhub"}
    # Sessions outlive the hub: nothing is stopped or unrouted when it restarts.
    assert c.JupyterHub.cleanup_servers is False and c.JupyterHub.cleanup_proxy is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.api_url == "http://127.0.0.1:8001"
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.db_url == f"sqlite:///{Path('/var/lib/factoryhub/jupyterhub.sqlite')}"
    assert c.JupyterHub.allow_named_servers is True
    assert c.Spawner.poll_interval == 10
    assert c.JupyterHub.concurrent_spawn_limit == 200  # a workshop of 200 starts without a 429


def test_config_file_is_thin(repo):
    text = (repo / "hub_config" / "jupyterhub_config.py").read_text()
    assert len(text.splitlines()) < 20 and "apply_site" in text


def test_hub_pages_come_from_our_packaged_templates(demo_site, repo):
    c = Config()
    apply_site(c, demo_site, repo / "hub_config" / "site.toml")
    ours = hub_templates()
    assert c.JupyterHub.template_paths == [str(ours)]
    assert (ours / "page.html").is_file() and (ours / "factoryhub" / "page.html").is_file()
    assert c.JupyterHub.template_vars["factoryhub_title"] == "FactoryHub demo AI factory"
    assert c.JupyterHub.template_vars["factoryhub_trainers"] == ["admin", "trainer"]
    # the nav bar links the service's pages itself: no "Services" menu entry
    assert c.JupyterHub.services[0]["display"] is False


def test_a_sites_template_directories_come_before_ours(demo_site, repo):
    site = replace(demo_site, hub=replace(demo_site.hub, template_dirs=("/etc/a", "/etc/b")))
    c = Config()
    apply_site(c, site, repo / "hub_config" / "site.toml")
    assert c.JupyterHub.template_paths == ["/etc/a", "/etc/b", str(hub_templates())]


STOCK = Path(DATA_FILES_PATH) / "templates"  # JupyterHub's stock pages


def _hub_page(c: Config, user: str | None, scopes=frozenset(), name="page.html", **ns) -> str:
    """page.html as JupyterHub renders it: its loader (stock pages under "templates/", then
    template_paths, then stock) and the variables every page gets."""
    paths = [*c.JupyterHub.template_paths, str(STOCK)]
    loader = ChoiceLoader(
        [PrefixLoader({"templates": FileSystemLoader([str(STOCK)])}, "/"), FileSystemLoader(paths)]
    )
    env = Environment(loader=loader, autoescape=True)
    spawner = SimpleNamespace(options_form=True)
    who = SimpleNamespace(name=user, json_escaped_name=user, spawner=spawner) if user else None
    return env.get_template(name).render(
        static_url=lambda *a, **k: "/hub/static/x",
        base_url="/hub/",
        prefix="/",
        user=who,
        parsed_scopes=set(scopes),
        services=[],
        login_url="/hub/login",
        logout_url="/hub/logout",
        xsrf_token="x",
        **c.JupyterHub.template_vars,
        **ns,
    )


def test_hub_pages_show_the_site_title_and_navigation(demo_site, repo):
    assert STOCK.joinpath("page.html").is_file()
    c = Config()
    apply_site(c, demo_site, repo / "hub_config" / "site.toml")
    learner = _hub_page(c, "alice")
    assert "<title>FactoryHub demo AI factory</title>" in learner
    assert '<span id="fh-site-title">FactoryHub demo AI factory</span>' in learner
    assert 'id="fh-nav-courses" href="/services/factoryhub/catalogue">Courses<' in learner
    assert "fh-nav-teaching" not in learner and "fh-nav-admin" not in learner
    trainer = _hub_page(c, "trainer")
    assert 'id="fh-nav-teaching" href="/services/factoryhub/teaching">Teaching<' in trainer
    admin = _hub_page(c, "admin", {"admin-ui"})
    assert "fh-nav-teaching" in admin and 'id="fh-nav-admin"' in admin
    login = _hub_page(c, None)
    assert "FactoryHub demo AI factory" in login and "fh-nav-courses" not in login


def test_a_site_page_extends_ours_and_keeps_the_navigation(demo_site, repo, tmp_path):
    (tmp_path / "page.html").write_text(
        '{% extends "factoryhub/page.html" %}'
        '{% block announcement %}<p id="site-banner">Maintenance on Friday</p>{% endblock %}'
    )
    site = replace(demo_site, hub=replace(demo_site.hub, template_dirs=(str(tmp_path),)))
    c = Config()
    apply_site(c, site, repo / "hub_config" / "site.toml")
    page = _hub_page(c, "alice")
    assert '<p id="site-banner">Maintenance on Friday</p>' in page and "fh-nav-courses" in page


def test_the_site_title_is_escaped(demo_site, repo):
    site = replace(demo_site, hub=replace(demo_site.hub, title="<script>x()</script>"))
    c = Config()
    apply_site(c, site, repo / "hub_config" / "site.toml")
    page = _hub_page(c, "alice")
    assert "<script>x()</script>" not in page and "&lt;script&gt;x()&lt;/script&gt;" in page


def test_a_403_says_what_to_do_in_the_sites_frame(demo_site, repo):
    c = Config()
    apply_site(c, demo_site, repo / "hub_config" / "site.toml")
    scope = "Action is not authorized with current scopes; requires any of [admin-ui]"
    page = _hub_page(
        c, "trainer", name="error.html", status_code=403, status_message="Forbidden", message=scope
    )
    assert "This page is not open to your account" in page and scope in page
    assert 'id="fh-nav-teaching"' in page  # the site's navigation, on the way back
    missing = _hub_page(c, "alice", name="error.html", status_code=404, message="Not here")
    assert "<p>Not here</p>" in missing and "fh-forbidden" not in missing
