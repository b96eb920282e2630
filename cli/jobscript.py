"""`factoryhub job-script`: print the job script FactoryHub would submit, without submitting it
(as dask-jobqueue's `cluster.job_script()` does), with the site's hooks in it.

    factoryhub job-script session --user alice --options '{"partition": "gpu", "gpus": 1}'
    factoryhub job-script validation notebooks/first-steps --user trainer
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from factoryhub import jobnames
from factoryhub.course import CourseError, load_course
from factoryhub.courses.cli import site_path
from factoryhub.courses.validate import plan, validation_script
from factoryhub.jobscript import SessionJob, render_job_script, session_command, site_hooks
from factoryhub.request import RequestError, access_for, parse_request
from factoryhub.site import Site, SiteError, load_site


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("job-script", help="print a job script without submitting it")
    parser.add_argument("kind", choices=["session", "validation"])
    parser.add_argument("course", nargs="?", help="a course folder (validation)")
    parser.add_argument("--user", required=True, help="whose job (their access rules apply)")
    parser.add_argument("--options", default="{}", help="a session's options as JSON")
    parser.add_argument("--server", default="", help="the named server (session)")
    parser.add_argument("--site", type=Path, default=None, help="site.toml (as `course`)")


def _session(site: Site, args: argparse.Namespace) -> str:
    options = json.loads(args.options)
    request = parse_request(options, site, access_for(site, args.user))
    prefix = site.environments[request.environment].prefix
    job = SessionJob(
        request=request,
        job_name=jobnames.session_job_name(site.hub.id, args.user, args.server),
        command=session_command(prefix, ("jupyterhub-singleuser",)),
        log_dir=site.session.log_dir,
        hooks=site_hooks(site, request.environment),
    )
    return render_job_script(job)


def _validation(site: Site, args: argparse.Namespace) -> str:
    if not args.course:
        raise CourseError("validation: name the course folder")
    run = Path(os.path.expanduser(f"~{args.user}")) / ".factoryhub" / "validate" / "example"
    targets = plan([load_course(Path(args.course))], run)  # a run folder named, never made
    return "\n".join(validation_script(t, site, args.user) for t in targets)


def main(args: argparse.Namespace) -> int:
    try:
        site = load_site(site_path(args.site))  # found as `factoryhub course` finds it
        render = _session if args.kind == "session" else _validation
        print(render(site, args), end="")
    except (OSError, SiteError, RequestError, CourseError, ValueError) as exc:
        print(f"factoryhub job-script: {exc}")
        return 2
    return 0
