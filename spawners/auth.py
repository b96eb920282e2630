"""How the hub logs people in, from site.toml's ``[auth]``: PAM (the default), or single sign-on
through an OpenID Connect provider with oauthenticator's ``GenericOAuthenticator``.

The rules (which claim names the account, how the provider's groups become the hub's) are
`factoryhub.identity`'s; here they become traitlets, and the checks that need this machine
are made: the mapped account must exist and not be a system account, the client secret is read
from its file.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import stat
import urllib.request
from collections.abc import Collection, Mapping

from tornado import web
from traitlets.config import Config

from factoryhub.identity import (
    ADMINS,
    LEARNERS,
    UNIX_NAME,
    AuthSettings,
    IdentityError,
    LoginRefused,
    endpoints_from_discovery,
    hub_groups,
    unix_name,
)
from factoryhub.site import Site
from factoryhub.workshop import workshop_of_seat
from factoryhub.workshoppool import pool_accounts

DISCOVERY = "/.well-known/openid-configuration"
USER_CLAIMS = "oauth_user"  # where oauthenticator keeps the userinfo claims in auth_state


def refusal(sentence: str) -> web.HTTPError:
    """A 403 whose page (spawners/templates/hub/factoryhub/error.html) says `sentence` as the
    reason the login was refused."""
    error = web.HTTPError(403, "%s", sentence, reason="Sign-in refused")
    error.factoryhub_login_refused = True  # type: ignore[attr-defined]
    return error


class ClaimMapping:
    """The callables oauthenticator calls at each login: the Unix name from the userinfo
    claims (``username_claim``) and the hub's groups from them (``auth_state_groups_key``)."""

    def __init__(
        self, auth: AuthSettings, login_group: str = "", seats: Collection[str] = ()
    ) -> None:
        self.auth = auth
        self.login_group = login_group  # fh-act-as starts sessions for its members only
        # workshop seats' accounts (the site's pool; `ws-<name>-NN` by their shape): handed
        # out with a workshop's access code, never signed in to from the provider
        self.seats = frozenset(seats)

    def username(self, claims: Mapping[str, object]) -> str:
        """The account `claims` map to; a 403 page with the reason when there is none."""
        try:
            name = unix_name(claims, self.auth)
        except LoginRefused as exc:
            raise refusal(str(exc)) from None
        if workshop_of_seat(name) is not None or name in self.seats:
            # the user name claim may be one a person chose at the provider: a seat's account
            # (in the login group) would be theirs, with the work of whoever holds the seat
            raise refusal(
                f"Your account at {self.auth.label} maps to the user name {name}, a workshop"
                " seat's account: seats are given out with a workshop's access code, not"
                " signed in to. Ask the site's support."
            )
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            account = None
        if account is None or account.pw_uid < self.auth.min_uid:
            raise refusal(
                f"Your account at {self.auth.label} maps to the user name {name}, which is not"
                " an account of this hub's cluster. Ask the site's support to create it."
            )
        if self.login_group and not _member(account, self.login_group):
            raise refusal(
                f"Your account at {self.auth.label} maps to the user name {name}, which may not"
                f" start sessions on this hub's cluster (it is not in the group"
                f" {self.login_group}). Ask the site's support to add it."
            )
        return name

    def groups(self, auth_state: Mapping[str, object]) -> list[str]:
        """The hub's groups the provider's groups claim gives; a 403 page for a person in no
        group that may log in. Nobody is let in by name alone: the user name claim may be one
        a person chose at the provider, so admins too come from the provider's groups."""
        claims = auth_state.get(USER_CLAIMS)
        if not isinstance(claims, Mapping):  # oauthenticator's userinfo reply: a JSON object
            claims = {}
        groups = hub_groups(claims, self.auth)
        if not groups:
            raise refusal(not_allowed(self.auth))
        return groups


def _member(account: pwd.struct_passwd, group: str) -> bool:
    """The rule fh-act-as applies before it starts anything for the account."""
    try:
        found = grp.getgrnam(group)
    except KeyError:
        return False
    return account.pw_name in found.gr_mem or account.pw_gid == found.gr_gid


def not_allowed(auth: AuthSettings) -> str:
    return (
        f"You signed in at {auth.label}, but your account there is in none of the groups"
        " allowed to use this hub. If you should have access, ask your trainer or the site's"
        " support to add you to the course's group."
    )


def apply_auth(c: Config, site: Site) -> None:
    """Configure the hub's authenticator for `site`; SystemExit with a sentence when the
    OIDC provider cannot be reached for its endpoints or the client secret cannot be read."""
    # PAM names are the site's own accounts; under OIDC a name is the provider's claim, which
    # a person may choose there: admins then come from the admins group only
    c.Authenticator.admin_users = set(site.hub.admin_users) if site.auth.kind != "oidc" else set()
    c.Authenticator.allowed_users = set()
    if site.auth.kind == "oidc":
        _set_oidc(c, site)
    else:
        _set_pam(c, site)


def _set_pam(c: Config, site: Site) -> None:
    # Learners are real Unix accounts: PAM checks their passwords, the group limits who may
    # log in, and their jobs run under the same uid.
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.allowed_groups = {site.hub.allowed_group}
    c.PAMAuthenticator.open_sessions = False


def _set_oidc(c: Config, site: Site) -> None:
    auth = site.auth
    seats = pool_accounts(site.workshops.account_pool)
    mapping = ClaimMapping(auth, site.hub.allowed_group, seats)
    oidc = c.GenericOAuthenticator
    c.JupyterHub.authenticator_class = "generic-oauth"
    c.Authenticator.username_pattern = UNIX_NAME.pattern  # JupyterHub refuses any other name
    oidc.login_service = auth.label
    oidc.client_id = auth.client_id
    oidc.client_secret = read_client_secret(auth.client_secret_file)
    oidc.oauth_callback_url = auth.callback_url or f"{site.hub.url.rstrip('/')}/hub/oauth_callback"
    for key, url in provider_endpoints(auth).items():
        oidc[key] = url
    oidc.scope = list(auth.scopes)
    oidc.basic_auth = True  # client_secret_basic, OpenID Connect's default for web clients
    oidc.username_claim = mapping.username
    # The provider's groups become the hub's three (factoryhub.identity), synced at each login:
    # the learners' group may log in, the admins' group makes JupyterHub admins, the trainers'
    # group gives what site.toml's [hub] trainers gives (service.pages.is_trainer).
    oidc.manage_groups = True
    oidc.auth_state_groups_key = mapping.groups
    oidc.allowed_groups = {LEARNERS}
    oidc.admin_groups = {ADMINS}
    oidc.custom_403_message = not_allowed(auth)
    oidc.logout_redirect_url = auth.logout_url


def read_client_secret(path: str) -> str:
    """The client secret from its file, which must not be readable by every account."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise SystemExit(f"auth.client_secret_file: cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, encoding="utf-8") as secret_file:
        if os.fstat(fd).st_mode & stat.S_IROTH:
            raise SystemExit(
                f"auth.client_secret_file: {path} is readable by every account; make it the"
                " hub account's alone (chmod 0600)"
            )
        secret = secret_file.read(4096).strip()
    if not secret:
        raise SystemExit(f"auth.client_secret_file: {path} is empty")
    return secret


def provider_endpoints(auth: AuthSettings, timeout: float = 10.0) -> dict[str, str]:
    """authorize_url, token_url and userdata_url: site.toml's, or the issuer's discovery
    document's for those it does not give (read once, when the hub starts)."""
    given = {k: getattr(auth, k) for k in ("authorize_url", "token_url", "userdata_url")}
    if all(given.values()):
        return given
    url = auth.issuer.rstrip("/") + DISCOVERY  # https or loopback http (identity.check_auth)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310
            document = json.loads(reply.read(1_000_000))
        found = endpoints_from_discovery(document, auth.issuer)
    except (OSError, ValueError) as exc:
        reason = exc if isinstance(exc, IdentityError) else f"cannot read {url}: {exc}"
        raise SystemExit(f"auth.issuer: {reason}") from None
    return {key: value or found[key] for key, value in given.items()}
