"""Who logs in: site.toml's ``[auth]`` and the rules that turn what an OpenID Connect provider
says about a person (its claims) into a Unix account and the hub's groups.

PAM (the default) logs in Unix accounts with their passwords. With ``kind = "oidc"`` the hub
sends people to the site's identity provider (MyAccessID, an eduGAIN proxy, Keycloak…); one
claim names the account, through the site's pattern, and one claim lists the person's groups,
which decide who may log in and who is a trainer or an admin. The hub's login code
(`factoryhub.spawners.auth`) configures oauthenticator with these rules; everything here is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

KINDS = ("pam", "oidc")
# The hub's own groups (JupyterHub groups) an OIDC login puts a person in; the provider's
# groups are mapped to these and never copied (an eduGAIN entitlement list can be long).
LEARNERS = "factoryhub-learners"
TRAINERS = "factoryhub-trainers"
ADMINS = "factoryhub-admins"
# Debian's default NAME_REGEX (adduser.conf), at most 32 characters like useradd.
UNIX_NAME = re.compile(r"[a-z][-a-z0-9_]{0,31}")
_SHOWN = 80  # characters of a claim's value quoted back to the person or the log


class IdentityError(ValueError):
    """An ``[auth]`` table that cannot be used; the message names the key."""


class LoginRefused(Exception):
    """A person the provider vouched for whom this hub will not log in; the message is a
    sentence for that person."""


@dataclass(frozen=True)
class AuthSettings:
    """How people log in (site.toml ``[auth]``). ``kind = "pam"``: Unix passwords, the rest is
    ignored. ``kind = "oidc"``: the provider's endpoints (from ``issuer``'s discovery document
    where ``authorize_url``, ``token_url`` or ``userdata_url`` is not given), this hub's client
    id and the file holding its secret, then the claims and groups."""

    kind: str = "pam"
    label: str = "single sign-on"  # the login button says "Sign in with <label>"
    issuer: str = ""
    authorize_url: str = ""
    token_url: str = ""
    userdata_url: str = ""
    # where the hub's logout page sends people: the provider's end-session URL (with its
    # parameters) ends their session there too; empty: the hub's session only
    logout_url: str = ""
    client_id: str = ""
    client_secret_file: str = ""  # readable by the hub's account alone; never in site.toml
    callback_url: str = ""  # default: the hub's url + /hub/oauth_callback
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    username_claim: str = "preferred_username"
    # a regular expression the claim's whole value must match; its one group is the Unix name
    username_pattern: str = "(.+)"
    groups_claim: str = "groups"
    allowed_groups: tuple[str, ...] = ()  # the provider's groups whose members may log in
    trainer_groups: tuple[str, ...] = ()  # … who are trainers (and may log in)
    admin_groups: tuple[str, ...] = ()  # … who are the hub's admins (and may log in)
    min_uid: int = 1000  # accounts below it (system accounts, root) never log in this way


def check_auth(auth: AuthSettings) -> None:
    """Refuse, with `IdentityError` naming the key, an ``[auth]`` table that cannot work."""
    if auth.kind not in KINDS:
        raise IdentityError(f"auth.kind: {auth.kind!r} is not one of {', '.join(KINDS)}")
    if auth.kind != "oidc":
        return
    endpoints = ("authorize_url", "token_url", "userdata_url")
    if not auth.issuer and not all(getattr(auth, key) for key in endpoints):
        raise IdentityError(
            "auth: give the provider's issuer (its endpoints are then read from its discovery"
            " document) or all of authorize_url, token_url and userdata_url"
        )
    for key in ("issuer", *endpoints, "logout_url", "callback_url"):
        if value := getattr(auth, key):
            _check_url(value, f"auth.{key}")
    if not auth.client_id:
        raise IdentityError("auth.client_id: the client id the provider registered this hub as")
    if not auth.client_secret_file.startswith("/"):
        raise IdentityError(
            "auth.client_secret_file: the absolute path of the file that holds the client"
            " secret (the secret itself never goes in site.toml)"
        )
    _check_claims(auth)


def _check_url(value: str, where: str) -> None:
    """https, or http to this machine's loopback (a provider started for tests)."""
    parts = urlsplit(value)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    secure = parts.scheme == "https" or (parts.scheme == "http" and loopback)
    if not parts.hostname or not secure:
        raise IdentityError(f"{where}: {value!r} is not an https URL")


def _check_claims(auth: AuthSettings) -> None:
    for key in ("username_claim", "groups_claim"):
        if not re.fullmatch(r"[A-Za-z0-9_:.-]{1,100}", getattr(auth, key)):
            raise IdentityError(f"auth.{key}: name one claim (letters, digits, _ : . -)")
    try:
        pattern = re.compile(auth.username_pattern)
    except re.error as exc:
        raise IdentityError(f"auth.username_pattern: not a regular expression ({exc})") from None
    if pattern.groups != 1:
        raise IdentityError(
            "auth.username_pattern: needs exactly one group, the part that is the Unix user"
            f" name (it has {pattern.groups}); e.g. '(.+)@example\\.org' for e-mail addresses"
        )
    if not (auth.allowed_groups or auth.trainer_groups or auth.admin_groups):
        raise IdentityError(
            "auth.allowed_groups: name the provider's groups whose members may log in (with"
            " trainer_groups and admin_groups); with none, nobody could"
        )
    if auth.min_uid < 1:
        raise IdentityError("auth.min_uid: at least 1 (root never logs in this way)")


def _shown(value: object) -> str:
    text = str(value)
    return repr(text if len(text) <= _SHOWN else f"{text[:_SHOWN]}…")


def unix_name(claims: Mapping[str, object], auth: AuthSettings) -> str:
    """The Unix user name the provider's `claims` map to by the site's rule; `LoginRefused`
    with a sentence for the person when the claim is missing, does not match the site's
    pattern or does not give a valid Unix name. Whether the account exists is the hub's check."""
    value = claims.get(auth.username_claim)
    if not isinstance(value, str) or not value:
        raise LoginRefused(
            f"{auth.label} did not say your {auth.username_claim}, which this hub needs to find"
            " your account. Ask the site's support to release it to the hub."
        )
    match = re.fullmatch(auth.username_pattern, value)
    name = match.group(1) if match else None
    if not name or not UNIX_NAME.fullmatch(name):
        raise LoginRefused(
            f"Your {auth.username_claim} at {auth.label}, {_shown(value)}, does not name an"
            " account of this hub. Ask the site's support which account is yours."
        )
    return name


def hub_groups(claims: Mapping[str, object], auth: AuthSettings) -> list[str]:
    """The hub's groups (`LEARNERS`, `TRAINERS`, `ADMINS`) the provider's groups claim puts
    a person in; none when the claim is missing or not a list of names. Trainers and admins
    are learners too: they may log in."""
    listed = claims.get(auth.groups_claim)
    if isinstance(listed, str):
        listed = [listed]  # some providers send a single group as a string
    if not isinstance(listed, list):
        return []
    theirs = {group for group in listed if isinstance(group, str)}
    groups = set()
    if theirs & set(auth.trainer_groups):
        groups.add(TRAINERS)
    if theirs & set(auth.admin_groups):
        groups.add(ADMINS)
    if groups or theirs & set(auth.allowed_groups):
        groups.add(LEARNERS)
    return sorted(groups)


def is_trainer_in(groups: Iterable[str]) -> bool:
    """Whether the hub's groups of a user (JupyterHub's user model ``groups``) make a trainer."""
    return TRAINERS in set(groups)


def endpoints_from_discovery(document: Mapping[str, object], issuer: str) -> dict[str, str]:
    """authorize, token and userdata URLs from a provider's discovery document
    (``<issuer>/.well-known/openid-configuration``), checked: the document must be the
    issuer's own, and every URL https (or loopback)."""
    if document.get("issuer") != issuer:
        raise IdentityError(
            f"auth.issuer: the discovery document names the issuer {_shown(document.get('issuer'))}"
            f", not {issuer!r} (OpenID Connect Discovery requires them to be the same)"
        )
    keys = {
        "authorize_url": "authorization_endpoint",
        "token_url": "token_endpoint",
        "userdata_url": "userinfo_endpoint",
    }
    found = {}
    for ours, theirs in keys.items():
        value = document.get(theirs)
        if not isinstance(value, str):
            raise IdentityError(f"auth.issuer: the discovery document has no {theirs}")
        _check_url(value, f"auth.issuer's {theirs}")
        found[ours] = value
    return found
