"""`factoryhub hub setup`'s pure parts: which state directories it refuses to take, what it
compares to say what it changed, and its refusals (a site file it cannot read, a missing
config) before anything is written."""

import argparse
import os
from pathlib import Path

import pytest

from factoryhub.cli import hubsetup
from factoryhub.cli.main import main


@pytest.mark.parametrize(
    ("path", "owner", "part"),
    [
        ("var/lib/factoryhub", None, "not an absolute path"),
        ("/var/lib/../factoryhub", None, "not an absolute path"),
        ("/", "root", "system folder"),
        ("/var", "root", "system folder"),
        ("/var/lib", "root", "system folder"),
        ("/usr/local", "root", "system folder"),
        ("/home/alice", "alice", "belongs to alice"),
        ("/srv/hub", "uid 4242 (not a folder)", "belongs to uid 4242"),
    ],
)
def test_state_directories_setup_must_not_take(path, owner, part):
    problem = hubsetup.state_dir_problem(Path(path), owner)
    assert problem is not None and part in problem


@pytest.mark.parametrize("owner", [None, "root", "factoryhub"])
def test_the_hubs_own_state_directory_is_taken(owner):
    assert hubsetup.state_dir_problem(Path("/var/lib/factoryhub"), owner) is None


def test_the_fingerprint_sees_content_mode_and_mtime_and_not_a_rewrite_of_nothing(tmp_path):
    file, link, missing = tmp_path / "hub.env", tmp_path / "link", tmp_path / "missing"
    file.write_text("A=1\n")
    link.symlink_to(file)
    paths = [file, link, missing]
    first = hubsetup.fingerprint(paths)
    assert first[str(missing)] == () and first[str(link)][-1] == ""  # a link is not followed
    assert hubsetup.fingerprint(paths) == first
    os.utime(file, ns=(1, 1))
    assert hubsetup.fingerprint(paths)[str(file)] != first[str(file)]
    second = hubsetup.fingerprint(paths)
    file.chmod(0o600)
    assert hubsetup.fingerprint(paths)[str(file)] != second[str(file)]


def test_an_unreadable_site_file_is_a_sentence_and_exit_3(tmp_path, capsys):
    broken = tmp_path / "site.toml"
    broken.write_text("[hub\n")
    assert main(["hub", "setup", "--site", str(broken)]) == 3
    out = capsys.readouterr().out
    assert out.startswith("error: cannot read the site file") and "Traceback" not in out


def test_a_missing_config_is_refused_before_anything_is_written(repo, tmp_path, capsys):
    args = argparse.Namespace(
        site=repo / "hub_config" / "site.toml",
        config=tmp_path / "no-config.py",
        start=False,
        no_start=False,
    )
    if os.geteuid() != 0:
        assert hubsetup.main_setup(args) == 4
        assert "run it as root" in capsys.readouterr().out
        return
    assert hubsetup.main_setup(args) == 4
    out = capsys.readouterr().out
    assert "no JupyterHub config at" in out and "--config" in out


def test_start_and_no_start_are_one_choice(capsys):
    with pytest.raises(SystemExit):
        main(["hub", "setup", "--start", "--no-start"])
    assert "not allowed with" in capsys.readouterr().err
