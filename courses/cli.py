"""`factoryhub course new|check|validate|publish|list` — the trainer's command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import pwd
import sys
import tomllib
from datetime import datetime
from pathlib import Path

from factoryhub.course import CourseError, find_courses, load_course
from factoryhub.scheduler.slurm import SlurmClient
from factoryhub.site import Site, SiteError, load_site

from . import catalogue
from .check import check_course
from .effort import course_effort
from .reports import write_reports
from .scaffold import new_course
from .snapshot import read_course_files
from .validate import (
    ProgressBar,
    job_environment,
    plan,
    prepare,
    record_outputs,
    run_local,
    run_slurm,
)

INSTALLED_SITE = Path("/etc/factoryhub/site.toml")  # a real site's, as the spawner's site_path


def add_parser(sub: argparse._SubParsersAction) -> None:
    course = sub.add_parser("course", help="write, check, validate and publish courses")
    actions = course.add_subparsers(dest="action", required=True)
    new = actions.add_parser("new", help="scaffold a course that validates out of the box")
    new.add_argument("name", help="folder name: a-z, 0-9 and -")
    new.add_argument("--root", type=Path, default=Path("notebooks"))
    check = actions.add_parser("check", help="static checks (metadata, paths, network, sizes)")
    check.add_argument("courses", nargs="*", type=Path)
    validate = actions.add_parser("validate", help="run every notebook and compare outputs")
    validate.add_argument("courses", nargs="*", type=Path)
    validate.add_argument("--on", choices=["slurm", "local"], default="slurm")
    validate.add_argument("--jobs", type=int, default=4, help="notebooks at once (local)")
    validate.add_argument("--reports", type=Path, default=Path("reports"))
    validate.add_argument("--as", dest="user", help="account to run as (root: the trainer)")
    validate.add_argument(
        "--record",
        action="store_true",
        help="store this run's outputs as the reference outputs of notebooks that ran through",
    )
    publish = actions.add_parser("publish", help="put a course into the hub's catalogue")
    publish.add_argument("source", help="a course folder, or a git URL with --ref")
    publish.add_argument("--ref", help="git branch or tag (for a git source)")
    publish.add_argument("--path", default="", help="the course's folder inside the repository")
    actions.add_parser("list", help="what the catalogue shows")
    for parser in (check, validate, publish, actions.choices["list"]):
        parser.add_argument(
            "--site",
            type=Path,
            help=f"site.toml (default: $FACTORYHUB_SITE, ./hub_config/site.toml, {INSTALLED_SITE})",
        )


def site_path(given: Path | None, environ=os.environ, checkouts: tuple[Path, ...] = ()) -> Path:
    """The site.toml to use: --site, else $FACTORYHUB_SITE, else a checkout's
    hub_config/site.toml (the working directory's, or this package's when it runs from one),
    else the installed /etc/factoryhub/site.toml; one sentence saying what to pass when none
    is there."""
    named = given or (Path(environ["FACTORYHUB_SITE"]) if environ.get("FACTORYHUB_SITE") else None)
    if named is not None:
        if not named.is_file():
            how = "--site" if given else "FACTORYHUB_SITE"
            raise SystemExit(f"error: no site.toml at {named} (from {how})")
        return named
    checkouts = checkouts or (
        Path.cwd() / "hub_config" / "site.toml",
        Path(__file__).resolve().parents[1] / "hub_config" / "site.toml",
    )
    for candidate in (*checkouts, INSTALLED_SITE):
        if candidate.is_file():
            return candidate
    raise SystemExit(
        f"error: no site.toml found (not in ./hub_config/ nor at {INSTALLED_SITE}): pass"
        " --site /path/to/site.toml or set FACTORYHUB_SITE to the hub's site.toml"
    )


def _site(args: argparse.Namespace) -> Site:
    path = site_path(args.site)
    try:
        return load_site(path)
    except (OSError, SiteError) as exc:
        raise SystemExit(f"error: {path}: {exc}") from None


def _folders(given: list[Path]) -> list[Path]:
    return given or find_courses(Path("notebooks"))


def _validating_user(args: argparse.Namespace, site: Site) -> str:
    """The account the notebooks run as: --as, else (as root) the site's first trainer, else
    whoever runs the command. An account missing on this machine, or root, is one sentence."""
    if args.user:
        user = args.user
    elif os.geteuid() == 0:
        if not site.hub.trainers:
            raise SystemExit("Running as root: name an account with --as (never root)")
        user = site.hub.trainers[0]
    else:
        user = getpass.getuser()
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise SystemExit(
            f"error: no account {user!r} on this machine to validate as: name one with --as"
        ) from None
    if account.pw_uid == 0:
        raise SystemExit("error: notebooks are never validated as root: name an account with --as")
    return user


def _duration_note(folder: Path) -> str:
    """ " · duration 01:15:00, about 75 min from its content" (empty when it cannot be read)."""
    try:
        course = load_course(folder)
        minutes = course_effort(course.path, course.notebooks).minutes
    except (CourseError, OSError, ValueError, tomllib.TOMLDecodeError):
        return ""
    return f" · duration {course.duration}, about {minutes:.0f} min from its content"


def cmd_check(args: argparse.Namespace) -> int:
    failed = 0
    for folder in _folders(args.courses):
        problems = check_course(folder)
        state = "ok" if not problems else f"{len(problems)} problem(s)"
        print(f"{folder}: {state}{_duration_note(folder) if not problems else ''}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    return 1 if failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    site = _site(args)
    # read once, without following links; every later step works from this snapshot
    snapshots = [read_course_files(Path(f).resolve()) for f in _folders(args.courses)]
    courses = [s.course() for s in snapshots]
    if not courses:
        print("No courses to validate.")
        return 1
    user = _validating_user(args, site)
    home = Path(pwd.getpwnam(user).pw_dir)
    root = home / ".factoryhub" / "validate" / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    targets = plan(courses, root)
    prepare(snapshots, root, user)  # as the validating account
    bar = ProgressBar(len(targets))
    prefix = site.environments[courses[0].environment].prefix
    env = job_environment(site, user, prefix)
    if args.on == "slurm":
        switch = os.geteuid() == 0
        client = SlurmClient(site.slurm.bin_dir, site.slurm.command_timeout, switch_user=switch)
        results = asyncio.run(run_slurm(targets, site, env, client, bar))
    else:
        results = asyncio.run(run_local(targets, env, f"{prefix}/bin/python", args.jobs, bar))
    bar.close()
    if args.record:
        sources = {c.name: s for c, s in zip(courses, snapshots, strict=True)}
        for target, result in zip(targets, results, strict=True):
            print(record_outputs(target, result, user, sources[target.course.name]))
    xml, page = write_reports(results, {c.name: c for c in courses}, site.energy, args.reports)
    for result in results:
        line = f"{result.status:>6}  {result.course}/{result.notebook}  {result.seconds:.1f} s"
        print(line + (f"  {result.message[:200]}" if result.message else ""))
    failed = sum(r.status != "passed" for r in results)
    print(f"{len(results) - failed} passed, {failed} failed; reports: {xml}, {page}")
    return 1 if failed else 0


def cmd_publish(args: argparse.Namespace) -> int:
    site = _site(args)
    entry = catalogue.publish(site, args.source, ref=args.ref, subdir=args.path)
    print(f"Published {entry.name}: {entry.title} (from {entry.source})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    entries = catalogue.published(_site(args))
    if not entries:
        print("The catalogue is empty: publish a course with `factoryhub course publish`.")
    for entry in entries:
        print(f"{entry.name:<28} {entry.title} · {entry.duration} · from {entry.source}")
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "new":
            path = new_course(args.root, args.name)
            print(
                f"Created {path}: edit course.toml and the notebook, then"
                f" `factoryhub course validate {path}`"
            )
            return 0
        return {
            "check": cmd_check,
            "validate": cmd_validate,
            "publish": cmd_publish,
            "list": cmd_list,
        }[args.action](args)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
