"""The queue of workshop orders between the hub service (unprivileged: it writes orders) and
root (`factoryhub workshop-orders`: it runs them and writes each result beside its order).

A folder in the hub's state directory, the hub account's, 0700. Root reads an order only from a
regular file it opened without following links, owned by the folder's owner, at most
`MAX_BYTES`; it writes a result with ``O_EXCL|O_NOFOLLOW`` and gives it to the folder's owner.
Root never trusts a queued order's text: it is checked again (`parse_order`, and a trainer's
against the site's bounds) before it runs. One run of root's at a time (`run_lock`): the timer's
and an admin's by hand never run the same order twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .site import Site
from .workshoporders import ORDER_ID, ROLES, WorkshopOrder

FOLDER = "workshop-orders"
MAX_BYTES = 16 * 1024
MAX_OUTPUT = 8000  # characters of the command's output kept with a result


def orders_dir(site: Site) -> Path:
    return Path(site.hub.state_dir) / FOLDER


@dataclass(frozen=True)
class QueuedOrder:
    id: str
    by: str
    created: str
    fields: dict
    result: dict | None  # {"rc", "output", "finished"} once root ran it
    role: str = "trainer"  # who ordered (ROLES); an order that does not say is a trainer's


def _read(folder: int, name: str, owner: int) -> dict | None:
    """A JSON file of the queue (in the folder open as `folder`), read without following
    links, only if `owner`'s."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != owner or info.st_size > MAX_BYTES:
            return None
        data = os.read(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _write_new(folder: int, name: str, value: dict, owner: int | None) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(name, flags, 0o600, dir_fd=folder)
    try:
        os.write(fd, json.dumps(value).encode())
        if owner is not None and os.geteuid() == 0:
            os.fchown(fd, owner, -1)
    finally:
        os.close(fd)


class OrderQueue:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextlib.contextmanager
    def _opened(self) -> Iterator[tuple[int, int] | None]:
        """The folder, opened without following a link: (its descriptor, its owner); None when
        there is no such folder. Every file is then named relative to this descriptor, so a
        folder swapped for a link afterwards changes nothing."""
        try:
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            yield None
            return
        try:
            yield fd, os.fstat(fd).st_uid
        finally:
            os.close(fd)

    def put(self, order: WorkshopOrder, by: str, now: datetime, role: str = "trainer") -> str:
        """Queue `order` by `by`, an admin or a trainer (`role`) (the hub service, as the hub's
        account); its id."""
        if role not in ROLES:
            raise ValueError(f"role: one of {', '.join(ROLES)}")
        self.folder.mkdir(mode=0o700, exist_ok=True)
        number = f"{now.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        record = {"by": by, "role": role, "created": now.isoformat(), "fields": order.fields()}
        with self._opened() as opened:
            if opened is None:
                raise OSError(f"{self.folder} is not a folder")
            _write_new(opened[0], f"{number}.json", record, None)
        return number

    def orders(self, newest: int = 50) -> list[QueuedOrder]:
        """The newest orders, each with its result when it has one."""
        with self._opened() as opened:
            if opened is None:
                return []
            folder, owner = opened
            names = sorted(
                (n[:-5] for n in os.listdir(folder) if n.endswith(".json")),
                reverse=True,
            )
            found = []
            for name in [n for n in names if ORDER_ID.fullmatch(n)][:newest]:
                record = _read(folder, f"{name}.json", owner)
                if record is None or not isinstance(record.get("fields"), dict):
                    continue
                result = _read(folder, f"{name}.result", owner)
                role = record.get("role")
                found.append(
                    QueuedOrder(
                        name, str(record.get("by", ""))[:64], str(record.get("created", ""))[:32],
                        record["fields"], result, role if role in ROLES else "trainer",
                    )
                )  # fmt: skip
        return found

    def queued(self) -> list[QueuedOrder]:
        """The orders without a result, oldest first (root runs them in this order)."""
        return sorted((o for o in self.orders(500) if o.result is None), key=lambda o: o.id)

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[bool]:
        """Root's run of the queue, one at a time: True while this run holds the folder's lock
        (``flock``, released when the run ends or dies), False when another run holds it."""
        with self._opened() as opened:
            if opened is None:
                yield True  # no folder: nothing queued to run twice
                return
            try:
                fcntl.flock(opened[0], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True

    def finish(self, number: str, rc: int, output: str, now: datetime) -> None:
        """Root's result of order `number`, given to the folder's owner."""
        if not ORDER_ID.fullmatch(number):
            raise ValueError(f"not an order: {number[:40]!r}")
        result = {"rc": rc, "output": output[-MAX_OUTPUT:], "finished": now.isoformat()}
        # JSON writes a character outside ASCII as a 6-byte escape: the output is cut further
        # until the result fits what `_read` reads (a result read as none ran the order again)
        while len(json.dumps(result)) > MAX_BYTES:
            result["output"] = result["output"][len(result["output"]) // 4 + 1 :]
        with self._opened() as opened:
            if opened is None:
                raise OSError(f"{self.folder} is not a folder")
            _write_new(opened[0], f"{number}.result", result, opened[1])
