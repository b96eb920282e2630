"""Single sign-on's rules (factoryhub.identity) and their translation into oauthenticator's
settings (factoryhub.spawners.auth): the claim mapping, the groups, the site.toml checks."""

import json
import os
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tornado import web
from traitlets.config import Config

from factoryhub.identity import (
    ADMINS,
    LEARNERS,
    TRAINERS,
    AuthSettings,
    IdentityError,
    LoginRefused,
    check_auth,
    endpoints_from_discovery,
    hub_groups,
    unix_name,
)
from factoryhub.site import SiteError, public_site_data, site_from_data
from factoryhub.spawners.auth import ClaimMapping, apply_auth, read_client_secret
from factoryhub.workshoppool import pool_accounts

OIDC = AuthSettings(
    kind="oidc",
    label="MyAccessID",
    authorize_url="https://idp.example/auth",
    token_url="https://idp.example/token",
    userdata_url="https://idp.example/userinfo",
    client_id="factoryhub",
    client_secret_file="/etc/factoryhub/oidc-secret",
    username_claim="email",
    username_pattern=r"(.+)@uni\.example",
    allowed_groups=("learners",),
    trainer_groups=("teachers",),
    admin_groups=("ops",),
)


# --- the mapping rule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "name"),
    [("alice@uni.example", "alice"), ("j-doe_2@uni.example", "j-doe_2")],
)
def test_the_site_pattern_gives_the_unix_name(claim, name):
    assert unix_name({"email": claim}, OIDC) == name


@pytest.mark.parametrize(
    ("claims", "sentence"),
    [
        ({}, "did not say your email"),
        ({"email": ""}, "did not say your email"),
        ({"email": ["alice@uni.example"]}, "did not say your email"),
        ({"email": "alice@evil.example"}, "does not name an account"),
        ({"email": "alice@uni.example.evil"}, "does not name an account"),  # whole value
        ({"email": "Alice@uni.example"}, "does not name an account"),  # not a Unix name
        ({"email": "../root@uni.example"}, "does not name an account"),
        ({"email": "a b@uni.example"}, "does not name an account"),
        ({"email": "al\nice@uni.example"}, "does not name an account"),
        ({"email": f"{'a' * 40}@uni.example"}, "does not name an account"),  # > 32
    ],
)
def test_claims_that_name_no_valid_account_are_refused_with_a_sentence(claims, sentence):
    with pytest.raises(LoginRefused, match=sentence):
        unix_name(claims, OIDC)


def test_a_refusal_quotes_a_hostile_value_only_shortened():
    with pytest.raises(LoginRefused) as refused:
        unix_name({"email": "x" * 5000}, OIDC)
    assert len(str(refused.value)) < 300


def test_the_default_pattern_takes_the_whole_claim():
    auth = replace(OIDC, username_claim="preferred_username", username_pattern="(.+)")
    assert unix_name({"preferred_username": "bob"}, auth) == "bob"


# --- groups -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        (["learners"], [LEARNERS]),
        (["teachers"], [LEARNERS, TRAINERS]),
        (["ops", "other"], [ADMINS, LEARNERS]),
        (["other", "more"], []),
        ("learners", [LEARNERS]),  # a single group sent as a string
        ([], []),
        ({"learners": True}, []),  # not a list
        ([["learners"]], []),
        (None, []),
    ],
)
def test_the_providers_groups_become_the_hubs_three(theirs, ours):
    assert hub_groups({"groups": theirs}, OIDC) == sorted(ours)


def test_groups_are_read_from_the_claim_the_site_names():
    auth = replace(OIDC, groups_claim="eduperson_entitlement")
    claims = {"groups": ["ops"], "eduperson_entitlement": ["learners"]}
    assert hub_groups(claims, auth) == [LEARNERS]


# --- site.toml checks -------------------------------------------------------------------------


def test_pam_is_the_default_and_needs_nothing_else(demo_site):
    assert demo_site.auth.kind == "pam"
    check_auth(AuthSettings())


def test_a_complete_oidc_table_is_accepted():
    check_auth(OIDC)
    check_auth(replace(OIDC, authorize_url="", token_url="", issuer="https://idp.example"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ldap"}, "auth.kind: 'ldap' is not one of pam, oidc"),
        ({"token_url": ""}, "give the provider's issuer"),
        ({"token_url": "http://idp.example/token"}, "auth.token_url: .* is not an https URL"),
        ({"issuer": "ftp://idp.example"}, "auth.issuer: .* is not an https URL"),
        ({"logout_url": "javascript:alert(1)"}, "auth.logout_url"),
        ({"client_id": ""}, "auth.client_id"),
        ({"client_secret_file": "secret.txt"}, "auth.client_secret_file: the absolute path"),
        ({"username_claim": ""}, "auth.username_claim: name one claim"),
        ({"groups_claim": "groups; rm"}, "auth.groups_claim: name one claim"),
        ({"username_pattern": "(.+"}, "auth.username_pattern: not a regular expression"),
        ({"username_pattern": ".+@uni"}, "needs exactly one group.*it has 0"),
        ({"username_pattern": "(.+)@(uni)"}, "needs exactly one group.*it has 2"),
        (
            {"allowed_groups": (), "trainer_groups": (), "admin_groups": ()},
            "auth.allowed_groups: name the provider's groups",
        ),
        ({"min_uid": 0}, "auth.min_uid"),
    ],
)
def test_a_bad_oidc_table_is_refused_naming_the_key(change, message):
    with pytest.raises(IdentityError, match=message):
        check_auth(replace(OIDC, **change))


def test_site_toml_refuses_a_bad_auth_table_as_a_site_error():
    with pytest.raises(SiteError, match=r"auth.client_id"):
        site_from_data(
            {
                "partitions": {"cpu": {}},
                "environments": {"default": {"label": "x", "prefix": "/opt/x"}},
                "auth": {"kind": "oidc", "issuer": "https://idp.example"},
            }
        )
    with pytest.raises(SiteError, match=r"unknown key auth.username_rule"):
        site_from_data({"auth": {"username_rule": "x"}})


def test_http_is_allowed_only_to_this_machine():
    check_auth(replace(OIDC, token_url="http://127.0.0.1:18300/token"))
    with pytest.raises(IdentityError):
        check_auth(replace(OIDC, token_url="http://127.0.0.1.evil.example/token"))


def test_sessions_do_not_learn_how_the_hub_logs_in(demo_site):
    site = replace(demo_site, auth=OIDC)
    assert public_site_data(site)["auth"] == {}


# --- discovery --------------------------------------------------------------------------------

DOCUMENT = {
    "issuer": "https://idp.example",
    "authorization_endpoint": "https://idp.example/auth",
    "token_endpoint": "https://idp.example/token",
    "userinfo_endpoint": "https://idp.example/me",
}


def test_discovery_gives_the_three_endpoints():
    assert endpoints_from_discovery(DOCUMENT, "https://idp.example") == {
        "authorize_url": "https://idp.example/auth",
        "token_url": "https://idp.example/token",
        "userdata_url": "https://idp.example/me",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "https://evil.example"}, "names the issuer 'https://evil.example'"),
        ({"token_endpoint": None}, "has no token_endpoint"),
        ({"userinfo_endpoint": "http://idp.example/me"}, "is not an https URL"),
    ],
)
def test_a_discovery_document_not_the_issuers_own_is_refused(change, message):
    with pytest.raises(IdentityError, match=message):
        endpoints_from_discovery({**DOCUMENT, **change}, "https://idp.example")


# --- the hub's settings -----------------------------------------------------------------------


def test_pam_settings_are_unchanged(demo_site):
    c = Config()
    apply_auth(c, demo_site)
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.PAMAuthenticator.allowed_groups == {"factoryhub"}
    assert "GenericOAuthenticator" not in c


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "oidc-secret"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    return path


def test_oidc_settings_configure_generic_oauthenticator(demo_site, secret_file):
    site = replace(demo_site, auth=replace(OIDC, client_secret_file=str(secret_file)))
    c = Config()
    apply_auth(c, site)
    oidc = c.GenericOAuthenticator
    assert c.JupyterHub.authenticator_class == "generic-oauth"
    assert oidc.client_id == "factoryhub" and oidc.client_secret == "s3cret"
    assert oidc.authorize_url == "https://idp.example/auth"
    assert oidc.oauth_callback_url == "http://127.0.0.1:8000/hub/oauth_callback"
    assert oidc.scope == ["openid", "profile", "email"]
    assert oidc.manage_groups is True
    assert oidc.allowed_groups == {LEARNERS} and oidc.admin_groups == {ADMINS}
    assert c.Authenticator.admin_users == set()  # under OIDC admins come from the group only
    assert callable(oidc.username_claim) and callable(oidc.auth_state_groups_key)
    assert oidc.logout_redirect_url == ""  # no provider logout unless the site names one


def _mapping(demo_site) -> ClaimMapping:
    return ClaimMapping(OIDC)


def test_the_mapped_account_must_exist_and_not_be_a_system_account(demo_site):
    mapping = _mapping(demo_site)
    for name in ("root", "daemon", "nosuchaccount"):
        with pytest.raises(web.HTTPError) as refused:
            mapping.username({"email": f"{name}@uni.example"})
        assert refused.value.status_code == 403
        assert refused.value.factoryhub_login_refused
        assert f"maps to the user name {name}, which is not an account" in str(refused.value)


def test_the_mapped_account_must_be_one_sessions_start_for(demo_site):
    # fh-act-as starts sessions only for members of the login group: an account outside it
    # (here `nobody`, uid 65534) would log in and then fail at every start
    mapping = ClaimMapping(OIDC, demo_site.hub.allowed_group)
    with pytest.raises(web.HTTPError) as refused:
        mapping.username({"email": "nobody@uni.example"})
    assert refused.value.status_code == 403
    assert f"it is not in the group {demo_site.hub.allowed_group}" in str(refused.value)


def test_a_workshop_seats_account_is_never_signed_in_to(demo_site):
    """A person who chose a seat's name as their user name claim at the provider would get
    the seat's account (in the login group), with the work of whoever holds the seat: seats
    of the embedded site (ws-<name>-NN) and of the site's pool are refused by name."""
    mapping = ClaimMapping(OIDC, "", pool_accounts(["train[001-003]"]))
    for name in ("ws-intro-01", "ws-intro-200", "train002"):
        with pytest.raises(web.HTTPError) as refused:
            mapping.username({"email": f"{name}@uni.example"})
        assert refused.value.status_code == 403
        assert f"maps to the user name {name}, a workshop seat's account" in str(refused.value)
    with pytest.raises(web.HTTPError, match="which is not an account"):  # not a seat: on
        mapping.username({"email": "train004@uni.example"})


def test_a_name_in_admin_users_is_no_way_in_without_a_group(demo_site):
    # the user name claim may be one a person chose at the provider (preferred_username)
    mapping = _mapping(demo_site)
    assert "admin" in demo_site.hub.admin_users
    with pytest.raises(web.HTTPError, match="none of the groups allowed"):
        mapping.groups({"oauth_user": {"email": "admin@uni.example", "groups": []}})


def test_a_refusal_is_a_403_page_with_the_sentence(demo_site):
    with pytest.raises(web.HTTPError) as refused:
        _mapping(demo_site).username({"email": "50% off@uni.example"})
    assert "does not name an account" in refused.value.get_message()
    assert refused.value.reason == "Sign-in refused"  # the page's heading


def test_a_person_in_no_allowed_group_is_refused_before_the_hub_makes_a_user(demo_site):
    mapping = _mapping(demo_site)
    with pytest.raises(web.HTTPError, match="none of the groups allowed"):
        mapping.groups({"oauth_user": {"email": "nobody@uni.example", "groups": ["other"]}})
    state = {"oauth_user": {"email": "nobody@uni.example", "groups": ["teachers"]}}
    assert mapping.groups(state) == [LEARNERS, TRAINERS]


def test_the_client_secret_file_must_exist_and_not_be_readable_by_everyone(tmp_path):
    with pytest.raises(SystemExit, match=r"cannot read .*missing"):
        read_client_secret(str(tmp_path / "missing"))
    open_file = tmp_path / "open"
    open_file.write_text("s3cret")
    open_file.chmod(0o644)
    with pytest.raises(SystemExit, match="readable by every account"):
        read_client_secret(str(open_file))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(SystemExit, match="is empty"):
        read_client_secret(str(empty))
    link = tmp_path / "link"
    os.symlink(open_file, link)
    with pytest.raises(SystemExit, match="cannot read"):
        read_client_secret(str(link))  # a link is not followed


class _Discovery(BaseHTTPRequestHandler):
    document: dict = {}

    def do_GET(self) -> None:
        body = json.dumps(self.document).encode()
        self.send_response(200 if self.path.endswith("/openid-configuration") else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def discovery_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discovery)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Discovery
    server.shutdown()


def test_endpoints_come_from_the_issuers_discovery_document(
    demo_site, secret_file, discovery_server
):
    issuer, handler = discovery_server
    handler.document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/me",
    }
    auth = replace(
        OIDC,
        issuer=issuer,
        authorize_url="",
        token_url="",
        userdata_url="",
        client_secret_file=str(secret_file),
    )
    c = Config()
    apply_auth(c, replace(demo_site, auth=auth))
    assert c.GenericOAuthenticator.token_url == f"{issuer}/token"
    assert c.GenericOAuthenticator.userdata_url == f"{issuer}/me"
    handler.document = {**handler.document, "issuer": "https://elsewhere.example"}
    with pytest.raises(SystemExit, match=r"auth.issuer: .* names the issuer"):
        apply_auth(Config(), replace(demo_site, auth=auth))


def test_the_hubs_trainers_group_gives_what_site_toml_trainers_give(demo_site):
    from factoryhub.service.pages import is_trainer

    assert is_trainer(demo_site, "trainer") and not is_trainer(demo_site, "carol")
    assert is_trainer(demo_site, "carol", [LEARNERS, TRAINERS])
    assert not is_trainer(demo_site, "carol", [LEARNERS, ADMINS, "trainers"])
