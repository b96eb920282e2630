"""HTTPS settings (site.toml [hub] tls_*), the self-signed certificate, the proxy's argv and
cookies with TLS, and the systemd units that supervise the hub where systemd is PID 1."""

import configparser
import datetime
import ipaddress
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from traitlets.config import Config

from factoryhub.demo import hubunits
from factoryhub.demo.hubprocess import CHP, VENV, HubInstance, hub_supervised_argv
from factoryhub.demo.hubtls import TLSFiles, self_signed, still_good, tls_files
from factoryhub.site import SiteError, another_hub, site_from_data
from factoryhub.spawners.hubconfig import apply_site

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"


def _site(demo_site, **hub):
    return replace(demo_site, hub=replace(demo_site.hub, **hub))


def _raw_site(**hub) -> dict:
    import tomllib

    raw = tomllib.loads((REPO / "hub_config" / "site.toml").read_text())
    raw["hub"].update(hub)
    return raw


@pytest.mark.parametrize(
    ("hub", "message"),
    [
        ({"url": "https://hub.example.org"}, "serves https:// with tls_cert"),
        ({"tls_self_signed": True}, "needs an https:// address"),
        ({"url": "https://h", "bind_url": "http://x:80/hub"}, "nothing after it"),
        (
            {"url": "https://h", "bind_url": "https://127.0.0.1:8000"},
            "hub.bind_url 'https://127.0.0.1:8000': the proxy serves https://",
        ),
        ({"url": "https://h", "tls_cert": "/etc/ssl/h.pem"}, "give both"),
        ({"url": "https://h", "tls_cert": "h.pem", "tls_key": "/k"}, "not an absolute path"),
        ({"url": "https://h", "tls_cert": "/a b.pem", "tls_key": "/k"}, "without spaces"),
        (
            {"url": "https://h", "tls_cert": "/c", "tls_key": "/k", "tls_self_signed": True},
            "names its own certificate",
        ),
    ],
)
def test_tls_settings_are_one_consistent_choice(hub, message):
    with pytest.raises(SiteError, match=message):
        site_from_data(_raw_site(**hub))


def test_tls_settings_that_agree_are_taken():
    own = site_from_data(_raw_site(url="https://h:8443", tls_cert="/c.pem", tls_key="/k.pem"))
    assert tls_files(own.hub, Path("/etc/x")) == TLSFiles(Path("/c.pem"), Path("/k.pem"))
    made = site_from_data(_raw_site(url="https://h", tls_self_signed=True))
    assert tls_files(made.hub, Path("/etc/x")) == TLSFiles(
        Path("/etc/x/tls/cert.pem"), Path("/etc/x/tls/key.pem")
    )
    assert tls_files(site_from_data(_raw_site()).hub, Path("/etc/x")) is None


def test_a_self_signed_certificate_names_its_host_and_is_renewed_near_its_end():
    cert_pem, key_pem = self_signed("127.0.0.1", days=365)
    cert = x509.load_pem_x509_certificate(cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert b"PRIVATE KEY" in key_pem
    assert still_good(cert_pem, "127.0.0.1")
    assert not still_good(cert_pem, "hub.example.org")  # the url changed: made again
    late = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=340)
    assert not still_good(cert_pem, "127.0.0.1", now=late)
    assert not still_good(b"not a certificate", "127.0.0.1")
    named, _ = self_signed("hub.example.org")
    assert still_good(named, "hub.example.org")


def test_the_proxy_serves_https_with_the_certificate(demo_site, tmp_path):
    site = _site(demo_site, url="https://hub.example.org", tls_self_signed=True)
    argv = HubInstance(site, tmp_path / "s.toml", tmp_path / "c.py").proxy_argv()
    assert argv[argv.index("--port") + 1] == "443"
    assert argv[argv.index("--ssl-cert") + 1].endswith("/hubs/demo/tls/cert.pem")
    assert argv[argv.index("--ssl-key") + 1].endswith("/hubs/demo/tls/key.pem")
    plain = HubInstance(demo_site, tmp_path / "s.toml", tmp_path / "c.py").proxy_argv()
    assert "--ssl-cert" not in plain and plain[plain.index("--port") + 1] == "8000"


def test_behind_a_site_reverse_proxy_the_proxy_listens_inside_and_the_hub_knows_its_url(
    demo_site, repo, tmp_path
):
    raw = _raw_site(url="https://hub.example.org", bind_url="http://127.0.0.1:8000")
    site = site_from_data(raw)  # TLS at the site's proxy: no certificate here
    argv = HubInstance(site, tmp_path / "s.toml", tmp_path / "c.py").proxy_argv()
    assert argv[argv.index("--ip") + 1] == "127.0.0.1" and "--ssl-cert" not in argv
    assert argv[argv.index("--port") + 1] == "8000"
    c = Config()
    apply_site(c, site, repo / "hub_config" / "site.toml")
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000"
    assert c.JupyterHub.public_url == "https://hub.example.org"
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True}
    assert another_hub(raw, "t", 18000, "/tmp/t")["hub"]["bind_url"] == ""


def test_cookies_are_secure_behind_https_only(demo_site, repo):
    site_path = repo / "hub_config" / "site.toml"
    c = Config()
    apply_site(c, _site(demo_site, url="https://h", tls_self_signed=True), site_path)
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"secure": True}
    plain = Config()
    apply_site(plain, demo_site, site_path)
    assert "cookie_options" not in plain.JupyterHub.tornado_settings
    assert "public_url" not in plain.JupyterHub  # JupyterHub reads it from the request


def test_the_hub_runs_under_its_supervisor(demo_site, tmp_path):
    hub = HubInstance(demo_site, tmp_path / "s.toml", tmp_path / "c.py")
    argv = hub_supervised_argv(hub)
    assert argv[:3] == [str(VENV / "bin" / "python"), "-m", "factoryhub.demo.supervise"]
    assert argv[3] == str(hub.hub_pidfile) and argv[4] == "--"
    assert argv[5:] == hub.hub_argv()
    assert hub.hub_supervisor_pidfile != hub.hub_pidfile


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((UNITS / name).read_text())
    return unit


def test_systemd_units_restart_on_failure_unprivileged_and_keep_sessions():
    proxy, hub = _unit("factoryhub-proxy@.service"), _unit("factoryhub-hub@.service")
    for unit, user in ((proxy, "factoryhub-proxy"), (hub, "factoryhub")):
        assert unit["Service"]["Restart"] == "on-failure"
        assert unit["Service"]["User"] == user
    assert proxy["Service"]["ExecStart"].split()[0] == str(CHP)
    assert hub["Service"]["ExecStart"].split()[0] == str(VENV / "bin" / "jupyterhub")
    # a hub restart never signals the sessions' detached srun in its control group
    assert hub["Service"]["KillMode"] == "process"
    assert "factoryhub-proxy@%i.service" in hub["Unit"]["Requires"]
    assert {"munge.service", "slurmctld.service"} <= set(hub["Unit"]["After"].split())
    assert hubunits.units("demo") == (
        "factoryhub-proxy@demo.service",
        "factoryhub-hub@demo.service",
    )


def test_environment_files_are_quoted_and_refuse_what_systemd_would_misread(tmp_path):
    text = hubunits.environment_file({"A": "x y", "PROXY_ARGS": "--ip 127.0.0.1"})
    assert text == 'A="x y"\nPROXY_ARGS="--ip 127.0.0.1"\n'
    for bad in ('a"b', "a\nb", "a\\b", "$HOME"):
        with pytest.raises(ValueError):
            hubunits.environment_file({"A": bad})
    assert not hubunits.systemd_runs(tmp_path)
    (tmp_path / "run" / "systemd" / "system").mkdir(parents=True)
    assert hubunits.systemd_runs(tmp_path)


def test_leftovers_on_a_machine_without_the_service_accounts_yet(demo_site, tmp_path, monkeypatch):
    """A fresh machine's first start looks for an earlier run's processes before it makes the
    hub's and the proxy's accounts: none can run yet, so none are found (it raised KeyError,
    and the first test hub of `make test` on a fresh machine never started)."""
    import pwd

    from factoryhub.demo import hubprocess

    def no_accounts(name: str):
        raise KeyError(f"getpwnam(): name not found: {name!r}")

    monkeypatch.setattr(pwd, "getpwnam", no_accounts)
    hub = HubInstance(demo_site, tmp_path / "s.toml", tmp_path / "c.py")
    # the demo's own hub may run on this machine, its pid files in place (CI failed so after
    # `make demo`): a pid file naming a live process of an account not made yet is nobody's
    assert hubprocess.leftovers(hub) == []
