"""The shared session environment starts fast: nothing slow on a session's import path."""

import subprocess

VENV_PYTHON = "/opt/factoryhub/venv/bin/python"


def test_session_start_up_does_not_import_rfc3987_syntax():
    code = "import sys, jupyterhub.singleuser; print('rfc3987_syntax' in sys.modules)"
    out = subprocess.run([VENV_PYTHON, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_session_python_is_readable_by_learners():
    # An interpreter under /root (pyenv) cannot be executed by a learner's job.
    real = subprocess.run(
        ["readlink", "-f", VENV_PYTHON], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert real.startswith("/usr/bin/python3")
