"""HTTPS at the proxy (site.toml `[hub] tls_self_signed`; a site's own `tls_cert`/`tls_key` take
the same path): a second test hub on its own ports, with a self-signed certificate made at its
start. A login through PAM and the spawn form over HTTPS, verified against that certificate;
every cookie Secure; plain HTTP and an unverified client refused; the key the proxy's alone."""

import os
import pwd
import shutil
import ssl
import stat
import tomllib
from pathlib import Path

import httpx
import pytest
import tomli_w
from realsite import PASSWORDS, REPO, _xsrf, write_test_site

from factoryhub.demo.hubprocess import PROXY_USER, HubInstance, start_hub, stop_hub
from factoryhub.site import another_hub, load_site

pytestmark = pytest.mark.integration

PORT = 18500  # proxy API 18501, hub 18581, service 18582


@pytest.fixture(scope="module")
def tls_hub(real_hub):
    """A hub + proxy serving HTTPS on a self-signed certificate; the test accounts and Slurm
    are `real_hub`'s (no session is started: this hub's jobs would not be the tests')."""
    state = Path("/var/lib/factoryhub-test") / f"tls-{os.getpid()}"
    state.mkdir(parents=True, exist_ok=True)
    raw = tomllib.loads(write_test_site(state).read_text())
    raw = another_hub(raw, "testtls", PORT, str(state))
    raw["hub"].update(url=f"https://127.0.0.1:{PORT}", tls_self_signed=True)
    path = state / "site.toml"
    path.write_text(tomli_w.dumps(raw))
    hub = HubInstance(load_site(path), path, REPO / "hub_config" / "jupyterhub_config.py")
    try:
        start_hub(hub)
        yield hub
    finally:
        stop_hub(hub)
        kept = REPO / "reports" / "test-hub-tls"
        kept.mkdir(parents=True, exist_ok=True)
        for log in ("hub.log", "proxy.log"):
            if (state / log).exists():
                shutil.copy(state / log, kept / log)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(hub.hub_config.parent, ignore_errors=True)


def test_login_and_spawn_form_over_https_verified_against_the_certificate(tls_hub):
    cert = tls_hub.tls.cert
    verified = ssl.create_default_context(cafile=str(cert))
    base = f"https://127.0.0.1:{PORT}"
    with httpx.Client(base_url=base, verify=verified, follow_redirects=True, timeout=60) as web:
        assert web.get("/hub/login").status_code == 200
        r = web.post(
            "/hub/login",
            data={"username": "tlearner1", "password": PASSWORDS["tlearner1"], "_xsrf": _xsrf(web)},
        )
        assert r.status_code == 200 and "/hub/login" not in str(r.url), r.text[:300]
        assert str(r.url).startswith(f"{base}/")  # redirected within https
        form = web.get("/hub/spawn/tlearner1")
        assert form.status_code == 200 and 'name="partition"' in form.text, form.text[:300]
        cookies = list(web.cookies.jar)
        assert {"jupyterhub-session-id", "jupyterhub-hub-login"} <= {c.name for c in cookies}
        insecure = [c.name for c in cookies if not c.secure]
        assert not insecure, f"cookies without Secure: {insecure}"


def test_plain_http_and_an_unverified_client_are_refused(tls_hub):
    with pytest.raises(httpx.TransportError):  # the port speaks TLS only
        httpx.get(f"http://127.0.0.1:{PORT}/hub/login", timeout=10)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"https://127.0.0.1:{PORT}/hub/login", timeout=10)  # the system's roots


def test_the_key_is_the_proxys_alone_and_the_certificate_public(tls_hub):
    tls = tls_hub.tls
    key, cert = tls.key.lstat(), tls.cert.lstat()
    assert stat.S_ISREG(key.st_mode) and stat.S_IMODE(key.st_mode) == 0o400
    assert key.st_uid == pwd.getpwnam(PROXY_USER).pw_uid
    assert stat.S_IMODE(cert.st_mode) == 0o644 and cert.st_uid == 0
    folder = tls.key.parent.lstat()
    assert folder.st_uid == 0 and not folder.st_mode & 0o022  # only root adds files there
    assert "BEGIN CERTIFICATE" in tls.cert.read_text()
