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
import shutil
from dataclasses import dataclass
from pathlib import Path

RECORD = ".factoryhub-sync.json"
SKIP = {".git", ".ipynb_checkpoints", "__pycache__"}


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


def sync_course(source: Path, destination: Path) -> list[Action]:
    """Apply `plan_sync` from a published snapshot into the learner's course folder."""
    upstream = tree_hashes(source)
    record_path = destination / RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    actions = plan_sync(upstream, tree_hashes(destination), record)
    for action in actions:
        if action.kind == "keep":
            continue
        target = destination / action.target
        if action.kind == "beside" and target.exists():
            continue  # this upstream version already lies beside the learner's file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / action.path, target)
    kept = {a.path for a in actions if a.kind == "beside"}
    new_record = {p: (record.get(p, "") if p in kept else h) for p, h in upstream.items()}
    destination.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(new_record, indent=1), encoding="utf-8")
    return actions
