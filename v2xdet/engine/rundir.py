"""Model directories: a new one per run (named from the config and the time), or an existing one."""
from __future__ import annotations

import re
import time
from pathlib import Path

from .checkpoint import find_resume_checkpoint
from .runlog import LOG_FILE

CONFIG_FILE = "config.yaml"


def run_name(cfg: dict, now: float | None = None) -> str:
    """``<name>_<YYYY_mm_dd_HH_MM_SS>`` (OpenCOOD's pattern), the name made safe for a folder."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(cfg.get("name") or "run")).strip("_") or "run"
    return f"{name}_{time.strftime('%Y_%m_%d_%H_%M_%S', time.localtime(now))}"


def new_run_dir(cfg: dict, root="runs", model_dir=None, now: float | None = None) -> Path:
    """Create the folder of a new run: ``model_dir`` if given (it must hold no run yet), else a
    fresh ``root/<name>_<time>`` (``_2``, ``_3``... appended if that exists)."""
    if model_dir is not None:
        path = Path(model_dir)
        if (path / CONFIG_FILE).exists() or find_resume_checkpoint(path) is not None:
            raise FileExistsError(f"{path} already holds a run ({CONFIG_FILE} or a checkpoint); to resume "
                                  "it, pass --model_dir alone (without --hypes_yaml)")
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(root) / run_name(cfg, now)
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}_{n}")


def existing_run_dir(model_dir) -> Path:
    """A run folder to resume: it must exist and hold its ``config.yaml``."""
    path = Path(model_dir)
    if not (path / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_FILE}: not a model directory written by "
                                "tools/train.py (start a run with --hypes_yaml)")
    return path


def prepare_run(hypes_yaml=None, model_dir=None, runs_root="runs", overrides=None,
                ctx=None) -> tuple[dict, Path]:
    """The resolved config and the model folder of a run.

    With ``hypes_yaml``: load and validate it (with ``overrides``), create the folder (``model_dir``
    or a new ``runs_root/<name>_<time>``) and save the resolved ``config.yaml`` there. With
    ``model_dir`` alone: the folder's ``config.yaml``, to resume. Under torchrun only rank 0 creates
    the folder; every rank gets its path (and any error) from it.
    """
    from v2xdet.config import load_config, save_config

    from .distributed import DistContext, broadcast_from_main

    ctx = ctx or DistContext()
    if hypes_yaml is None:
        if model_dir is None:
            raise ValueError("give --hypes_yaml (start a run) or --model_dir (resume one)")
        if overrides:
            raise ValueError("config overrides apply to new runs only; a resumed run keeps its config.yaml")
        path = existing_run_dir(model_dir)
        return load_config(path / CONFIG_FILE), path
    cfg = load_config(hypes_yaml, overrides)
    result = None
    if ctx.is_main:
        try:
            path = new_run_dir(cfg, runs_root, model_dir)
            save_config(cfg, path / CONFIG_FILE)
            result = ("ok", str(path))
        except (OSError, ValueError) as exc:
            result = ("error", f"{type(exc).__name__}: {exc}")
    status, value = broadcast_from_main(ctx, result)
    if status == "error":
        raise ValueError(f"could not create the model directory: {value}")
    return cfg, Path(value)


def discard_unstarted_run(model_dir) -> bool:
    """Remove a new run's folder that failed before training (no checkpoint in it); True if removed.

    Only the files a starting run writes (config.yaml, train.log, tensorboard events) may be there;
    anything else keeps the folder.
    """
    path = Path(model_dir)
    if not path.is_dir() or find_resume_checkpoint(path) is not None:
        return False
    files = list(path.iterdir())
    start_files = (CONFIG_FILE, LOG_FILE)
    if not all(f.is_file() and (f.name in start_files or f.name.startswith("events.out.tfevents."))
               for f in files):
        return False
    for f in files:
        f.unlink()
    path.rmdir()
    return True
