from pathlib import Path

from traitlets.config import Config

from factoryhub.hubconfig import apply_site


def test_demo_site_config(demo_site, repo):
    c = Config()
    site_path = repo / "hub_config" / "site.toml"
    apply_site(c, demo_site, site_path, template_dir=repo / "hub_config" / "templates")
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


def test_config_file_is_thin(repo):
    text = (repo / "hub_config" / "jupyterhub_config.py").read_text()
    assert len(text.splitlines()) < 20 and "apply_site" in text
