"""'Keep my session' on the real site (issue 16): a learner keeps their own session for one more
idle period through their session's extension (which asks the hub service with the session's
token), and no learner can keep, or read the idle outlook of, another's: another learner's
token is refused by the session itself, and the hub service takes the user from the token,
never from the request. Nothing is written for a refused request."""

import httpx
import pytest

from factoryhub.culling import Exemption, exemptions_path, read_exemptions

pytestmark = pytest.mark.integration

A, B = "tlearner1", "tlearner2"


def _auth(token: str) -> dict:
    return {"Authorization": f"token {token}"}


def test_a_learner_keeps_their_own_session_and_not_another_learners(real_hub, hub_client):
    site = real_hub.site
    path = exemptions_path(site)
    original = path.read_bytes() if path.exists() else None
    tokens = {user: hub_client.login_token(user) for user in (A, B)}
    base, service = hub_client.base, f"{hub_client.base}/services/factoryhub/api/culling"
    try:
        for user in (A, B):
            hub_client.start(user, tokens[user], options={"partition": "cpu"})
        before = read_exemptions(site)

        # B's token on A's session: the session refuses it (it is A's server, not B's)
        as_b = httpx.post(f"{base}/user/{A}/factoryhub/culling/keep", headers=_auth(tokens[B]))
        assert as_b.status_code == 403, as_b.text
        peek = httpx.get(f"{base}/user/{A}/factoryhub/culling", headers=_auth(tokens[B]))
        assert peek.status_code == 403
        # A naming B in the service's request: refused, the user is the token's owner
        named = httpx.post(
            f"{service}/keep", json={"server": "", "user": B}, headers=_auth(tokens[A])
        )
        assert named.status_code == 400 and "server" in named.json()["message"]
        # a server A does not have, and a name that is not a server name
        missing = httpx.post(f"{service}/keep", json={"server": "x"}, headers=_auth(tokens[A]))
        assert missing.status_code == 404, missing.text
        odd = httpx.post(f"{service}/keep", json={"server": "../b"}, headers=_auth(tokens[A]))
        assert odd.status_code == 400
        # a browser's cookie alone is not enough to change anything (no token, no form token)
        anonymous = httpx.post(f"{service}/keep", json={"server": ""})
        assert anonymous.status_code == 403, anonymous.status_code
        assert read_exemptions(site) == before

        # A, through A's own session: kept for one more idle period of A's server only
        outlook = httpx.get(f"{base}/user/{A}/factoryhub/culling", headers=_auth(tokens[A]))
        assert outlook.status_code == 200, outlook.text
        assert outlook.json()["rule"] == "idle" and outlook.json()["kept_until"] == ""
        kept = httpx.post(f"{base}/user/{A}/factoryhub/culling/keep", headers=_auth(tokens[A]))
        assert kept.status_code == 200, kept.text
        until = kept.json()["kept_until"]
        added = [e for e in read_exemptions(site) if e not in before]
        assert added == [Exemption(A, "", until, A)]
        mine = httpx.get(f"{service}/session", params={"server": ""}, headers=_auth(tokens[A]))
        assert mine.json()["kept_until"] == until
        theirs = httpx.get(f"{base}/user/{B}/factoryhub/culling", headers=_auth(tokens[B]))
        assert theirs.status_code == 200 and theirs.json()["kept_until"] == ""
        # pressing it again replaces A's keep, it does not pile up
        httpx.post(f"{base}/user/{A}/factoryhub/culling/keep", headers=_auth(tokens[A]))
        assert len([e for e in read_exemptions(site) if e not in before]) == 1
    finally:
        # A's keep would outlive this test (idle_minutes) and spare A's next sessions
        if original is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(original)
        for user, token in tokens.items():
            if hub_client.server(user, token) is not None:
                hub_client.stop(user, token)
