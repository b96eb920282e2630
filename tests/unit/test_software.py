"""Software environments (factoryhub.software, factoryhub.jobscript): module and image
environments from site.toml become prologues, launchers and kernels, and nothing else does."""

import json
import shlex
import tomllib

import pytest

from factoryhub.jobscript import SessionJob, render_job_script, render_step_script, site_hooks
from factoryhub.request import parse_request
from factoryhub.site import SiteError, site_from_data
from factoryhub.software import SoftwareSettings, kernel_launcher, kernel_spec


def _site(repo, **environments):
    raw = tomllib.loads((repo / "hub_config" / "site.toml").read_text())
    raw["environments"].update(environments)
    return raw


def _job(site, environment: str) -> SessionJob:
    request = parse_request({"environment": environment}, site)
    return SessionJob(
        request=request,
        job_name="fh:demo:alice:",
        command=("/opt/factoryhub/venv/bin/jupyterhub-singleuser",),
        log_dir=".factoryhub/logs",
        hooks=site_hooks(site, environment),
    )


def test_a_module_environment_loads_its_modules_before_the_server(demo_site):
    script = render_job_script(_job(demo_site, "ai-cpu"))
    lines = script.splitlines()
    prologue = [
        "source /usr/share/lmod/lmod/init/bash",
        "export MODULEPATH=/opt/factoryhub/modules",
        "module --force purge",
        "module load python/3.11 ai-cpu/2026",
    ]
    start = lines.index(prologue[0])
    assert lines[start : start + 4] == prologue
    last = shlex.split(lines[-1])
    assert last[:2] == ["exec", "/opt/factoryhub/venv/bin/jupyterhub-singleuser"]
    assert last[-1] == "--MappingKernelManager.default_kernel_name=ai-cpu"
    step = render_step_script(_job(demo_site, "data-science"), "/usr/bin/scancel")
    assert "module load data-science/2026" in step
    assert "--MappingKernelManager.default_kernel_name=data-science" in step


def test_the_default_environment_has_no_prologue_and_no_kernel(demo_site):
    script = render_job_script(_job(demo_site, "default"))
    assert "module" not in script and "default_kernel_name" not in script


def test_an_image_environment_runs_the_server_in_the_runtime(repo):
    raw = _site(repo, img={"label": "Image", "prefix": "/opt/conda", "image": "/srv/i/pt.sif"})
    raw["software"].update(container_runtime="/usr/bin/apptainer", container_options=["--nv"])
    site = site_from_data(raw)
    last = shlex.split(render_job_script(_job(site, "img")).splitlines()[-1])
    assert last[:6] == ["exec", "/usr/bin/apptainer", "exec", "--nv", "/srv/i/pt.sif", last[5]]
    assert last[5] == "/opt/factoryhub/venv/bin/jupyterhub-singleuser"


@pytest.mark.parametrize(
    ("environment", "software", "message"),
    [
        ({"modules": ["python/3.11; id"]}, {}, "environments.bad.modules"),
        ({"modules": ["$(id)"]}, {}, "environments.bad.modules"),
        ({"modules": ["a"], "image": "/srv/x.sif"}, {}, "modules or an image, not both"),
        ({"image": "/srv/x.sif"}, {"container_runtime": ""}, "set software.container_runtime"),
        ({"image": "http://evil/x"}, {"container_runtime": "/usr/bin/apptainer"}, "image"),
        ({}, {"module_path": ["relative"]}, "module_path"),
        ({}, {"container_runtime": "/usr/bin/x", "container_options": ["-v /:/x"]}, "options"),
    ],
)
def test_a_bad_environment_is_refused_with_its_key(repo, environment, software, message):
    raw = _site(repo, bad={"label": "Bad", "prefix": "/opt/x", **environment})
    raw["software"].update(software)
    with pytest.raises(SiteError, match="^.*" + message.replace(".", r"\.")):
        site_from_data(raw)


def test_a_kernel_loads_the_modules_and_passes_only_the_connection_file():
    software = SoftwareSettings(module_path=("/opt/factoryhub/modules",))
    launcher = kernel_launcher(software, "ai-cpu", ("python/3.11", "ai-cpu/2026"))
    assert launcher.splitlines()[-3:] == [
        "module --force purge",
        "module load python/3.11 ai-cpu/2026",
        'exec python -m ipykernel_launcher -f "$1"',
    ]
    spec = json.loads(kernel_spec(software, "ai-cpu", "AI on CPUs"))
    assert spec["argv"] == [
        "/bin/bash",
        "--noprofile",
        "--norc",
        "/usr/local/share/jupyter/kernels/ai-cpu/launch",
        "{connection_file}",
    ]
    assert spec["display_name"] == "AI on CPUs"


def test_an_environment_not_in_the_site_is_refused(demo_site):
    from factoryhub.request import RequestError

    for name in ("nosuch", "python/3.11", "ai-cpu\nmodule load x"):
        with pytest.raises(RequestError, match="environment"):
            parse_request({"environment": name}, demo_site)


def test_site_check_names_each_missing_piece_of_an_environment(demo_site):
    from factoryhub.sitecheck import ClusterFacts, check_site
    from factoryhub.software import needed_paths

    needed = needed_paths(demo_site.software, demo_site.environments)
    present = {p: True for paths in needed.values() for p in paths}
    facts = ClusterFacts(capacity=None, present=present)
    assert [f for f in check_site(demo_site, facts) if "environments" in f.text] == []
    present["/opt/factoryhub/modules/ai-cpu/2026.lua"] = False
    present["/opt/factoryhub/modules/ai-cpu/2026"] = False
    present["/usr/local/share/jupyter/kernels/data-science/kernel.json"] = False
    texts = [f.text for f in check_site(demo_site, ClusterFacts(capacity=None, present=present))]
    assert (
        "environments.ai-cpu: module ai-cpu/2026 (in module_path) does not exist on this host"
        in texts
    )
    assert any(t.startswith("environments.data-science: its kernel") for t in texts)


def test_a_course_names_its_environment_and_its_preset_selects_it(repo, tmp_path):
    import dataclasses
    import shutil

    from factoryhub.course import CourseError
    from factoryhub.courses.catalogue import course_presets, publish
    from factoryhub.site import load_site

    site = load_site(repo / "hub_config" / "site.toml")
    site = dataclasses.replace(
        site, hub=dataclasses.replace(site.hub, catalogue_dir=str(tmp_path / "catalogue"))
    )
    course = tmp_path / "first-steps"
    shutil.copytree(repo / "notebooks" / "first-steps", course)
    toml = (course / "course.toml").read_text()
    (course / "course.toml").write_text(
        toml.replace('environment = "default"', 'environment = "data-science"')
    )
    publish(site, str(course))
    assert course_presets(site)["first-steps"]["environment"] == "data-science"
    (course / "course.toml").write_text(
        toml.replace('environment = "default"', 'environment = "nosuch"')
    )
    with pytest.raises(CourseError, match="environment 'nosuch' is not offered"):
        publish(site, str(course))
    assert course_presets(site)["first-steps"]["environment"] == "data-science"  # unchanged
