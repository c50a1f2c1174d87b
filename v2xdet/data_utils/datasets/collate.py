"""Batch the samples of any fusion strategy into the detector's input dict (torch tensors).

A batch holds ``B`` units (detector entries: one per sample, or one per agent in late fusion),
``M = sum(record_len)`` agent maps laid out unit-major (a unit's ego map first), and ``L`` =
``max(record_len)``:

==========================  ====================  ================================================
key                         shape / type          meaning
==========================  ====================  ================================================
``voxel_features``          (P, T, 4) float32     points of each voxel, zero-padded
``voxel_coords``            (P, 4) int32          (map index in ``0..M-1``, z, y, x)
``voxel_num_points``        (P,) int32            real rows of ``voxel_features``
``record_len``              (B,) int64            agent maps per unit
``agent_to_ego``            (B, L, 4, 4) float32  map frame -> ego reference frame (noisy); padded
                                                  with the identity
``spatial_correction``      (B, L, 4, 4) float32  ego reference frame -> current ego frame
``prior_encoding``          (B, L, 3) float32     speed / 30 km/h, delay (100 ms steps), RSU flag;
                                                  padded with zeros
``pairwise``                (B, L, L, 4, 4)       map ``i`` frame -> map ``j`` frame (noisy)
``agent_mask``              (B, L) bool           which of the ``L`` slots hold an agent
``output_to_ego``           (B, 4, 4) float32     unit output frame -> its sample's ego frame
                                                  (late fusion's merge transform; else identity)
``unit_sample_index``       (B,) int64            the sample each unit belongs to
``targets``                 dict or None          ``labels`` (B, H, W, A) int8, ``reg_targets``
                                                  (B, H, W, A, 7) float32, ``dir_targets``
                                                  (B, H, W, A) int64
``label_boxes``             list of B (K, 7)      the boxes the targets come from
``gt_boxes``, ``gt_corners``  list of S tensors   evaluation GT per sample, ego frame: (K, 7) and
                                                  (K, 8, 3)
``gt_ids``, ``agent_ids``, ``delay``  lists of S  vehicle ids of the GT; agents (ego first); delays
``agent_positions``         list of S (L_s, 3)    each agent's sensor in the current ego frame (its
                                                  ``fusion_to_ego`` translation; ego at the origin)
``sample_ids``              list of S tuples      ``(scenario, timestamp, ego_id)`` for saving
``strategy``                str                   the fusion strategy of the samples
``points``                  list of S lists       (only with ``keep_points``) clouds in ego frame
==========================  ====================  ================================================
"""
from __future__ import annotations

import numpy as np
import torch

_TARGET_KEYS = ("labels", "reg_targets", "dir_targets")


def _pad(arrays: list[np.ndarray], length: int, fill: np.ndarray, axes: int) -> np.ndarray:
    """Stack (n_i, ...) arrays padded along their first ``axes`` axes to ``length`` with ``fill``."""
    out = []
    for arr in arrays:
        shape = (length,) * axes + arr.shape[axes:]
        padded = np.broadcast_to(fill, shape).astype(np.float32)
        padded[tuple(slice(0, n) for n in arr.shape[:axes])] = arr
        out.append(padded)
    return np.stack(out)


def collate(samples: list[dict]) -> dict:
    """The batch dict of ``samples`` (items of any ``build_dataset`` dataset of one strategy)."""
    if not samples:
        raise ValueError("collate needs at least one sample")
    strategies = {s["strategy"] for s in samples}
    if len(strategies) != 1:
        raise ValueError(f"a batch must hold one fusion strategy, got {sorted(strategies)}")
    units = [u for s in samples for u in s["units"]]
    unit_sample = [i for i, s in enumerate(samples) for _ in s["units"]]
    record_len = np.array([len(u["maps"]) for u in units], dtype=np.int64)
    length = int(record_len.max())

    maps = [m for u in units for m in u["maps"]]
    coords = [np.column_stack([np.full(len(m["voxel_coords"]), i, dtype=np.int32), m["voxel_coords"]])
              for i, m in enumerate(maps)]
    eye = np.eye(4)

    def padded(key: str, fill: np.ndarray, axes: int = 1) -> torch.Tensor:
        return torch.from_numpy(_pad([u[key] for u in units], length, fill, axes))

    batch = {
        "voxel_features": torch.from_numpy(np.concatenate([m["voxel_features"] for m in maps])),
        "voxel_coords": torch.from_numpy(np.concatenate(coords).astype(np.int32)),
        "voxel_num_points": torch.from_numpy(np.concatenate([m["voxel_num_points"] for m in maps])),
        "record_len": torch.from_numpy(record_len),
        "agent_to_ego": padded("agent_to_ego", eye),
        "spatial_correction": padded("spatial_correction", eye),
        "prior_encoding": padded("prior_encoding", np.zeros(3)),
        "pairwise": padded("pairwise", eye, axes=2),
        "agent_mask": torch.arange(length)[None, :] < torch.from_numpy(record_len)[:, None],
        "output_to_ego": torch.from_numpy(np.stack([u["output_to_ego"] for u in units]).astype(np.float32)),
        "unit_sample_index": torch.tensor(unit_sample, dtype=torch.int64),
        "label_boxes": [torch.from_numpy(u["label_boxes"]) for u in units],
        "gt_boxes": [torch.from_numpy(s["gt_boxes"]) for s in samples],
        "gt_corners": [torch.from_numpy(s["gt_corners"]) for s in samples],
        "gt_ids": [torch.from_numpy(np.asarray(s["gt_ids"], dtype=np.int64)) for s in samples],
        "agent_ids": [torch.from_numpy(np.asarray(s["agent_ids"], dtype=np.int64)) for s in samples],
        "delay": [torch.from_numpy(np.asarray(s["delay"], dtype=np.int64)) for s in samples],
        "agent_positions": [torch.from_numpy(np.asarray(s["agent_positions"], dtype=np.float32))
                            for s in samples],
        "sample_ids": [tuple(s["sample_id"]) for s in samples],
        "strategy": strategies.pop(),
    }
    has_targets = {u["targets"] is not None for u in units}
    if has_targets == {True}:
        batch["targets"] = {k: torch.from_numpy(np.stack([u["targets"][k] for u in units]))
                            for k in _TARGET_KEYS}
    elif has_targets == {False}:
        batch["targets"] = None
    else:
        raise ValueError("some samples of the batch have training targets and some do not")
    if all("points" in s for s in samples):
        batch["points"] = [[torch.from_numpy(p) for p in s["points"]] for s in samples]
    return batch
