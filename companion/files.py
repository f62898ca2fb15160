"""Files that hold a runner's data (recordings, profiles): user-only, made the same way.

A recording or a runner profile says where and how someone ran; nobody else on the
machine reads it. Files are made ``0600`` and the folders made for them ``0700``,
whatever the umask; a folder that already exists keeps its permissions (the user chose
them).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parent, each ``DIR_MODE``; ``NotADirectoryError``
    (an ``OSError``) when ``folder`` is something else, e.g. a file."""
    missing: list[Path] = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by someone else
            d.mkdir(mode=DIR_MODE)
            os.chmod(d, DIR_MODE)  # whatever the umask says
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))


def open_private(path: Path) -> int:
    """Open ``path`` for writing from scratch, ``FILE_MODE``, making its folder; return the
    descriptor. A device or a pipe (``--out /dev/stdout``) is written as it is."""
    make_private_dirs(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, FILE_MODE)  # a file that was there keeps no wider permissions
    except OSError:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (``os.write`` may take part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
