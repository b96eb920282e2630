"""The jupyter-server extension inside every learner's session (`factoryhub.session`): the
session's clock and walltime warning, its port report and proof to the hub, the course sync.
Started by the spawner with ``--ServerApp.jpserver_extensions=factoryhub.session=True``."""

from .extension import load_jupyter_server_extension
from .progress import link_progress


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "factoryhub.session"}]


def _link_jupyter_server_extension(serverapp) -> None:
    # before the server builds its web application: what it is built with is set here
    link_progress(serverapp)  # a workshop seat's kernel connections count the cells run


def _load_jupyter_server_extension(serverapp) -> None:
    load_jupyter_server_extension(serverapp)
