"""Atomic file output: write a temporary file in the target folder, then rename it into place.

A reader (or a crash) sees the old file or the new one, never a torn one. The temporary file is
made by ``mkstemp`` (mode 0600); before the rename it gets the mode a plainly created file would
have (0666 minus the umask), so outputs stay readable by whoever could read them before.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path, durable: bool = False):
    """Yield a temporary path (same folder and suffix as ``path``) to write; on success rename it
    to ``path``; on error remove it. ``durable`` fsyncs the file and the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:
        _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path, durable: bool = False):
    """Like :func:`atomic_path` but yield the temporary file opened for binary writing."""
    with atomic_path(path, durable) as tmp, open(tmp, "wb") as f:
        yield f
        f.flush()
