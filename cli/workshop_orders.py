"""`factoryhub workshop-orders` (root; a timer runs it every minute, or an admin by hand): the
workshops ordered on the trainers' web page, run with the same command as by hand
(`factoryhub workshop create|end`), each order checked again first. Its result (exit status
and output) is written beside the order, where the page shows it."""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from factoryhub.courses.cli import site_path
from factoryhub.orderqueue import OrderQueue, orders_dir
from factoryhub.site import SiteError, load_site
from factoryhub.workshoporders import OrderError, parse_order

TIMEOUT = 1800.0  # an end archives every home: minutes, not hours
# the command's whole environment: nothing of the caller's (no PYTHONPATH, no FACTORYHUB_*)
ENVIRONMENT = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "LANG": "C.UTF-8"}  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    orders = sub.add_parser(
        "workshop-orders", help="run the workshops ordered on the trainers' web page (root)"
    )
    orders.add_argument("--site", type=Path, default=None, help="site.toml (as for `workshop`)")


def main(args: argparse.Namespace) -> int:
    try:
        path = str(site_path(args.site))
        site = load_site(path)
    except (OSError, SiteError) as exc:
        print(f"site.toml: {exc}", file=sys.stderr)
        return 1
    queue = OrderQueue(orders_dir(site))
    command = str(Path(sys.executable).parent / "factoryhub")
    for order in queue.queued():
        try:
            checked = parse_order(order.fields, datetime.now())
        except OrderError as exc:
            queue.finish(order.id, 2, f"Not run: {exc}", datetime.now())
            print(f"order {order.id} from {order.by}: refused ({exc})")
            continue
        done = subprocess.run(  # our own command, checked arguments, no shell
            [command, *checked.argv(path)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False, env=ENVIRONMENT,
            cwd="/",
        )  # fmt: skip
        queue.finish(order.id, done.returncode, done.stdout + done.stderr, datetime.now())
        print(f"order {order.id} from {order.by}: {checked.action} {checked.name},"
              f" exit {done.returncode}")  # fmt: skip
    return 0
