"""`factoryhub workshop-orders` (root): the workshops ordered on the trainers' web page, run with
the same command as by hand (`factoryhub workshop create|end`), each order checked again first:
its fields (`parse_order`) and, for a trainer's, the site's rules for trainers
(`check_order_rights`). Its result (exit status and output) is written beside the order, where
the page shows it.

Root runs it by itself: every 15 s under the embedded site's supervisor (`factoryhub demo
start`), or every 30 s from the systemd timer `factoryhub-workshop-orders@<hub id>.timer`; an
admin may also run it by hand. One run at a time: a run that finds another under way leaves
the queue to it. With nothing queued it prints nothing.

The periodic runs call this module itself (``python -m factoryhub.cli.workshop_orders``), which
imports the courses' tools (papermill, nbformat: a second of CPU) only when an order is queued:
an empty queue costs a tenth of that, every 15 s on a machine the hub shares."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from factoryhub.orderqueue import OrderQueue, QueuedOrder, orders_dir
from factoryhub.site import Site, SiteError, load_site
from factoryhub.workshoporders import (
    OrderError,
    TrainerBounds,
    WorkshopOrder,
    check_order_rights,
    on_record,
    parse_order,
)
from factoryhub.workshopstore import load_workshops, records_dir

TIMEOUT = 1800.0  # an end archives every home: minutes, not hours
# the command's whole environment: nothing of the caller's (no PYTHONPATH, no FACTORYHUB_*)
ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8"}  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    orders = sub.add_parser(
        "workshop-orders", help="run the workshops ordered on the trainers' web page (root)"
    )
    orders.add_argument("--site", type=Path, default=None, help="site.toml (as for `workshop`)")


def checked(site: Site, queued: QueuedOrder, now: datetime) -> WorkshopOrder:
    """The queued order read back and checked as the page checked it; `OrderError` if not."""
    from factoryhub.courses.catalogue import course_presets  # only with an order to run

    order = parse_order(queued.fields, now)
    workshops = load_workshops(records_dir(site))
    check_order_rights(
        order,
        queued.by,
        queued.role,
        TrainerBounds.of(site),
        presets=course_presets(site) if order.action == "create" else {},
        now=now,
        **on_record(workshops, now),
    )
    return order


def main(args: argparse.Namespace) -> int:
    try:
        if args.site is None:
            from factoryhub.courses.cli import site_path  # the command's own default

            args.site = site_path(None)
        path = str(args.site)
        site = load_site(path)
    except (OSError, SiteError) as exc:
        print(f"site.toml: {exc}", file=sys.stderr)
        return 1
    queue = OrderQueue(orders_dir(site))
    with queue.run_lock() as mine:
        if not mine:
            print("another run of workshop-orders is under way; it runs the queue")
            return 0
        for order in queue.queued():
            run_one(queue, order, site, path)
    return 0


def run_one(queue: OrderQueue, order: QueuedOrder, site: Site, path: str) -> None:
    """Check `order` again and run it; its result beside it in the queue."""
    try:
        order_checked = checked(site, order, datetime.now())
    except OrderError as exc:
        queue.finish(order.id, 2, f"Not run: {exc}", datetime.now())
        print(f"order {order.id} from {order.by}: refused ({exc})", flush=True)
        return
    command = str(Path(sys.executable).parent / "factoryhub")
    try:
        done = subprocess.run(  # our own command, checked arguments, no shell
            [command, *order_checked.argv(path)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False, env=ENVIRONMENT,
            cwd="/",
        )  # fmt: skip
        rc, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired:
        rc, output = 124, f"Stopped after {TIMEOUT:g} s; see `factoryhub workshop status`."
    queue.finish(order.id, rc, output, datetime.now())
    print(f"order {order.id} from {order.by} ({order.role}): {order_checked.action}"
          f" {order_checked.name}, exit {rc}", flush=True)  # fmt: skip


if __name__ == "__main__":  # the periodic runs: `python -m factoryhub.cli.workshop_orders`
    parser = argparse.ArgumentParser(prog="factoryhub")
    add_parser(parser.add_subparsers(dest="command", required=True))
    sys.exit(main(parser.parse_args(["workshop-orders", *sys.argv[1:]])))
