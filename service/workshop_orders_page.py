"""The trainers' web page to create and end workshops, ``/services/factoryhub/workshops``, for the
site's admins (who run `factoryhub workshop` as root today). It uses the command line's own
path: **Preview** runs ``factoryhub workshop create … --dry-run`` as the service's account (it
only reads), **Order** queues the order for root's `factoryhub workshop-orders`, which checks it
again and runs the same command (`factoryhub.orderqueue`); the page lists the orders with
their results. Every POST needs this page's form token; bad input is said in a sentence."""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import datetime
from pathlib import Path

from tornado import web

from factoryhub.orderqueue import OrderQueue, orders_dir
from factoryhub.workshoporders import OrderError, WorkshopOrder, parse_order
from factoryhub.workshopstore import load_workshops, records_dir

from .pages import SITE_FILE, ServicePage
from .support_page import ServiceAPI, form_token

log = logging.getLogger(__name__)
PREVIEW_TIMEOUT = 60.0
FIELDS = ("action", "name", "courses", "start", "end", "seats", "trainers")


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

    def _admin(self) -> str:
        user = self.current_user
        if not (user.get("admin") or user["name"] in self.site.hub.admin_users):
            raise web.HTTPError(403, "only the site's admins create and end workshops")
        return user["name"]

    def _page(self, status: int = 200, **shown: object) -> None:
        site = self.site
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.finish(
            self.render_page(
                "workshop_orders.html",
                active="teaching",
                orders=OrderQueue(orders_dir(site)).orders(),
                workshops=sorted(load_workshops(records_dir(site)).values(), key=lambda w: w.name),
                token=form_token(
                    self.settings["cookie_secret"], self.current_user["name"], "orders"
                ),
                form=shown.pop("form", {}),
                **{"plan": "", "problem": "", "queued": "", **shown},
            )
        )

    @web.authenticated
    def get(self) -> None:
        self._admin()
        self._page()

    @web.authenticated
    async def post(self) -> None:
        who = self._admin()
        self.require_token_or_form("orders")
        form = {key: self.get_body_argument(key, "")[:200] for key in FIELDS}
        try:
            order = parse_order(form, datetime.now())
        except OrderError as exc:
            self._page(400, form=form, problem=str(exc))
            return
        if self.get_body_argument("do", "") == "preview" and order.action == "create":
            plan = await preview(order, self.settings[SITE_FILE].path)
            self._page(form=form, plan=plan)
            return
        number = OrderQueue(orders_dir(self.site)).put(order, who, datetime.now())
        log.info("workshop order %s from %s: %s %s", number, who, order.action, order.name)
        self._page(
            202,
            queued=f"Order {number} ({order.action} {order.name}) is queued: root's"
            " factoryhub workshop-orders runs it (on this site, within a minute).",
        )
