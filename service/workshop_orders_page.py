"""The trainers' web page to create and end workshops, ``/services/factoryhub/workshops``, for the
site's admins and trainers (site.toml's [hub] trainers, or single sign-on's trainers' group: the
same test as every teaching page, `is_trainer`). It uses the command line's own path:
**Preview** runs ``factoryhub workshop create … --dry-run`` as the service's account (it only
reads), **Order** queues the order for root's `factoryhub workshop-orders`, which checks it
again and runs the same command (`factoryhub.orderqueue`; root runs the queue by itself within
a minute); the page lists the orders with their results.

An admin orders any workshop. A trainer orders a creation with themselves among its trainers
(the page adds them) within the site's bounds (``[workshops] trainer_max_seats``,
``trainer_max_gpu_hours``), and an end only of a workshop they train; they see their own orders
and workshops only (`factoryhub.workshoporders.check_order_rights`). Every POST needs this
page's form token; bad input or an order over the bounds is said in a sentence, nothing
queued."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from tornado import web

from factoryhub.courses.catalogue import course_presets
from factoryhub.orderqueue import OrderQueue, orders_dir
from factoryhub.workshoporders import (
    OrderError,
    TrainerBounds,
    WorkshopOrder,
    check_order_rights,
    on_record,
    parse_order,
    with_trainer,
)
from factoryhub.workshopstore import load_workshops, records_dir

from .pages import SITE_FILE, ServicePage, is_trainer
from .support_page import ServiceAPI, form_token

log = logging.getLogger(__name__)
PREVIEW_TIMEOUT = 60.0
# A trainer's orders root has not run yet: root runs each with `factoryhub workshop` (over a
# second of CPU even for an order it refuses), so a trainer's flood would keep it busy
MAX_WAITING = 3
# Previews running now, by whom: one each and `MAX_PREVIEWS` in all (each is the whole command,
# about a second of CPU, 100 MB and Slurm queries; the page's rate alone let 20 run at once)
MAX_PREVIEWS = 2
_previewing: set[str] = set()
FIELDS = ("action", "name", "courses", "start", "end", "seats", "trainers", "gpu_hours")


async def preview(order: WorkshopOrder, site_path: str) -> str:
    """The command's own plan (``--dry-run``: nothing made), as this service's account."""
    command = str(Path(sys.executable).parent / "factoryhub")
    process = await asyncio.create_subprocess_exec(
        command, *order.argv(site_path, dry_run=True),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd="/",
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},  # nothing of the service's own
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(process.communicate(), PREVIEW_TIMEOUT)
    except TimeoutError:
        process.kill()
        return "The preview took too long; try again."
    return out.decode(errors="replace")[-8000:]


class WorkshopOrdersHandler(ServiceAPI):
    def write_error(self, status_code: int, **kwargs: object) -> None:
        ServicePage.write_error(self, status_code, **kwargs)  # a page, not JSON

    def _role(self) -> tuple[str, str]:
        """The user's name and role: "admin" or "trainer"; 403 for anyone else."""
        user = self.current_user
        name = user["name"]
        if user.get("admin") or name in self.site.hub.admin_users:
            return name, "admin"
        if is_trainer(self.site, name, user.get("groups") or ()):
            return name, "trainer"
        raise web.HTTPError(403, "only the site's trainers and admins create and end workshops")

    def _page(self, status: int = 200, **shown: object) -> None:
        site = self.site
        who, role = self._role()
        workshops = sorted(load_workshops(records_dir(site)).values(), key=lambda w: w.name)
        orders = OrderQueue(orders_dir(site)).orders()
        if role != "admin":  # a trainer sees their own orders and workshops
            workshops = [w for w in workshops if who in w.trainers]
            orders = [o for o in orders if o.by == who]
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page(
                "workshop_orders.html",
                active="teaching",
                orders=orders,
                workshops=workshops,
                role=role,
                bounds=TrainerBounds.of(site),
                token=form_token(self.settings["cookie_secret"], who, "orders"),
                form=shown.pop("form", {}),
                **{"plan": "", "problem": "", "queued": "", **shown},
            )
        )

    def _checked(self, form: dict[str, str], who: str, role: str) -> WorkshopOrder:
        """The form as an order `who` may make; `OrderError` with the sentence if not."""
        now = datetime.now()
        order = parse_order(form, now)
        if role != "admin":
            order = with_trainer(order, who)
        site = self.site
        workshops = load_workshops(records_dir(site))
        check_order_rights(
            order,
            who,
            role,
            TrainerBounds.of(site),
            presets=course_presets(site) if order.action == "create" else {},
            now=now,
            **on_record(workshops, now),
        )
        return order

    @web.authenticated
    def get(self) -> None:
        self._role()
        self._page()

    @web.authenticated
    async def post(self) -> None:
        who, role = self._role()
        self.require_token_or_form("orders")
        form = {key: self.get_body_argument(key, "")[:200] for key in FIELDS}
        try:
            order = self._checked(form, who, role)
        except OrderError as exc:
            self._page(400, form=form, problem=str(exc))
            return
        if self.get_body_argument("do", "") == "preview" and order.action == "create":
            if who in _previewing or len(_previewing) >= MAX_PREVIEWS:
                problem = "A preview is being made (yours or another's); try again in a moment."
                self._page(429, form=form, problem=problem)
                return
            _previewing.add(who)
            try:
                plan = await preview(order, self.settings[SITE_FILE].path)
            finally:
                _previewing.discard(who)
            self._page(form=form, plan=plan)
            return
        queue = OrderQueue(orders_dir(self.site))
        waiting = sum(1 for o in queue.orders() if o.by == who and o.result is None)
        if role != "admin" and waiting >= MAX_WAITING:
            problem = (
                f"You have {waiting} orders waiting for root's run: order again once it has"
                " run them (this page shows their results)."
            )
            self._page(429, form=form, problem=problem)
            return
        number = queue.put(order, who, datetime.now(), role)
        log.info(
            "workshop order %s from %s (%s): %s %s", number, who, role, order.action, order.name
        )
        self._page(
            202,
            queued=f"Order {number} ({order.action} {order.name}) is queued: root's"
            " factoryhub workshop-orders runs it (on this site, within a minute).",
        )
