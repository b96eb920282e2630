"""The demo's accounts live in their own file, read only by the demo: the product's site model
knows no password, and a role the file claims must be the one site.toml gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from factoryhub.demo.accounts import DemoAccountsError, load_demo_accounts
from factoryhub.site import public_site_data

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_has_one_admin_one_trainer_and_learners(demo_site):
    accounts = load_demo_accounts(REPO / "hub_config" / "demo-accounts.toml", demo_site)
    roles = [a.role for a in accounts]
    assert roles.count("admin") == 1 and roles.count("trainer") == 1 and roles.count("learner") >= 3
    assert all(a.password for a in accounts)


def test_no_password_reaches_the_site_model(demo_site):
    text = (REPO / "hub_config" / "demo-accounts.toml").read_text()
    passwords = [line.split('"')[1] for line in text.splitlines() if line.startswith("password")]
    assert passwords
    shared = str(public_site_data(demo_site)) + str(demo_site)
    assert not [p for p in passwords if p in shared]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[account]]\nname = "alice"\npassword = "x"\nrole = "admin"\n', "alice is a learner"),
        ('[[account]]\nname = "admin"\npassword = "x"\n', "admin is a admin in site.toml"),
        ('[[account]]\nname = "x"\npassword = "y"\nrole = "root"\n', "role 'root'"),
        ('[[account]]\nname = "x"\n', "name and password are required"),
        ('[[account]]\nname = "x"\npassword = "y"\nshell = "/bin/sh"\n', "keys are name"),
        ('[[accounts]]\nname = "x"\n', "unknown table 'accounts'"),
        ("[[account]\n", "demo-accounts.toml"),
    ],
)
def test_a_wrong_file_is_refused_with_the_entry_named(tmp_path, demo_site, text, message):
    path = tmp_path / "demo-accounts.toml"
    path.write_text(text)
    with pytest.raises(DemoAccountsError, match=message):
        load_demo_accounts(path, demo_site)
