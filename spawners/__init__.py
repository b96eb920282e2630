"""The hub's Slurm spawner (`SlurmSpawner`) and what only the hub process runs: launching a
session's job, watching every job with one query, the orphan sweep, the readiness proof.

`SlurmSpawner` is imported on first use (JupyterHub's entry point names it)."""

__all__ = ["SlurmSpawner"]


def __getattr__(name: str) -> object:
    if name == "SlurmSpawner":
        from .spawner import SlurmSpawner

        return SlurmSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
