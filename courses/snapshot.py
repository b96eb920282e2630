"""A course's files as root may copy them out of a folder someone else controls (`publish`,
`validate`): read without following a single link, descriptor by descriptor.

A course holds directories and regular files only. A symbolic link, a hard link (a regular file
with more than one name: it may be another name of a file its author cannot read) or a special
file (FIFO, socket, device) is refused with its name, before anything is written anywhere, so a
course can never carry `data.txt -> /etc/shadow` into the catalogue or a trainer's copy. Files
are opened with O_NOFOLLOW (a file swapped for a link after the check is not followed) and
O_NONBLOCK (a file swapped for a FIFO cannot hang root), and checked again on the descriptor.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from factoryhub.course import COURSE_FILE, Course, CourseError, parse_course

SKIP = frozenset({".git", ".ipynb_checkpoints"})
MAX_BYTES = 64 * 1024 * 1024  # a whole course; `check` asks for far less (20 MiB)
MAX_ENTRIES = 10_000
MAX_DEPTH = 32

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Snapshot:
    """What was read from `folder`: its directories (parents first) and files, by relative
    path."""

    folder: Path
    dirs: tuple[str, ...]
    files: dict[str, bytes]

    def course(self) -> Course:
        """The course its course.toml describes (`path` is the folder it was read from)."""
        if COURSE_FILE not in self.files:
            raise CourseError(f"{self.folder}: no {COURSE_FILE} (is this a course folder?)")
        try:
            text = self.files[COURSE_FILE].decode("utf-8")
        except UnicodeDecodeError:
            raise CourseError(f"{self.folder / COURSE_FILE}: not UTF-8 text") from None
        return parse_course(text, self.folder)


def refusal(st: os.stat_result) -> str:
    """Why a file of this kind cannot be part of a course, or '' when it can (pure)."""
    if stat.S_ISDIR(st.st_mode):
        return ""
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is a special file (FIFO, socket or device)"
    if st.st_nlink > 1:
        return f"is a hard link ({st.st_nlink} names for one file)"
    return ""


class _Reader:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.dirs: list[str] = []
        self.files: dict[str, bytes] = {}
        self.total = 0

    def refuse(self, rel: str, why: str) -> CourseError:
        return CourseError(
            f"{self.folder / rel}: {why}; a course holds only directories and regular files"
            " (copy the file's content into the course instead)"
        )

    def walk(self, dir_fd: int, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.refuse(prefix, f"is nested more than {MAX_DEPTH} directories deep")
        for name in sorted(os.listdir(dir_fd)):
            if name in SKIP:
                continue
            rel = f"{prefix}{name}"
            if len(self.dirs) + len(self.files) >= MAX_ENTRIES:
                raise CourseError(f"{self.folder}: more than {MAX_ENTRIES} files")
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if why := refusal(st):
                raise self.refuse(rel, why)
            if stat.S_ISDIR(st.st_mode):
                self.dirs.append(rel)
                sub = self.open(name, dir_fd, _DIR_FLAGS, rel)
                try:
                    self.walk(sub, f"{rel}/", depth + 1)
                finally:
                    os.close(sub)
            else:
                self.files[rel] = self.read(name, dir_fd, rel)

    def open(self, name: str, dir_fd: int, flags: int, rel: str) -> int:
        try:
            return os.open(name, flags, dir_fd=dir_fd)
        except OSError as exc:  # ELOOP, ENOTDIR: swapped for a link since the check
            why = f"cannot be opened without following links ({exc.strerror})"
            raise self.refuse(rel, why) from None

    def read(self, name: str, dir_fd: int, rel: str) -> bytes:
        fd = self.open(name, dir_fd, _READ_FLAGS, rel)
        try:
            st = os.fstat(fd)
            why = refusal(st) or ("became a directory" if stat.S_ISDIR(st.st_mode) else "")
            if why:
                raise self.refuse(rel, why)
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                self.total += len(chunk)
                if self.total > MAX_BYTES:
                    raise CourseError(f"{self.folder}: more than {MAX_BYTES >> 20} MiB in all")
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)


def read_course_files(folder: str | Path) -> Snapshot:
    """Every directory and file under `folder`, read without following links (see above);
    `.git` and `.ipynb_checkpoints` are left out. A `CourseError` names what is refused."""
    folder = Path(folder)
    reader = _Reader(folder)
    try:
        top = os.open(folder, _DIR_FLAGS)
    except FileNotFoundError:
        raise CourseError(f"{folder}: no {COURSE_FILE} (is this a course folder?)") from None
    except OSError as exc:  # ELOOP: the folder itself is a link
        raise reader.refuse(
            "", f"cannot be opened without following links ({exc.strerror})"
        ) from None
    try:
        reader.walk(top, "", 0)
    except OSError as exc:
        raise CourseError(f"{folder}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(top)
    return Snapshot(folder, tuple(reader.dirs), reader.files)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_files(snapshot: Snapshot, into: Path, dir_mode: int = 0o755, file_mode: int = 0o644):
    """Create `into` (it must not exist) holding the snapshot, with exactly these modes."""
    os.mkdir(into, 0o700)
    top = os.open(into, _DIR_FLAGS)
    try:
        for rel in snapshot.dirs:
            os.mkdir(rel, 0o700, dir_fd=top)
        for rel, data in snapshot.files.items():
            fd = os.open(rel, _CREATE_FLAGS, 0o600, dir_fd=top)
            try:
                _write_all(fd, data)
                os.fchmod(fd, file_mode)
            finally:
                os.close(fd)
        for rel in [*reversed(snapshot.dirs), "."]:
            os.chmod(rel, dir_mode, dir_fd=top, follow_symlinks=True)
    finally:
        os.close(top)


def as_tar(snapshots: dict[str, Snapshot], empty_dirs: tuple[str, ...] = ()) -> bytes:
    """One tar archive (in memory) of `snapshots`, each under its key, plus `empty_dirs`:
    directories and regular files only, for an account to unpack as itself."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add_dir(name: str) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)

        for name in empty_dirs:
            add_dir(name)
        for prefix, snapshot in snapshots.items():
            add_dir(prefix)
            for rel in snapshot.dirs:
                add_dir(f"{prefix}/{rel}")
            for rel, data in snapshot.files.items():
                info = tarfile.TarInfo(f"{prefix}/{rel}")
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def replace_file(folder: Path, name: str, data: bytes) -> None:
    """Replace the regular file `folder/name` with `data`, keeping its owner and mode, without
    following a link: a new file is written beside it and renamed over it."""
    top = os.open(folder, _DIR_FLAGS)
    try:
        old = os.stat(name, dir_fd=top, follow_symlinks=False)
        why = refusal(old) or ("is a directory" if stat.S_ISDIR(old.st_mode) else "")
        if why:
            raise CourseError(f"{folder / name}: {why}; not replaced")
        temp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, _CREATE_FLAGS, 0o600, dir_fd=top)
        try:
            _write_all(fd, data)
            if os.geteuid() == 0:
                os.fchown(fd, old.st_uid, old.st_gid)
            os.fchmod(fd, stat.S_IMODE(old.st_mode))
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=top, dst_dir_fd=top)
    finally:
        os.close(top)
