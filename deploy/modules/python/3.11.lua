-- FactoryHub's own Python stack (installed by deploy/install.sh): Python 3.11, JupyterLab 4,
-- Dask, ipywidgets, scikit-learn and the CPU build of PyTorch.
whatis("Name: python")
whatis("Version: 3.11")
whatis("Description: Python 3.11 with JupyterLab, Dask, scikit-learn and PyTorch (CPU)")
help([[Python 3.11 from /opt/factoryhub/venv, the environment FactoryHub's sessions run in.]])
family("python")
local root = "/opt/factoryhub/venv"
prepend_path("PATH", pathJoin(root, "bin"))
setenv("FH_PYTHON_ROOT", root)
