"""What must not be stored in a course's outputs: a stored output travels with the course to
every learner, so it must not show where the trainer's files are, which accounts they charge,
their keys, the site's installation or a secret. `private_in_output(output)` names each finding.

The patterns look for the shapes these take in a run's output (a job script, a traceback, an
environment dump); they are deliberately specific so that ordinary results (a data set's
SHA-256, a model's parameters) pass.
"""

from __future__ import annotations

import re

# (what it is, pattern); the first match of each is reported, with a short excerpt
PRIVATE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a home path", re.compile(r"(?<![\w.])(/home|/Users|/root)/[\w.~-]+")),
    (
        "an account name",
        re.compile(
            r"#SBATCH\s+(-A|--account)[ =]?\S+|--account[ =]\S+|\bAccount=\S+"
            r"|\bSLURM_JOB_ACCOUNT=\S+"
        ),
    ),
    (
        "a key or certificate path",
        re.compile(
            r"--tls-(key|cert|ca-file)\b|[\w./-]+\.(key|pem|crt|p12)\b|\bid_(rsa|ed25519|ecdsa)\b"
            r"|/\.ssh/|\.ca_file\b"
        ),
    ),
    (
        "a virtual environment or installation path",
        re.compile(r"[\w./-]*/(venv|\.venv|site-packages|dist-packages)/[\w./-]*|/opt/[\w.-]+/"),
    ),
    (
        "a token or secret",
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----"
            r"|\b(JUPYTERHUB_API_TOKEN|JPY_API_TOKEN|api_token|access_token|password|passwd"
            r"|secret|Authorization)\b\s*[=:]\s*['\"]?[^\s'\"]{6,}"
            r"|[?&]token=[^\s&'\"]{8,}|\bBearer\s+[\w.-]{16,}"
            r"|\b(ghp|github_pat|glpat|hf|sk)_[A-Za-z0-9_]{16,}",
            re.IGNORECASE,
        ),
    ),
)


def output_text(output: dict) -> str:
    """The text an output shows: streams, every text-like representation, error tracebacks."""
    parts = [output.get("text", "")]
    data = output.get("data", {})
    parts += [value for key, value in data.items() if key.startswith("text/") or "json" in key]
    parts += [output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])]
    return "\n".join(p if isinstance(p, str) else "".join(map(str, p)) for p in parts)


def private_in_output(output: dict) -> list[tuple[str, str]]:
    """(what, excerpt) for each kind of private information in one stored output (pure)."""
    text = output_text(output)
    found = []
    for what, pattern in PRIVATE_PATTERNS:
        if match := pattern.search(text):
            found.append((what, match.group(0)[:80]))
    return found
