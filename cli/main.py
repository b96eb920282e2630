"""`factoryhub` on the command line: bring the embedded demo site up, down, and report on it;
write, validate and publish courses (`factoryhub course …`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from factoryhub.course import find_courses
from factoryhub.courses import cli as course_cli
from factoryhub.courses.catalogue import publish
from factoryhub.demo.accounts import ensure_accounts, load_demo_accounts
from factoryhub.demo.datasets import ensure_datasets, load_members
from factoryhub.demo.embedded import (
    SLURM_ETC,
    ensure_slurm,
    node_names,
    slurm_status,
    step,
    stop_slurm,
)
from factoryhub.demo.hubprocess import NODE_PREFIX, HubInstance, hub_status, start_hub, stop_hub
from factoryhub.demo.storage import ensure_storage
from factoryhub.security import require_floors
from factoryhub.site import Site, load_site

from . import announce as announce_cli
from . import environments as environments_cli
from . import hubsetup as hubsetup_cli
from . import jobscript as jobscript_cli
from . import sitecheck as sitecheck_cli
from . import storage as storage_cli
from . import workshop as workshop_cli
from . import workshop_orders as workshop_orders_cli
from .environments import install_kernels


def _hub(repo: Path) -> HubInstance:
    site_path = repo / "hub_config" / "site.toml"
    return HubInstance(
        load_site(site_path), site_path, repo / "hub_config" / "jupyterhub_config.py"
    )


def _nodes() -> list[str]:
    conf = SLURM_ETC / "slurm.conf"
    return node_names(conf.read_text()) if conf.exists() else []


def demo_start(repo: Path) -> None:
    step("checking the installed versions against the security floors")
    require_floors(NODE_PREFIX)
    hub = _hub(repo)
    nodes = ensure_slurm(repo / "deploy")
    print(f"Slurm is up: nodes {', '.join(nodes)}", flush=True)
    step("demo accounts: Unix users, the login group, Slurm associations")
    accounts = load_demo_accounts(repo / "hub_config" / "demo-accounts.toml", hub.site)
    created = ensure_accounts(accounts, hub.site.hub.allowed_group, hub.site.access)
    if created:
        print(f"Created Unix accounts: {', '.join(created)}", flush=True)
    step("shared data sets: their groups and read-only folders")
    members = load_members(repo / "hub_config" / "demo-datasets.toml")
    for name in ensure_datasets(hub.site, members):
        print(f"Data set {name}: {hub.site.datasets[name].path}", flush=True)
    ensure_site_software_and_storage(hub.site)
    step("starting the proxy and the hub, and waiting for the hub to answer")
    start_hub(hub)
    step("publishing the courses of notebooks/ into the catalogue")
    for folder in find_courses(repo / "notebooks"):
        entry = publish(hub.site, str(folder))
        print(f"Published course {entry.name}: {entry.title}", flush=True)
    print(f"\nFactoryHub is running at {hub.site.hub.url}")
    if hub.site.hub.tls_self_signed:
        print(f"(a self-signed certificate, {hub.tls.cert}: browsers ask you to accept it)")
    print("\nDemo accounts (user / password):")
    for account in accounts:
        print(f"  {account.name:<10} {account.password:<18} {account.role}")
    print(f"\nCourses: {hub.site.hub.url}/services/factoryhub/catalogue")
    print("Stop everything with `make stop`; see what runs with `make status`.")


def ensure_site_software_and_storage(site: Site) -> None:
    """The environments' JupyterLab kernels, and the storage tiers mounted (again after a
    restart) with each learner's and project's folder and quota, and scratch purged."""
    step("software environments: a JupyterLab kernel per set of Lmod modules")
    print("Kernels:", ", ".join(install_kernels(site)) or "none", flush=True)
    step("storage tiers: project and scratch with quotas (btrfs images)")
    mounted = ensure_storage(site)
    print("Storage mounted now:", ", ".join(mounted) or "already mounted", flush=True)
    # The embedded site has no cron: its purge runs at every start (a site runs it daily).
    storage_cli.purge(site, dry_run=False)


def demo_stop(repo: Path) -> None:
    stop_hub(_hub(repo))
    stop_slurm(_nodes())
    print("Stopped the hub, the proxy, Slurm and its accounting database (munge keeps running).")


def demo_status(repo: Path) -> int:
    status = {**slurm_status(_nodes()), **hub_status(_hub(repo))}
    for name, pid in status.items():
        print(f"{name:<17} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0 if all(status.values()) else 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="factoryhub", description=__doc__)
    sub = parser.add_subparsers(dest="area", required=True)
    demo = sub.add_parser("demo", help="the embedded demo site (Slurm, proxy, hub)")
    demo.add_argument("action", choices=["start", "stop", "status"])
    slurm = sub.add_parser("slurm", help="only the embedded Slurm (munge, slurmctld, slurmd)")
    slurm.add_argument("action", choices=["start", "stop"])
    for p in (demo, slurm):
        p.add_argument("--repo", type=Path, default=Path.cwd(), help="FactoryHub checkout")
    course_cli.add_parser(sub)
    jobscript_cli.add_parser(sub)
    workshop_cli.add_parser(sub)
    workshop_orders_cli.add_parser(sub)
    announce_cli.add_parser(sub)
    sitecheck_cli.add_parser(sub)
    environments_cli.add_parser(sub)
    hubsetup_cli.add_parser(sub)
    storage_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.area == "environments":
        return environments_cli.main(args)
    if args.area == "hub":
        return hubsetup_cli.main(args)
    if args.area == "storage":
        return storage_cli.main(args)
    if args.area == "site":
        return sitecheck_cli.main(args)
    if args.area == "announce":
        return announce_cli.main(args)
    if args.area == "course":
        return course_cli.main(args)
    if args.area == "job-script":
        return jobscript_cli.main(args)
    if args.area == "workshop":
        return workshop_cli.main(args)
    if args.area == "workshop-orders":
        return workshop_orders_cli.main(args)
    repo = args.repo.resolve()
    if args.area == "slurm":
        if args.action == "start":
            print("Slurm nodes up:", ", ".join(ensure_slurm(repo / "deploy")))
            ensure_site_software_and_storage(_hub(repo).site)
        else:
            stop_slurm(_nodes())
        return 0
    if args.action == "start":
        demo_start(repo)
    elif args.action == "stop":
        demo_stop(repo)
    else:
        return demo_status(repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
