-- Data science: a second Python environment (statsmodels and patsy of its own) layered on the
-- FactoryHub stack (numpy, pandas, scipy, scikit-learn, ipykernel), built by deploy/install.sh.
whatis("Name: data-science")
whatis("Version: 2026")
whatis("Description: Python 3.11 with statsmodels, pandas, scipy and scikit-learn")
help([[Python from /opt/factoryhub/envs/data-science-2026: statsmodels 0.15 and patsy of its
own, with the packages of python/3.11 underneath.]])
conflict("python")
local root = "/opt/factoryhub/envs/data-science-2026"
prepend_path("PATH", pathJoin(root, "bin"))
setenv("FH_PYTHON_ROOT", root)
setenv("FH_STACK", "data-science/2026")
