"""glibc allocator tuning for the entry points.

By default glibc serves every block above 128 KiB-32 MiB (its dynamic mmap threshold) with a fresh
``mmap`` and gives it back with ``munmap`` on free, and trims the heap top once 128 KiB are free.
A detector allocates and frees the same large feature maps at every forward pass, so each pass
page-faults and zero-fills them again (measured as 45% of CPU time on the reference V2X-ViT,
DESIGN.md section 7). ``tune_allocator`` keeps large blocks on the heap and stops trimming it,
so freed feature maps are reused. The ``MALLOC_*_`` environment variables do the same but must be
set before the process starts; ``mallopt`` through ctypes works from inside Python, at start-up.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

_INT_MAX = 2**31 - 1


def tune_allocator(trim_threshold: int = 1 << 30, disable_mmap: bool = True,
                   mmap_threshold: int | None = None) -> dict:
    """Tune glibc's malloc for repeated large tensor allocations; return what was set.

    ``trim_threshold`` bytes may stay free at the heap top before glibc returns them to the
    kernel; ``disable_mmap`` (``M_MMAP_MAX = 0``) serves every large block from the heap so a
    freed block is reused instead of unmapped; ``mmap_threshold`` (when mmap stays enabled) raises
    the size above which blocks are mmapped (glibc caps it at 32 MiB on 64-bit). On a non-glibc
    platform nothing is changed and the returned dict says why (``{"skipped": reason}``).
    A rejected setting raises ``OSError`` naming it.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return {"skipped": f"not glibc ({platform.system()} {platform.libc_ver()[0] or 'unknown libc'})"}
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = {"M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, trim_threshold)}
    if disable_mmap:
        settings["M_MMAP_MAX"] = (M_MMAP_MAX, 0)
    elif mmap_threshold is not None:
        settings["M_MMAP_THRESHOLD"] = (M_MMAP_THRESHOLD, mmap_threshold)
    applied = {}
    for name, (param, value) in settings.items():
        if not 0 <= value <= _INT_MAX:
            raise ValueError(f"{name} must be in [0, {_INT_MAX}] bytes, got {value}")
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            raise OSError(f"glibc mallopt rejected {name}={value}")
        applied[name] = value
    return applied


def configure_allocator(tune: bool = True) -> str:
    """The entry points' start-up step: :func:`tune_allocator` unless ``tune`` is false (their
    ``--no_tune_allocator``); returns one line saying which allocator setting is in use."""
    if not tune:
        return "glibc defaults (--no_tune_allocator)"
    applied = tune_allocator()
    if "skipped" in applied:
        return f"glibc defaults (tune_allocator skipped: {applied['skipped']})"
    return ", ".join(f"{k}={v}" for k, v in applied.items())
