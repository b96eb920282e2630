# Stock batchspawner 1.3.0 as its README configures it, on the same embedded Slurm and the same
# session size as FactoryHub's benchmark requests. Only what the benchmark needs besides: ports
# and files of its own, the proxy binary, full paths to the peer's environment (sudo resets
# PATH), and a service token to start servers for the benchmark's learners.
import os

c = get_config()  # noqa: F821 - provided by JupyterHub
state = os.environ["BENCH_STATE"]
base = int(os.environ["BENCH_PORT_BASE"])
venv = "/opt/factoryhub/peer-venv/bin"

c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "1G"
c.SlurmSpawner.req_runtime = "01:00:00"
c.SlurmSpawner.batchspawner_singleuser_cmd = f"{venv}/batchspawner-singleuser"
c.Spawner.cmd = [f"{venv}/jupyterhub-singleuser"]
c.Spawner.default_url = "/lab"
c.Spawner.http_timeout = 300
c.Spawner.start_timeout = 900

c.JupyterHub.bind_url = f"http://127.0.0.1:{base}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{base + 81}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{base + 1}"
c.ConfigurableHTTPProxy.command = ["/opt/factoryhub/node/node_modules/.bin/configurable-http-proxy"]
c.ConfigurableHTTPProxy.pid_file = f"{state}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/cookie_secret"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{"name": "bench", "api_token": os.environ["BENCH_TOKEN"]}]
c.JupyterHub.load_roles = [
    {
        "name": "bench",
        "scopes": ["admin:users", "admin:servers", "access:servers", "read:users"],
        "services": ["bench"],
    }
]
