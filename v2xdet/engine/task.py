"""The interface between the engine and the detection stages.

The engine (training loop, inference runner) never imports a model, dataset or metric directly:
it asks a :class:`Task` built from one config. :mod:`v2xdet.engine.v2x_task` wires the real
stages; tests use tiny tasks made in code.
"""
from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

# Per-frame results the engine hands to the evaluator and the writers.


@dataclass
class FrameResult:
    """One frame's detections and ground truth in the ego frame."""
    frame_id: str
    pred_corners: np.ndarray          # (K, 8, 3)
    pred_scores: np.ndarray           # (K,)
    gt_corners: np.ndarray            # (M, 8, 3)
    pred_boxes: np.ndarray | None = None   # (K, 7) when the postprocess provides them
    extras: dict = field(default_factory=dict)


class Evaluator(Protocol):
    def add_frame(self, pred_corners, pred_scores, gt_corners) -> None: ...

    def summary(self) -> dict: ...


LossFn = Callable[[dict, dict], "tuple[torch.Tensor, dict]"]

def ap_values(summary: dict, global_sort: bool = False) -> dict:
    """``{'ap_30': .., 'ap_50': .., 'ap_70': ..}`` from an ``EvalAccumulator.summary()``.

    ``global_sort`` picks the global re-sort instead of OpenCOOD's per-frame order.
    """
    order = "global_order" if global_sort else "per_frame_order"
    if order not in summary:
        raise KeyError(f"evaluation summary has no {order!r} (keys: {sorted(summary)})")
    return {f"ap_{round(float(thr) * 100)}": float(res["ap"]) for thr, res in summary[order].items()}


def to_device(obj, device: torch.device):
    """Move every tensor inside nested dicts/lists/tuples to ``device``; other values unchanged."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and not hasattr(obj, "_fields"):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class Task(abc.ABC):
    """Builds every stage the engine runs from one resolved config (``self.cfg``)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The detector; ``model(batch)`` returns a dict of predictions."""

    @abc.abstractmethod
    def build_loss(self) -> LossFn:
        """``loss(output, batch) -> (total, {'cls', 'reg', 'dir', ...})``."""

    @abc.abstractmethod
    def build_dataset(self, split: str, train: bool) -> Dataset:
        """The dataset of ``split`` ('train', 'validate', 'test'); ``train`` turns augmentation on."""

    @abc.abstractmethod
    def collate(self, samples: list) -> dict:
        """Batch a list of samples (picklable: it runs in loader workers)."""

    @abc.abstractmethod
    def detections(self, output: dict, batch: dict) -> list[FrameResult]:
        """Post-process a batch's predictions into one :class:`FrameResult` per frame."""

    @abc.abstractmethod
    def new_evaluator(self) -> Evaluator:
        """A fresh :class:`v2xdet.evaluation.EvalAccumulator` (or one with the same summary layout)."""

    def to_device(self, batch: dict, device: torch.device) -> dict:
        return to_device(batch, device)

    def comm_bytes(self, model: nn.Module, output: dict, batch: dict) -> list[dict] | None:
        """Bytes each non-ego agent sends, per frame of the batch (``[{agent: bytes}]``); None if unknown."""
        return None

    def scenes(self, batch: dict, results: list[FrameResult]) -> list:
        """One :class:`v2xdet.visualization.Scene` per frame of the batch, for pictures."""
        raise NotImplementedError(f"{type(self).__name__} cannot draw its frames")
