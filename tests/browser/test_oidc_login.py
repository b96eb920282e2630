"""Single sign-on in a real browser: a hub of its own (id "oidc", ports 18200/18201/18281/18282)
whose site.toml says ``[auth] kind = "oidc"``, against a real OpenID Connect provider (npm's
oidc-provider, tests/oidc/provider.mjs, run as nobody on 127.0.0.1:18300) whose test users carry
an e-mail claim and a groups claim. The hub finds the provider's endpoints in its discovery
document, maps ``<account>@uni.test`` to the tests' Unix accounts, and takes trainers and admins
from the provider's groups alone (this site lists none in [hub]). No session is started."""

from __future__ import annotations

import json
import pwd
import secrets
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import tomli_w
from chromium import IMAGES
from realsite import REPO, as_test_accounts, wait_until

from factoryhub.demo.hubprocess import HubInstance, start_hub, stop_hub
from factoryhub.identity import ADMINS, LEARNERS, TRAINERS
from factoryhub.site import another_hub, load_site

pytestmark = pytest.mark.browser

HUB = "http://127.0.0.1:18200"
ISSUER = "http://127.0.0.1:18300"
CLIENT_ID = "factoryhub-test"
LABEL = "Test IdP"
PROVIDER_MODULES = Path("/opt/factoryhub/test-oidc/node_modules")  # deploy/install.sh --test
WORK = Path("/var/lib/factoryhub-test")
# The provider's users: login -> (the e-mail claim, the groups claim). Passwords are per run.
PEOPLE = {
    "ada": ("tlearner1@uni.test", ["fh-learners"]),
    "grace": ("ttrainer@uni.test", ["fh-learners", "fh-trainers"]),
    "linus": ("tadmin@uni.test", ["fh-admins"]),
    "eve": ("tlearner2@uni.test", ["another-project"]),  # in no group the hub allows
    "mallory": ("root@uni.test", ["fh-learners"]),  # maps to root: a system account
}
PASSWORDS = {login: secrets.token_urlsafe(12) for login in PEOPLE}


def _provider_config(secret: str) -> dict:
    users = {
        login: {
            "password": PASSWORDS[login],
            "claims": {"email": email, "email_verified": True, "groups": groups, "name": login},
        }
        for login, (email, groups) in PEOPLE.items()
    }
    client = {
        "client_id": CLIENT_ID,
        "client_secret": secret,
        "redirect_uris": [f"{HUB}/hub/oauth_callback"],
        "post_logout_redirect_uris": [f"{HUB}/hub/login"],
    }
    return {"port": 18300, "issuer": ISSUER, "client": client, "users": users}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """The provider, as nobody, its configuration (passwords, the client secret) on stdin."""
    if not PROVIDER_MODULES.is_dir():
        pytest.fail("oidc-provider is not installed: run deploy/install.sh --test")
    folder = WORK / f"oidc-provider-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    shutil.copy(REPO / "tests" / "oidc" / "provider.mjs", folder / "provider.mjs")
    (folder / "provider.mjs").chmod(0o644)
    (folder / "node_modules").symlink_to(PROVIDER_MODULES)
    secret = secrets.token_urlsafe(24)
    log = (REPO / "reports").joinpath("oidc-provider.log")
    log.parent.mkdir(exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["/usr/bin/node", "provider.mjs"],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"},
            user="nobody",
            group="nogroup",
            extra_groups=[],
        )
    proc.stdin.write(json.dumps(_provider_config(secret)).encode())
    proc.stdin.close()
    try:
        discovery = f"{ISSUER}/.well-known/openid-configuration"
        wait_until(lambda: _answers(discovery) or proc.poll() is not None, 20, "oidc-provider")
        assert proc.poll() is None, log.read_text()[-2000:]
        # a network service, so never root: the account the kernel says it runs as
        status = Path(f"/proc/{proc.pid}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(uids) == {str(pwd.getpwnam("nobody").pw_uid)}
        yield secret
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _oidc_site(state: Path, secret: str) -> Path:
    """The demo site as the tests' (their accounts), on the oidc hub's ports, with [auth]."""
    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    raw = as_test_accounts(another_hub(raw, "oidc", 18200, str(state)))
    # Roles come from the provider's groups alone: a mapping that failed could not hide
    # behind site.toml's lists.
    raw["hub"].update(admin_users=[], trainers=[])
    raw["culling"]["enabled"] = False
    secret_file = state / "oidc-client-secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    logout = (
        f"{ISSUER}/session/end?client_id={CLIENT_ID}"
        f"&post_logout_redirect_uri={quote(f'{HUB}/hub/login', safe='')}"
    )
    raw["auth"] = {
        "kind": "oidc",
        "label": LABEL,
        "issuer": ISSUER,  # endpoints from its discovery document
        "client_id": CLIENT_ID,
        "client_secret_file": str(secret_file),
        "logout_url": logout,
        "scopes": ["openid", "profile", "email", "groups"],
        "username_claim": "email",
        "username_pattern": r"(.+)@uni\.test",
        "groups_claim": "groups",
        "allowed_groups": ["fh-learners"],
        "trainer_groups": ["fh-trainers"],
        "admin_groups": ["fh-admins"],
    }
    path = state / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


@pytest.fixture(scope="module")
def oidc_hub(real_hub, provider):
    """A hub that logs in through the provider (the test accounts exist: `real_hub` made
    them). Its state in a folder of its own, removed afterwards."""
    state = WORK / f"oidc-hub-{secrets.token_hex(4)}"
    state.mkdir(parents=True)
    site_path = _oidc_site(state, provider)
    hub = HubInstance(load_site(site_path), site_path, REPO / "hub_config" / "jupyterhub_config.py")
    try:
        start_hub(hub)
        yield hub
    finally:
        stop_hub(hub)
        kept = REPO / "reports" / "oidc-hub.log"
        if (state / "hub.log").exists():
            shutil.copyfile(state / "hub.log", kept)
        shutil.rmtree(state, ignore_errors=True)


def sign_in(page, login: str, next_path: str = "/hub/home", landing: bool = True) -> None:
    """From the hub's login page through the provider's form, as `login`; the browser lands
    on `next_path`, or (not `landing`) stays on the hub's page that refuses the login."""
    page.goto(f"{HUB}/hub/login?next={quote(next_path)}")
    page.click(f"text=Sign in with {LABEL}")
    page.wait_for_url(f"{ISSUER}/interaction/**")
    page.fill("#idp-login", login)
    page.fill("#idp-password", PASSWORDS[login])
    page.click("#idp-submit")
    page.wait_for_url(f"{HUB}{next_path}" if landing else f"{HUB}/hub/oauth_callback**")


def me(page) -> dict:
    """The hub's model of the logged-in user (its REST API, with the browser's cookie)."""
    reply = page.request.get(f"{HUB}/hub/api/user")
    assert reply.status == 200, reply.text()[:300]
    return reply.json()


def test_a_learner_signs_in_through_the_provider_as_their_unix_account(oidc_hub, page):
    page.goto(f"{HUB}/hub/login?next=/hub/home")
    assert page.locator(f"text=Sign in with {LABEL}").count() == 1
    assert page.locator("#password_input").count() == 0  # no Unix password here
    page.screenshot(path=IMAGES / "sso-login.png")
    page.click(f"text=Sign in with {LABEL}")
    page.wait_for_url(f"{ISSUER}/interaction/**")
    page.fill("#idp-login", "ada")
    page.fill("#idp-password", "not her password")
    page.click("#idp-submit")
    assert "Wrong user name or password" in page.inner_text("#idp-error")
    page.fill("#idp-login", "ada")
    page.fill("#idp-password", PASSWORDS["ada"])
    page.screenshot(path=IMAGES / "sso-provider-form.png")
    page.click("#idp-submit")
    page.wait_for_url(f"{HUB}/hub/home")
    user = me(page)
    assert user["name"] == "tlearner1"
    assert user["groups"] == [LEARNERS] and not user["admin"]
    assert page.locator("#fh-nav-teaching").count() == 0
    page.screenshot(path=IMAGES / "sso-home.png")


def test_the_trainers_group_gives_the_trainers_rights(oidc_hub, page):
    sign_in(page, "grace")
    user = me(page)
    assert user["name"] == "ttrainer" and not user["admin"]
    assert sorted(user["groups"]) == sorted([LEARNERS, TRAINERS])
    assert page.locator("#fh-nav-teaching").count() == 1  # the hub's navigation
    reply = page.goto(f"{HUB}/services/factoryhub/teaching")
    assert reply.status == 200 and page.inner_text("h1") == "Teaching"
    reply = page.goto(f"{HUB}/hub/admin")
    assert reply.status == 403  # a trainer is not an admin


def test_the_admins_group_makes_a_hub_admin(oidc_hub, page):
    sign_in(page, "linus")
    user = me(page)
    assert user["name"] == "tadmin" and user["admin"]
    assert ADMINS in user["groups"]
    reply = page.goto(f"{HUB}/hub/admin")
    assert reply.status == 200
    assert page.locator("#fh-nav-admin").count() == 1


def test_a_person_outside_the_allowed_groups_is_refused_with_a_sentence(oidc_hub, page):
    sign_in(page, "eve", landing=False)
    refused = page.inner_text("#fh-login-refused")
    assert "none of the groups allowed to use this hub" in refused
    page.screenshot(path=IMAGES / "sso-refused.png")
    assert page.request.get(f"{HUB}/hub/api/user").status == 403  # not logged in
    # and the hub made no user of them: its admin (in a browser of their own) finds none
    admins = page.context.browser.new_context().new_page()
    sign_in(admins, "linus")
    assert admins.request.get(f"{HUB}/hub/api/users/tlearner2").status == 404
    assert admins.request.get(f"{HUB}/hub/api/users/tadmin").status == 200  # one it made


def test_a_claim_that_maps_to_a_system_account_is_refused(oidc_hub, page):
    sign_in(page, "mallory", landing=False)
    refused = page.inner_text("#fh-login-refused")
    assert "maps to the user name root, which is not an account of this hub" in refused
    assert page.request.get(f"{HUB}/hub/api/user").status == 403


def test_logout_ends_the_hub_session_and_the_providers(oidc_hub, page):
    sign_in(page, "ada")
    assert me(page)["name"] == "tlearner1"
    page.goto(f"{HUB}/hub/logout")
    page.wait_for_url(f"{ISSUER}/session/end**")  # the provider asks to confirm
    page.click("#idp-logout")
    page.wait_for_url(f"{HUB}/hub/login**")
    assert page.request.get(f"{HUB}/hub/api/user").status == 403
    # the provider's session is gone too: signing in asks for the password again
    page.click(f"text=Sign in with {LABEL}")
    page.wait_for_url(f"{ISSUER}/interaction/**")
    assert page.locator("#idp-password").count() == 1
