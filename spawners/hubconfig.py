"""JupyterHub settings derived from a `Site`: small setters on a traitlets `Config`.

`hub_config/jupyterhub_config.py` only loads the site and calls `apply_site`; tests build a
`Config()` and assert on it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from traitlets.config import Config

from factoryhub.estimate import SERVICE_NAME
from factoryhub.identity import TRAINERS
from factoryhub.scheduler.slurm import watch_children_with_pidfd
from factoryhub.security import NODE_PREFIX, require_floors
from factoryhub.servicedb import read_announcements
from factoryhub.site import Site
from factoryhub.workshop import SEATS_GROUP

from .auth import apply_auth
from .database import hub_db_url, write_ahead_log
from .workshop import join_handlers, seat_rejoin


def _set_hub(c: Config, site: Site) -> None:
    hub = site.hub
    c.JupyterHub.bind_url = hub.bind_url or hub.url  # where the proxy listens
    c.JupyterHub.hub_ip = hub.hub_ip
    c.JupyterHub.hub_port = hub.hub_port
    c.JupyterHub.db_url = hub_db_url(site)  # SQLite in state_dir, or the site's PostgreSQL
    write_ahead_log(c.JupyterHub.db_url)
    watch_children_with_pidfd()  # no thread started per Slurm command on the event loop
    c.JupyterHub.cookie_secret_file = str(Path(hub.state_dir) / "jupyterhub_cookie_secret")
    # After half a second show the progress page (learners see the queue, not a spinning
    # button); a refused request fails well within that and comes back as HTTP 400.
    c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0.5}
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = 4
    c.JupyterHub.concurrent_spawn_limit = hub.concurrent_spawn_limit  # a workshop's room at once
    # A hub restart must never stop sessions: the jobs live on in Slurm and are re-adopted.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False


ROUTE_CHECK_SECONDS = 5


def _set_proxy(c: Config, site: Site) -> None:
    # The proxy runs as its own daemon (started by `factoryhub demo`), so restarting the hub
    # leaves every route in place. The token comes from CONFIGPROXY_AUTH_TOKEN.
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{site.hub.proxy_api_port}"
    # A restarted proxy (see factoryhub.demo.supervise) starts empty; the hub re-adds every route at
    # its route check, which runs with the last-activity update: every few seconds, not 5 min.
    c.JupyterHub.last_activity_interval = ROUTE_CHECK_SECONDS


def _set_tls(c: Config, site: Site) -> None:
    """Behind an https:// url the hub's cookies and the sessions' (JupyterHub hands its
    cookie_options to each server) are Secure. JupyterHub 6 would guess it from
    X-Forwarded-Proto; set, it cannot guess wrong behind another proxy. The services' own
    cookies follow the first X-Forwarded-Proto, which the first proxy sets."""
    if site.hub.bind_url:
        # Behind a site reverse proxy the hub is told "X-Forwarded-Proto: https,http" (our
        # proxy appends its own) and tornado takes the last: the public URL is said instead.
        c.JupyterHub.public_url = site.hub.url
    if site.hub.url.startswith("https://"):
        c.JupyterHub.tornado_settings["cookie_options"] = {"secure": True}


def _set_spawner(c: Config, site: Site, site_path: Path) -> None:
    c.JupyterHub.spawner_class = "factoryhub"
    c.SlurmSpawner.site_path = str(site_path)
    c.Spawner.default_url = "/lab"
    c.Spawner.poll_interval = int(site.slurm.poll_interval)
    c.Spawner.start_timeout = 600  # a queued session may wait; the learner sees why
    c.Spawner.http_timeout = 120
    c.JupyterHub.extra_handlers = join_handlers(str(site_path))  # /hub/workshop/<name>


def _set_services(c: Config, site: Site, site_path: Path) -> None:
    # The start-estimate endpoint (factoryhub.service), run by the hub; every user
    # may call it (it answers only about the caller's own request).
    python = str(Path(site.environments[site.session.environment].prefix) / "bin" / "python")
    c.JupyterHub.services = [
        {
            "name": SERVICE_NAME,
            "url": f"http://127.0.0.1:{site.hub.service_port}",
            "command": [python, "-m", "factoryhub.service"],
            "environment": {"FACTORYHUB_SITE": str(site_path)},
            "oauth_no_confirm": True,
            # the nav bar links its pages by name (Courses, Teaching): no "Services" menu
            "display": False,
        }
    ]
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", "access:services!service=factoryhub"]},
        # the service's own rights, for the workshop trainers' actions (it checks first that
        # the caller is the workshop's trainer and the server a seat's): restart a seat's
        # session, share it with the trainer (granting needs the access it grants), and let a
        # learner list and refuse the shares of their own servers
        {"name": f"{SERVICE_NAME}-service", "scopes": SERVICE_SCOPES, "services": [SERVICE_NAME]},
    ]
    # A session's own token may also call the service (announcements, support requests from
    # the widgets), as its learner; the rest is JupyterHub's default "server" role.
    c.Spawner.server_token_scopes = [
        "users:activity!user",
        "access:servers!server",
        f"access:services!service={SERVICE_NAME}",
    ]


SERVICE_SCOPES = [
    "servers",
    "read:users:name",
    "read:servers",
    "shares",
    "read:shares",
    "access:servers",
    # a trainer's read-only look at a seat's notebook (service.notebook_view) reads it with a
    # token of the seat itself, limited to the seat's own server and a minute, never with the
    # service's token (the learner's server sees it): only for accounts the join page gave
    # out as seats (the hub's seats group), and the service makes one only for a seat its
    # caller trains
    f"tokens!group={SEATS_GROUP}",
]
CULLER = "factoryhub-culler"
# What jupyterhub-idle-culler needs and no more: list users, read their servers' activity and
# user_options (the GPUs a session holds), stop servers; and, for its arbiter, a user's groups
# (single sign-on's trainers are a group; the admin flag comes with list:users). It never
# deletes users.
CULLER_SCOPES = [
    "list:users",
    "read:users:groups",
    "read:users:activity",
    "read:servers",
    "delete:servers",
]


def _set_culler(c: Config, site: Site, site_path: Path) -> None:
    """jupyterhub-idle-culler as a hub service with FactoryHub's arbiter (site.toml
    [culling]; factoryhub.service.culler), under a role of its own."""
    if not site.culling.enabled:
        return
    python = str(Path(site.environments[site.session.environment].prefix) / "bin" / "python")
    c.JupyterHub.services.append(
        {
            "name": CULLER,
            "command": [python, "-m", "factoryhub.service.culler"],
            "environment": {"FACTORYHUB_SITE": str(site_path)},
        }
    )
    role = {"name": CULLER, "scopes": CULLER_SCOPES, "services": [CULLER]}
    c.JupyterHub.load_roles.append(role)


def hub_templates() -> Path:
    """FactoryHub's own hub pages (package data of the hub's package): a ``page.html`` over
    JupyterHub's stock one with the site's title and navigation."""
    return Path(str(resources.files("factoryhub.spawners") / "templates" / "hub"))


def _set_templates(c: Config, site: Site) -> None:
    # The site's directories first, then ours; JupyterHub appends its stock templates, which
    # ours extend as "templates/page.html".
    c.JupyterHub.template_paths = [*site.hub.template_dirs, str(hub_templates())]
    c.JupyterHub.template_vars = {
        "factoryhub_title": site.hub.title,
        "factoryhub_service": SERVICE_NAME,
        # who sees the "Teaching" link (the service checks again; a link is not a right)
        "factoryhub_trainers": sorted({*site.hub.trainers, *site.hub.admin_users}),
        "factoryhub_trainers_group": TRAINERS,  # single sign-on's trainers (spawners/auth.py)
        # the admins' current announcements, read (read-only) from the service's database on
        # each page JupyterHub renders for a logged-in user
        "factoryhub_announcements": lambda user: read_announcements(site),
        # a workshop seat's rejoin key and link, shown on its hub pages (spawners/workshop.py)
        "factoryhub_seat": lambda user: seat_rejoin(site, user),
    }


def apply_site(c: Config, site: Site, site_path: Path) -> None:
    """Configure JupyterHub for `site` (read from `site_path`); refuse, with SystemExit naming
    the advisory, when an installed package is below its security floor."""
    require_floors(NODE_PREFIX)  # here, so no way of starting the hub skips the check
    _set_hub(c, site)
    _set_proxy(c, site)
    apply_auth(c, site)  # PAM, or OIDC single sign-on (site.toml [auth]; spawners/auth.py)
    _set_spawner(c, site, site_path)
    _set_services(c, site, site_path)
    _set_culler(c, site, site_path)
    _set_tls(c, site)
    _set_templates(c, site)
