"""Where the hub keeps its database: the rules for site.toml's `[hub] db_url` and
`db_password_file` (pure; the hub's config reads the password file, `spawners/database.py`).

An empty `db_url` keeps JupyterHub's SQLite file in the hub's `state_dir`. A PostgreSQL URL
names the server, role and database but never the password: site.toml is copied, read and
shown more widely than a secret should be. The password comes from the file
`db_password_file` names, or from libpq's own ways (the hub account's `~/.pgpass`, or no
password at all with peer authentication over the server's Unix socket).
"""

from __future__ import annotations

from urllib.parse import urlsplit

# SQLAlchemy's names for PostgreSQL with the driver FactoryHub installs (psycopg 3, the
# default of SQLAlchemy 2.1's `postgresql://`; pyproject.toml's extra "postgresql").
POSTGRESQL_SCHEMES = ("postgresql", "postgresql+psycopg")
EXAMPLE = "postgresql://factoryhub@db.example.org:5432/factoryhub"


def db_url_problem(url: str, password_file: str) -> str | None:
    """What is wrong with the database settings (a sentence naming the key), or None."""
    if not url:
        if password_file:
            return "hub.db_password_file is set but hub.db_url is empty: SQLite needs no password"
        return None
    if any(ord(ch) < 32 or ch.isspace() for ch in url):
        return "hub.db_url holds a space or a control character"
    if password_file and not password_file.startswith("/"):
        return f"hub.db_password_file: {password_file!r} is not an absolute path"
    scheme, _, _ = url.partition("://")
    if scheme not in POSTGRESQL_SCHEMES:
        return _scheme_problem(scheme if "://" in url else "")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError as exc:
        return f"hub.db_url is not a URL SQLAlchemy can read ({exc}); for example {EXAMPLE}"
    if parts.password is not None:
        return (
            "hub.db_url holds a password: site.toml is no place for one. Write the URL "
            "without it and put the password in a file named by hub.db_password_file "
            "(readable by the hub's account only)"
        )
    if parts.path.strip("/") == "":
        return f"hub.db_url names no database: for example {EXAMPLE}"
    return None


def _scheme_problem(scheme: str) -> str:
    if scheme == "postgres":
        return "hub.db_url: write postgresql://, not postgres:// (SQLAlchemy reads only the first)"
    if scheme.startswith("sqlite"):
        return "hub.db_url: leave it empty for SQLite (the hub keeps the file in hub.state_dir)"
    shown = f"{scheme}://" if scheme else "a URL without a scheme"
    return (
        f"hub.db_url: {shown} is not a database FactoryHub supports; leave db_url empty "
        f"for SQLite or give a PostgreSQL URL such as {EXAMPLE}"
    )


def password_of(text: str) -> str:
    """The password a password file holds: its one line, without the line end; ValueError
    with a sentence when the file holds none or more than one line."""
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ValueError("is empty")
    if any(ch in password for ch in "\r\n\x00"):
        raise ValueError("holds more than one line (write the password alone on one line)")
    return password
