"""Notebook widgets for learners in a FactoryHub session (ipywidgets 8).

    from factoryhub.widgets import GPURequest, JobMonitor, DaskCluster, EnergyPanel

Each takes an optional `SessionContext` (read from the session's environment by default); the
logic behind them is plain functions and coroutines, tested without a browser. Names are
imported on first use, so `SessionCluster` alone does not pay for ipywidgets.
"""

from importlib import import_module

_HOMES = {
    "Announcements": ".announcements",
    "AskSupport": ".support",
    "DaskCluster": ".dask_panel",
    "EnergyPanel": ".energy_panel",
    "GPURequest": ".gpu_request",
    "JobMonitor": ".monitor",
    "SessionCluster": ".dask_cluster",
    "SessionContext": ".context",
    "session_context": ".context",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> object:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name], __name__), name)
