"""Notebook widgets for learners in a FactoryHub session (ipywidgets 8).

    from factoryhub.widgets import GPURequest, JobMonitor, DaskCluster, EnergyPanel

Each takes an optional `SessionContext` (read from the session's environment by default); the
logic behind them is plain functions and coroutines, tested without a browser.
"""

from .context import SessionContext, session_context
from .dask_cluster import SessionCluster
from .dask_panel import DaskCluster
from .energy_panel import EnergyPanel
from .gpu_request import GPURequest
from .monitor import JobMonitor

__all__ = [
    "DaskCluster",
    "EnergyPanel",
    "GPURequest",
    "JobMonitor",
    "SessionCluster",
    "SessionContext",
    "session_context",
]
