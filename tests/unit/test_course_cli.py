"""`factoryhub course …` finds the site's site.toml wherever it is run, or says what to pass."""

import subprocess
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import pytest

from factoryhub.courses import cli


def test_the_site_comes_from_the_option_then_the_environment_then_a_checkout(tmp_path):
    given, from_env, checkout = (tmp_path / n for n in ("given.toml", "env.toml", "co.toml"))
    for path in (given, from_env, checkout):
        path.write_text("")
    env = {"FACTORYHUB_SITE": str(from_env)}
    assert cli.site_path(given, env, (checkout,)) == given
    assert cli.site_path(None, env, (checkout,)) == from_env
    assert cli.site_path(None, {}, (checkout,)) == checkout


def test_the_installed_site_is_found_outside_a_checkout(tmp_path, monkeypatch):
    installed = tmp_path / "etc-site.toml"
    installed.write_text("")
    monkeypatch.setattr(cli, "INSTALLED_SITE", installed)
    assert cli.site_path(None, {}, (tmp_path / "nowhere.toml",)) == installed


def test_a_missing_site_is_one_sentence_saying_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "INSTALLED_SITE", tmp_path / "absent.toml")
    with pytest.raises(SystemExit, match=r"pass --site /path/to/site\.toml or set FACTORYHUB"):
        cli.site_path(None, {}, (tmp_path / "nowhere.toml",))
    with pytest.raises(SystemExit, match=r"no site.toml at .*typo.toml \(from FACTORYHUB_SITE\)"):
        cli.site_path(None, {"FACTORYHUB_SITE": str(tmp_path / "typo.toml")}, ())


def test_validate_outside_the_checkout_says_what_to_pass_without_a_traceback(tmp_path):
    package_checkout = Path(cli.__file__).resolve().parents[1] / "hub_config" / "site.toml"
    if cli.INSTALLED_SITE.exists() or package_checkout.exists():
        pytest.skip("a site.toml is installed or this package runs from a checkout: it is used")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "factoryhub.cli.main", "course", "validate", "--on", "local"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "pass --site /path/to/site.toml or set FACTORYHUB_SITE" in run.stderr


def test_validating_as_an_account_this_machine_lacks_is_one_sentence(monkeypatch):
    """On a new machine the site's trainer may not exist yet (make test before make demo)."""
    site = SimpleNamespace(hub=SimpleNamespace(trainers=("fh-no-such-trainer",)))
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    with pytest.raises(SystemExit, match=r"no account 'fh-no-such-trainer' .* name one with --as"):
        cli._validating_user(Namespace(user=None), site)
    with pytest.raises(SystemExit, match=r"never validated as root"):
        cli._validating_user(Namespace(user="root"), site)
    assert cli._validating_user(Namespace(user="nobody"), site) == "nobody"
