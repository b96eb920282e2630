"""P6 probe: seconds until a two-worker Slurm-backed Dask cluster has computed a result, through
FactoryHub's widget API (`widget`) or dask-jobqueue's SLURMCluster used directly (`direct`),
with the same worker size, partition and walltime. Prints the seconds; runs as a learner."""

import sys
import time

started = time.perf_counter()
mode = sys.argv[1]
if mode == "widget":
    from factoryhub.widgets import SessionCluster

    cluster = SessionCluster(partition="cpu")
else:
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        queue="cpu",
        account="training",
        cores=1,
        processes=1,
        memory="2GB",
        walltime="01:00:00",
        python=sys.executable,
        job_extra_directives=["--nodes=1"],
    )
from distributed import Client  # noqa: E402

cluster.scale(2)
client = Client(cluster)
client.wait_for_workers(2, timeout=180)
assert client.submit(sum, range(10)).result() == 45
elapsed = time.perf_counter() - started
client.close()
cluster.close()
print(f"{elapsed:.3f}")
