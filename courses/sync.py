"""Bring a published course into the learner's home without ever losing their work.

The rules (as nbgitpuller's, decided by a pure `plan_sync`), per file of the course:

- new upstream, absent here: copied in;
- unchanged here since the last sync: updated to the new upstream version;
- edited here (or present before the first sync): kept; a changed upstream version lands
  beside it as ``name.upstream-<hash>.ext`` (once per upstream version);
- deleted here: restored (the learner gets the course back; their other files stay);
- a second sync with no upstream change does nothing.

What was synced last is remembered in ``.factoryhub-sync.json`` inside the course folder:
the upstream hash of every file. Runs as the learner, inside their session.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

RECORD = ".factoryhub-sync.json"
SKIP = {".git", ".ipynb_checkpoints", "__pycache__"}
MAX_RECORD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Action:
    """What to do with one upstream file: kind is copy, update, beside, restore or keep."""

    kind: str
    path: str  # relative to the course folder
    target: str = ""  # where it is written (beside: the new name)


def beside_name(path: str, digest: str) -> str:
    """``01-intro.ipynb`` → ``01-intro.upstream-1a2b3c4d.ipynb``."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.upstream-{digest[:8]}{p.suffix}"))


def plan_sync(
    upstream: dict[str, str], local: dict[str, str], record: dict[str, str]
) -> list[Action]:
    """The actions for each upstream file (pure). Maps are path → content hash; `record` is
    the upstream hash each path had when last synced."""
    actions = []
    for path, digest in sorted(upstream.items()):
        synced = record.get(path)
        here = local.get(path)
        if here is None:
            actions.append(Action("restore" if synced else "copy", path, path))
        elif here == digest:
            actions.append(Action("keep", path))
        elif synced is not None and here == synced:
            actions.append(Action("update", path, path))  # untouched by the learner
        elif synced == digest:
            actions.append(Action("keep", path))  # edited here, upstream unchanged
        else:
            actions.append(Action("beside", path, beside_name(path, digest)))
    return actions


def file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(root: Path) -> dict[str, str]:
    """Path → hash of every file under `root`, skipping caches and the sync record."""
    if not root.is_dir():
        return {}
    return {
        str(p.relative_to(root)): file_hash(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.is_symlink()
        and p.name != RECORD
        and not SKIP.intersection(p.relative_to(root).parts)
    }


def _read_record(path: Path) -> dict[str, str]:
    """The sync record, or {} when it is missing, damaged or not a regular file (a FIFO there
    must not hang the session: opened without blocking, checked before reading)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        with os.fdopen(os.dup(fd), "rb") as file:
            record = json.loads(file.read(MAX_RECORD_BYTES))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    ok = isinstance(record, dict) and all(isinstance(v, str) for v in record.values())
    return record if ok else {}


def _occupied(target: Path) -> bool:
    """Something that is not a regular file (a FIFO, a socket, a device, a folder) is where a
    file would go: left alone, never opened."""
    try:
        return not stat.S_ISREG(os.stat(target).st_mode)
    except OSError:
        return False  # absent (or a dangling link): free to write


def sync_course(source: Path, destination: Path) -> list[Action]:
    """Apply `plan_sync` from a published snapshot into the learner's course folder."""
    upstream = tree_hashes(source)
    record_path = destination / RECORD
    record = _read_record(record_path)
    actions = plan_sync(upstream, tree_hashes(destination), record)
    for action in actions:
        if action.kind == "keep":
            continue
        target = destination / action.target
        if action.kind == "beside" and target.exists():
            continue  # this upstream version already lies beside the learner's file
        if _occupied(target):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / action.path, target)
    kept = {a.path for a in actions if a.kind == "beside"}
    new_record = {p: (record.get(p, "") if p in kept else h) for p, h in upstream.items()}
    destination.mkdir(parents=True, exist_ok=True)
    if not _occupied(record_path):
        record_path.write_text(json.dumps(new_record, indent=1), encoding="utf-8")
    return actions
