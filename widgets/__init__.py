"""Notebook widgets (GPU request, job monitor, Dask on Slurm, energy): see the widgets issue.

Nothing is exported yet; the package exists so that `factoryhub.widgets` installs where the
design puts it.
"""
