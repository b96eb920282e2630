-- AI on CPU nodes: PyTorch's CPU build, with its thread pools sized to the job's CPUs.
whatis("Name: ai-cpu")
whatis("Version: 2026")
whatis("Description: PyTorch (CPU) with threads matched to the Slurm job's CPUs")
help([[Loads python/3.11 (PyTorch, CPU build) and sets OMP_NUM_THREADS and MKL_NUM_THREADS to
the CPUs Slurm gave the job (SLURM_CPUS_PER_TASK), so PyTorch does not oversubscribe a node.]])
depends_on("python/3.11")
local cpus = os.getenv("SLURM_CPUS_PER_TASK") or "1"
setenv("OMP_NUM_THREADS", cpus)
setenv("MKL_NUM_THREADS", cpus)
setenv("FH_STACK", "ai-cpu/2026")
