"""Software environments of Lmod modules on the real site: a session started in `data-science`
runs its kernel (the session's default, named after the environment) in the modules' Python; a
batch job with the `ai-cpu` prologue of site.toml has its modules loaded; both kernels are
installed; an environment the site does not list is refused before anything reaches Slurm."""

import asyncio
import contextlib
import json
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from realsite import _collect_stdout, _execute_request, _xsrf, wait_until
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from factoryhub.cli.environments import install_kernels
from factoryhub.jobscript import site_hooks

pytestmark = pytest.mark.integration
JUPYTER = "/opt/factoryhub/venv/bin/jupyter"


@pytest.fixture(scope="module")
def kernels(real_hub):
    """The environments' kernels, as `demo start` installs them."""
    return install_kernels(real_hub.site)


@contextlib.asynccontextmanager
async def kernel(base: str, prefix: str, token: str, name: str | None):
    """A kernel of `name` (None: the server's default) in a learner's server."""
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=f"{base}{prefix}api", headers=headers, timeout=60) as api:
        r = await api.post("/kernels", json={"name": name} if name else {})
        assert r.status_code == 201, r.text
        started = r.json()
        url = f"{base.replace('http', 'ws', 1)}{prefix}api/kernels/{started['id']}/channels"
        ws = await websocket_connect(HTTPRequest(url, headers=headers))

        async def execute(code: str) -> str:
            msg_id = uuid.uuid4().hex
            await ws.write_message(json.dumps(_execute_request(msg_id, code)))
            return await asyncio.wait_for(_collect_stdout(ws, msg_id), 60)

        try:
            yield started["name"], execute
        finally:
            ws.close()
            await api.delete(f"/kernels/{started['id']}")


def test_both_kernels_are_installed_for_learners(kernels):
    assert kernels == ["ai-cpu", "data-science"]
    listed = subprocess.run(
        ["runuser", "-u", "tlearner3", "--", JUPYTER, "kernelspec", "list", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    specs = json.loads(listed.stdout)["kernelspecs"]
    for name in kernels:
        argv = specs[name]["spec"]["argv"]
        assert argv[:3] == ["/bin/bash", "--noprofile", "--norc"], argv
        launcher = Path(argv[3]).read_text()
        assert "module --force purge" in launcher and "module load" in launcher


async def test_a_session_in_data_science_runs_its_kernel_in_the_module(hub_client, kernels):
    token = hub_client.login_token("tlearner1")
    hub_client.start("tlearner1", token, name="envds", options={"environment": "data-science"})
    code = (
        "import os, sys, statsmodels\n"
        "print(sys.prefix, os.environ['FH_STACK'], os.environ['LOADEDMODULES'])"
    )
    prefix = "/user/tlearner1/envds/"
    try:
        async with kernel(hub_client.base, prefix, token, None) as (name, run):
            assert name == "data-science"  # the environment's kernel is the session's default
            out = await run(code)
        # the server itself runs after the job's prologue loaded the modules (Jupyter's own
        # python3 kernel inherits its environment, in the server's Python)
        async with kernel(hub_client.base, prefix, token, "python3") as (_, run):
            server = await run("import os, sys; print(sys.prefix, os.environ['LOADEDMODULES'])")
    finally:
        hub_client.stop("tlearner1", token, name="envds")
    assert out.split() == [
        "/opt/factoryhub/envs/data-science-2026",
        "data-science/2026",
        "data-science/2026",
    ]
    assert server.split() == ["/opt/factoryhub/venv", "data-science/2026"]


def test_a_batch_job_in_ai_cpu_has_its_modules_loaded(real_hub, tmp_path):
    hooks = site_hooks(real_hub.site, "ai-cpu")
    out = Path("/tmp") / f"fh-env-{uuid.uuid4().hex}.out"
    script = "\n".join(
        [
            "#!/bin/bash",
            "#SBATCH --partition=cpu --time=00:02:00 --cpus-per-task=2",
            f"#SBATCH --output={out}",
            *hooks.prologue,
            "module --terse list 2>&1",
            'echo "threads=$OMP_NUM_THREADS stack=$FH_STACK"',
            'python -c "import sys, torch; print(sys.prefix)"',
            "",
        ]
    )
    submitted = subprocess.run(
        ["runuser", "-u", "tlearner2", "--", "sbatch", "--parsable"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/tmp",
    )
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.strip().split(";")[0]
    wait_until(
        lambda: (
            not subprocess.run(
                ["squeue", "-h", "-j", job], capture_output=True, text=True
            ).stdout.strip()
        ),
        90,
        "the ai-cpu job ended",
        interval=0.5,
    )
    try:
        lines = out.read_text().split()
    finally:
        out.unlink(missing_ok=True)
    assert lines == [
        "python/3.11",
        "ai-cpu/2026",
        "threads=2",
        "stack=ai-cpu/2026",
        "/opt/factoryhub/venv",
    ], lines


@pytest.mark.parametrize("environment", ["nosuch", "python/3.11", "data-science; id", ""])
def test_an_environment_the_site_does_not_list_is_refused(hub_client, environment):
    token = hub_client.login_token("tlearner3")
    before = subprocess.run(
        ["squeue", "-h", "-u", "tlearner3"], capture_output=True, text=True
    ).stdout
    with hub_client.api(token) as api:
        refused = api.post(
            "/users/tlearner3/servers/envx", json={"user_options": {"environment": environment}}
        )
    assert refused.status_code == 400, refused.text
    assert "environment" in refused.json()["message"]
    after = subprocess.run(["squeue", "-h", "-u", "tlearner3"], capture_output=True, text=True)
    assert after.stdout == before  # nothing reached Slurm


def test_the_form_offers_the_environments_and_refuses_another(hub_client):
    page = hub_client.spawn_page("tlearner3")
    for name in ("default", "ai-cpu", "data-science", "debian-12"):
        assert f'<option value="{name}"' in page, name
    before = subprocess.run(["squeue", "-h", "-u", "tlearner3"], capture_output=True, text=True)
    with hub_client._logged_in("tlearner3") as web:
        refused = web.post(
            "/hub/spawn/tlearner3/envf",
            data={"environment": "python/3.11", "_xsrf": _xsrf(web)},
        )
    assert refused.status_code == 400 and "environment" in refused.text, refused.text[:300]
    after = subprocess.run(["squeue", "-h", "-u", "tlearner3"], capture_output=True, text=True)
    assert after.stdout == before.stdout
