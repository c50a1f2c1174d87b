"""World augmentation (flip, rotation, scaling) applied to every agent's points and the boxes.

The config is OpenCOOD's ``data_augment`` list::

    - {NAME: random_world_flip, ALONG_AXIS_LIST: ['x']}      # 'x': y -> -y;  'y': x -> -x
    - {NAME: random_world_rotation, WORLD_ROT_ANGLE: [-0.785, 0.785]}   # radians about z
    - {NAME: random_world_scaling, WORLD_SCALE_RANGE: [0.95, 1.05]}

The steps compose into one linear map ``A`` (a 4x4 matrix) drawn once per sample from a
``numpy.random.Generator``; the same ``A`` moves every agent's points and the boxes, so the
cooperative geometry stays consistent. A transform ``T`` between two frames that were both
augmented becomes ``A @ T @ inv(A)`` (see :func:`conjugate_transform`). Every step draws its
random numbers whether or not it fires, so a seed gives the same transform for any input.
"""
from __future__ import annotations

import numpy as np

from v2xdet.data_utils.preprocess.crop import check_points
from v2xdet.geometry.boxes import check_boxes, limit_period

_FLIPS = {"x": np.diag([1.0, -1.0, 1.0]), "y": np.diag([-1.0, 1.0, 1.0])}


def _pair(step: dict, key: str, index: int) -> tuple[float, float]:
    value = step.get(key)
    if (not isinstance(value, list | tuple) or len(value) != 2
            or not all(isinstance(v, int | float) for v in value) or value[0] > value[1]):
        raise ValueError(f"data_augment[{index}].{key} must be [low, high] with low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def augmentation_matrix(steps: list[dict], rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Draw the sample's augmentation: ``(A (4, 4), scale)`` with ``A[:3, :3] = scale * R @ F``."""
    linear = np.eye(3)
    scale = 1.0
    for index, step in enumerate(steps):
        name = step.get("NAME") if isinstance(step, dict) else None
        if name == "random_world_flip":
            axes = step.get("ALONG_AXIS_LIST")
            if not isinstance(axes, list | tuple) or any(a not in _FLIPS for a in axes):
                raise ValueError(f"data_augment[{index}].ALONG_AXIS_LIST must list axes from "
                                 f"{sorted(_FLIPS)}, got {axes!r}")
            for axis in axes:
                if rng.random() < 0.5:
                    linear = _FLIPS[axis] @ linear
        elif name == "random_world_rotation":
            low, high = _pair(step, "WORLD_ROT_ANGLE", index)
            angle = rng.uniform(low, high)
            c, s = np.cos(angle), np.sin(angle)
            linear = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ linear
        elif name == "random_world_scaling":
            low, high = _pair(step, "WORLD_SCALE_RANGE", index)
            if low <= 0:
                raise ValueError(f"data_augment[{index}].WORLD_SCALE_RANGE must be positive, "
                                 f"got {[low, high]}")
            factor = rng.uniform(low, high)
            linear = factor * linear
            scale *= factor
        else:
            raise ValueError(f"data_augment[{index}].NAME must be one of random_world_flip, "
                             f"random_world_rotation, random_world_scaling; got {name!r}")
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    return matrix, scale


def apply_augmentation(points_list, boxes, matrix: np.ndarray, scale: float):
    """Move each (N, >=3) point array and the (M, 7) boxes by the map from :func:`augmentation_matrix`."""
    boxes = check_boxes(boxes)
    linear = matrix[:3, :3]
    moved_points = []
    for i, pts in enumerate(points_list):
        pts = check_points(pts, f"points_list[{i}]")
        out = pts.copy()
        out[:, :3] = (pts[:, :3].astype(np.float64) @ linear.T).astype(pts.dtype)
        moved_points.append(out)
    out_boxes = boxes.astype(np.float64, copy=True)
    out_boxes[:, :3] = boxes[:, :3] @ linear.T
    out_boxes[:, 3:6] *= scale
    heading = np.stack([np.cos(boxes[:, 6]), np.sin(boxes[:, 6])], axis=1) @ linear[:2, :2].T
    out_boxes[:, 6] = limit_period(np.arctan2(heading[:, 1], heading[:, 0]))
    return moved_points, out_boxes.astype(boxes.dtype, copy=False)


def augment(points_list, boxes, steps: list[dict], rng: np.random.Generator):
    """Augment one sample: returns ``(points_list, boxes, A)`` with the 4x4 map ``A`` used."""
    matrix, scale = augmentation_matrix(steps, rng)
    points_out, boxes_out = apply_augmentation(points_list, boxes, matrix, scale)
    return points_out, boxes_out, matrix


def conjugate_transform(transform: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``A @ T @ inv(A)``: the frame-to-frame transform ``T`` expressed between augmented frames."""
    return matrix @ np.asarray(transform, dtype=np.float64) @ np.linalg.inv(matrix)
