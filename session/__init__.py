"""The jupyter-server extension inside every learner's session (`factoryhub.session`): the
session's clock and walltime warning, its port report and proof to the hub, the course sync.
Started by the spawner with ``--ServerApp.jpserver_extensions=factoryhub.session=True``."""

from .extension import load_jupyter_server_extension


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "factoryhub.session"}]


def _load_jupyter_server_extension(serverapp) -> None:
    load_jupyter_server_extension(serverapp)
