"""Checkpoints: atomic writes, safe loads (``weights_only``), strict state-dict matching."""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from .files import atomic_open

LATEST = "latest.pth"
BEST = "best.pth"
_EPOCH_RE = re.compile(r"^net_epoch(\d+)\.pth$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not match the model; the message names the file."""


def epoch_checkpoint_name(epoch: int) -> str:
    """OpenCOOD's file name for the checkpoint written after ``epoch`` epochs."""
    return f"net_epoch{epoch}.pth"


def atomic_save(obj, path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync it, then rename over ``path``.

    A crash at any moment leaves either the old file or the new one, never a torn file.
    """
    with atomic_open(path, durable=True) as f:
        torch.save(obj, f)
    return Path(path)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def model_state(checkpoint: dict, source) -> dict:
    """The model state dict inside a training checkpoint, or the checkpoint itself if it is one."""
    if "model" in checkpoint and isinstance(checkpoint["model"], dict):
        return checkpoint["model"]
    if all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        return checkpoint
    raise CheckpointError(f"checkpoint {source} has no 'model' state dict (keys: {sorted(checkpoint)[:10]})")


def load_state_strict(module: nn.Module, state: dict, source) -> None:
    """Load ``state`` into ``module`` requiring the same keys and shapes; else name the differences."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state)
                    if isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"checkpoint {source} does not match the model ({type(module).__name__})"]
        if missing:
            parts.append(f"missing keys: {missing}")
        if unexpected:
            parts.append(f"unexpected keys: {unexpected}")
        if shapes:
            parts.append(f"shape mismatches: {shapes}")
        raise CheckpointError("; ".join(parts))
    module.load_state_dict(state, strict=True)


def find_resume_checkpoint(model_dir) -> Path | None:
    """``latest.pth`` in ``model_dir`` if present, else the highest ``net_epoch<N>.pth``, else None."""
    model_dir = Path(model_dir)
    if (model_dir / LATEST).is_file():
        return model_dir / LATEST
    epochs = [(int(m.group(1)), p) for p in model_dir.glob("net_epoch*.pth")
              if (m := _EPOCH_RE.match(p.name))]
    return max(epochs)[1] if epochs else None


def load_pretrained(module: nn.Module, path) -> dict[str, list[str]]:
    """Warm-start ``module`` from the model weights in checkpoint ``path`` (OpenPCDet's
    ``--pretrained_model``): every tensor whose name and shape match is copied, the rest of the
    model keeps its initialization. Returns ``{"loaded", "skipped", "unused"}`` key lists (skipped:
    in the model but absent or of another shape in the file; unused: only in the file). A file
    that shares no tensor with the model is refused, naming it."""
    state = model_state(load_checkpoint(path), path)
    own = module.state_dict()
    loaded = sorted(k for k, v in state.items()
                    if k in own and isinstance(v, torch.Tensor) and v.shape == own[k].shape)
    if not loaded:
        raise CheckpointError(f"checkpoint {path} shares no tensor (same name and shape) with the model "
                              f"({type(module).__name__}); is it a checkpoint of this detector?")
    module.load_state_dict({k: state[k] for k in loaded}, strict=False)
    return {"loaded": loaded, "skipped": sorted(set(own) - set(loaded)),
            "unused": sorted(set(state) - set(own))}
