"""Atomic file output: write a sibling temp file, then ``os.replace`` it over the target.

A reader never sees a half-written frame, and a crash leaves either the old file or the new one
(plus at worst a hidden ``.<name>.<pid>.<rand>.tmp`` file). No fsync: atomicity against other
readers is the goal, not durability across power loss (the generator writes thousands of files).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (the parent folder must exist); return the path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: cannot write, folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 lets the process umask decide the final permissions, as open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
