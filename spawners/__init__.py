"""The Slurm spawner: request model and validation, job-script rendering, job watching.

`SlurmSpawner` is imported on first use: sessions and widgets use the request model without
paying for JupyterHub's import.
"""

from .request import RequestError, ResourceRequest, parse_request

__all__ = ["RequestError", "ResourceRequest", "SlurmSpawner", "parse_request"]


def __getattr__(name: str) -> object:
    if name == "SlurmSpawner":
        from .spawner import SlurmSpawner

        return SlurmSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
