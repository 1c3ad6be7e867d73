"""The drop folder: which files are exports, which are refused unread, and private copies.

Links are never followed (files are opened with O_NOFOLLOW, so a link put in place after the
listing is refused too), a name that is not UTF-8 is not read, and each file is read from a
private copy whose bytes are exactly the ones hashed.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from connectors.errors import FatalSourceError, Reason
from connectors.files.export import is_utf8, shown

log = logging.getLogger(__name__)

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True, slots=True)
class Listed:
    """A file of the folder as listed, before it is copied."""

    name: str
    path: Path
    size: int
    mtime_ns: int
    problem: Reason | None = None  # why it is refused unread (a link, a name that is no text)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A private, immutable copy of one file and the hash of exactly those bytes."""

    name: str
    path: Path
    sha256: str
    size: int
    mtime_ns: int


class DropFolder:
    """The folder a source drops its exports in, listed in name order (day order)."""

    def __init__(self, folder: Path, *, source: str, suffixes: tuple[str, ...]) -> None:
        self.folder = folder
        self.source = source
        self.suffixes = suffixes

    def listing(self) -> list[Listed]:
        folder = self.folder
        if not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            raise FatalSourceError(
                self.source,
                f"drop folder {folder} {what} (check the 'folder' setting of the source, "
                "and that the share is mounted)",
            )
        try:
            with os.scandir(folder) as scan:
                names = sorted(
                    (e.name, e.path)
                    for e in scan
                    if not e.name.startswith(".") and e.name.lower().endswith(self.suffixes)
                )
        except OSError as exc:
            raise FatalSourceError(
                self.source,
                f"drop folder {folder} cannot be listed ({exc.strerror}); check the 'folder' "
                "setting and the folder's permissions",
            ) from None
        listed = []
        for name, path in names:
            try:
                info = os.lstat(path)
            except OSError:
                listed.append(Listed(name, Path(path), -1, -1))  # reported when opened
                continue
            problem = None
            if stat.S_ISLNK(info.st_mode):
                problem = self.link_refused(name, path)
            elif not stat.S_ISREG(info.st_mode):
                continue  # a folder, a pipe, ...: no export
            elif not is_utf8(name):
                problem = Reason(
                    "file",
                    "bad_file_name",
                    f"{shown(name)}: the file name is not UTF-8 text (bytes shown as \\xNN); "
                    "it is not read: rename it in UTF-8 (or ask the source to)",
                )
            listed.append(Listed(name, Path(path), info.st_size, info.st_mtime_ns, problem))
        return listed

    def link_refused(self, name: str, path: str) -> Reason:
        """Why a symbolic link in the folder is not followed, wherever it points."""
        root = os.path.realpath(self.folder)
        target = os.path.realpath(path)
        if os.path.commonpath([root, target]) != root or target == root:
            return Reason(
                "file",
                "link_outside_folder",
                f"{shown(name)} is a symbolic link to a path outside the drop folder; it is "
                "not followed: remove it, and have the export written into the folder itself",
            )
        return Reason(
            "file",
            "symlink_refused",
            f"{shown(name)} is a symbolic link; links are not followed, even within the drop "
            "folder: have the export written under this name itself",
        )

    def unreadable(self, listed: Listed, exc: OSError) -> Reason:
        """Why a listed file could not be copied (a later run tries again)."""
        if exc.errno == errno.ELOOP:  # became a link after the listing: O_NOFOLLOW refused it
            return self.link_refused(listed.name, str(listed.path))
        return Reason(
            "file",
            "unreadable",
            f"{listed.name} cannot be read ({exc.strerror or type(exc).__name__}); check the "
            "file and its permissions in the drop folder",
        )

    def snapshot(self, listed: Listed, scratch: Path) -> Snapshot | None:
        """Copy and hash the file; None when it changed while being copied.

        One copy at a time: each snapshot overwrites the previous one in `scratch`.
        """
        digest = hashlib.sha256()
        copy = scratch / "snapshot"
        # Never through a link (one put in place since the listing fails with ELOOP), and
        # never blocking on a pipe put in place since.
        fd = os.open(listed.path, _OPEN_FLAGS)
        with os.fdopen(fd, "rb") as source, copy.open("wb") as target:
            before = os.fstat(source.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise OSError(errno.EINVAL, "it is no longer a regular file")
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
            after = os.fstat(source.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            log.info("source %r: %s changed while being read", self.source, listed.name)
            copy.unlink()
            return None
        return Snapshot(listed.name, copy, digest.hexdigest(), after.st_size, after.st_mtime_ns)
