"""The hub service `factoryhub` (one tornado app JupyterHub starts, as its own unprivileged
account): the course catalogue and start estimates, rate-limited per user. Run as
``python -m factoryhub.service``."""
