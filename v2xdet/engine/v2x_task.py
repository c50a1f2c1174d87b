"""The real stages behind the engine: V2X datasets, the detector, its loss, postprocess and AP.

Detections per frame follow OpenCOOD: for none / early / intermediate fusion the one output of a
sample is decoded, thresholded, NMS-ed and range-cropped in the ego frame; for late fusion every
agent's candidates above the score threshold are moved into the ego frame (the noisy transform
the agent shared), pooled, NMS-ed together and range-cropped there.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from v2xdet.geometry.boxes import transform_boxes

from .task import FrameResult, Task

POINT_BYTES = 4 * 4   # x, y, z, intensity as float32
BOX_BYTES = 8 * 4     # 7 box values and a score as float32


class _BatchTargetsLoss:
    """Adapts ``loss(output, targets)`` to the engine's ``loss(output, batch)``."""

    def __init__(self, loss: nn.Module):
        self.loss = loss

    def __call__(self, output: dict, batch: dict):
        if batch.get("targets") is None:
            raise ValueError("the batch has no training targets (dataset built with with_targets=False)")
        return self.loss(output, batch["targets"])


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class V2XTask(Task):
    """``V2XTask(cfg)`` for a config from :func:`v2xdet.config.load_config`.

    ``keep_points`` makes the datasets return each agent's cloud in the ego frame (pictures and
    early-fusion byte counts need them).
    """

    def __init__(self, cfg: dict, keep_points: bool = False):
        super().__init__(cfg)
        self.keep_points = keep_points
        self._post = None

    # ---- building -------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from v2xdet.models import build_detector
        return build_detector(self.cfg["model"])

    def build_loss(self):
        from v2xdet.losses import build_loss
        return _BatchTargetsLoss(build_loss(self.cfg["loss"]))

    def build_dataset(self, split: str, train: bool):
        from v2xdet.data_utils.datasets import build_dataset
        return build_dataset(self.cfg, split, train, keep_points=self.keep_points)

    def collate(self, samples: list) -> dict:
        from v2xdet.data_utils.datasets import collate
        return collate(samples)

    def new_evaluator(self):
        from v2xdet.evaluation import EvalAccumulator
        return EvalAccumulator()

    @property
    def postprocessor(self):
        if self._post is None:
            from v2xdet.postprocess import PostProcessor
            self._post = PostProcessor.from_config(self.cfg)
        return self._post

    # ---- per frame ------------------------------------------------------------------------------
    def detections(self, output: dict, batch: dict) -> list[FrameResult]:
        post = self.postprocessor
        sample_ids = batch["sample_ids"]
        unit_sample = _numpy(batch["unit_sample_index"])
        if batch["strategy"] == "late":
            per_sample = self._late(output, batch, unit_sample, len(sample_ids))
        else:
            if len(unit_sample) != len(sample_ids):
                raise ValueError(f"{batch['strategy']} fusion expects one detector entry per sample, got "
                                 f"{len(unit_sample)} for {len(sample_ids)} samples")
            per_sample = post(output)
        results = []
        for s, dets in enumerate(per_sample):
            results.append(FrameResult(
                frame_id="_".join(str(v) for v in sample_ids[s]), pred_corners=dets["corners"],
                pred_scores=dets["scores"], gt_corners=_numpy(batch["gt_corners"][s]).astype(np.float32),
                pred_boxes=dets["boxes"]))
        return results

    def _late(self, output: dict, batch: dict, unit_sample: np.ndarray, n_samples: int) -> list[dict]:
        from v2xdet.postprocess import decode_predictions, select_detections
        post = self.postprocessor
        boxes, scores = decode_predictions(output, post.anchors, post.dir_offset)
        to_ego = _numpy(batch["output_to_ego"]).astype(np.float64)
        pooled_boxes = [[] for _ in range(n_samples)]
        pooled_scores = [[] for _ in range(n_samples)]
        for u in range(len(unit_sample)):
            keep = scores[u] > post.score_threshold
            b, s = _numpy(boxes[u][keep]).astype(np.float64), _numpy(scores[u][keep]).astype(np.float64)
            pooled_boxes[unit_sample[u]].append(transform_boxes(b, to_ego[u]) if len(b) else b.reshape(0, 7))
            pooled_scores[unit_sample[u]].append(s)
        return [select_detections(np.concatenate(pooled_boxes[i]), np.concatenate(pooled_scores[i]),
                                  post.score_threshold, post.nms_thresh, post.max_num, post.gt_range,
                                  post.pre_nms_max) for i in range(n_samples)]

    def comm_bytes(self, model: nn.Module, output: dict, batch: dict) -> list[dict]:
        """Bytes each non-ego agent sends, per sample: raw points (early), boxes after its own
        NMS (late), its feature map after compression (intermediate); nothing without fusion."""
        strategy = batch["strategy"]
        agent_ids = [_numpy(a).tolist() for a in batch["agent_ids"]]
        if strategy == "none":
            return [{} for _ in agent_ids]
        if strategy == "intermediate":
            h = model.grid_size[1] // model.feature_stride
            w = model.grid_size[0] // model.feature_stride
            size = int(model.bytes_per_agent(h, w))
            return [{a: size for a in ids[1:]} for ids in agent_ids]
        if strategy == "early":
            if "points" not in batch:
                raise ValueError("early-fusion byte counts need the agents' clouds: build the task with "
                                 "keep_points=True")
            return [{a: len(p) * POINT_BYTES for a, p in zip(ids[1:], clouds[1:], strict=True)}
                    for ids, clouds in zip(agent_ids, batch["points"], strict=True)]
        own = self.postprocessor(output)     # what each agent detects in its own frame
        unit_sample = _numpy(batch["unit_sample_index"])
        out = [{} for _ in agent_ids]
        position = {}
        for u, s in enumerate(unit_sample):
            k = position.get(s, 0)
            position[s] = k + 1
            if k > 0:
                out[s][agent_ids[s][k]] = len(own[u]["boxes"]) * BOX_BYTES
        return out

    def scenes(self, batch: dict, results: list[FrameResult]):
        """One :class:`~v2xdet.visualization.Scene` per sample (needs ``keep_points``)."""
        from v2xdet.visualization import Scene
        if "points" not in batch:
            raise ValueError("pictures need the agents' clouds: build the task with keep_points=True")
        if "agent_positions" not in batch:
            raise ValueError("pictures need each agent's position: collate the samples with "
                             "v2xdet.data_utils.datasets.collate (batch['agent_positions'])")
        positions = [_numpy(p) for p in batch["agent_positions"]]   # (L, 3) ego frame, every strategy
        view = self.cfg["postprocess"].get("gt_range") or self.cfg["preprocess"]["cav_lidar_range"]
        scenes = []
        for s, frame in enumerate(results):
            ids = _numpy(batch["agent_ids"][s]).tolist()
            scenario, timestamp, ego = batch["sample_ids"][s]
            title = f"{scenario}  frame {timestamp}  ego {ego}  ({batch['strategy']} fusion)"
            scenes.append(Scene(points=[_numpy(p) for p in batch["points"][s]], agent_positions=positions[s],
                                agent_ids=ids, is_rsu=[a < 0 for a in ids], gt_corners=frame.gt_corners,
                                pred_corners=frame.pred_corners, pred_scores=frame.pred_scores, title=title,
                                view_range=list(view)))
        return scenes


def inference_config(model_dir, fusion_method: str | None = None, dataset_dir=None, split: str = "validate",
                     pose_noise=None, delay_ms: float | None = None,
                     score_threshold: float | None = None) -> tuple[dict, str, str]:
    """The config of a trained model, adapted for inference; returns ``(cfg, split, tag)``.

    ``fusion_method`` (none | late | early | intermediate) must suit the model: a single-agent
    model (``point_pillar``) runs none / early / late, a fusion model only intermediate.
    ``dataset_dir`` replaces the split's folder. ``pose_noise = (std_m, std_deg)`` turns on
    localization error (``wild_setting.loc_err``, ``xyz_std``, ``ryp_std``); ``delay_ms`` delays the
    other agents' data by exactly that much (``async`` with ``async_overhead = delay_ms`` and no
    transmission or backbone time); zeros turn them off. ``score_threshold`` replaces
    ``postprocess.target_args.score_threshold`` (OpenCOOD's per-frame AP depends on it: every
    frame's low-score tail ranks before the next frame's detections). ``tag`` names these settings
    in output files.
    """
    from pathlib import Path

    from v2xdet.config import load_config
    from v2xdet.data_utils.datasets.base import SPLIT_KEYS
    from v2xdet.models import MODEL_FUSION

    from .inference import setting_tag
    from .rundir import CONFIG_FILE

    if split not in SPLIT_KEYS:
        raise ValueError(f"split must be one of {sorted(SPLIT_KEYS)}, got {split!r}")
    path = Path(model_dir) / CONFIG_FILE
    base = load_config(path)
    overrides: dict = {}
    if fusion_method is not None:
        core = base["model"]["core_method"]
        allowed = ("none", "early", "late") if MODEL_FUSION.get(core) is None else ("intermediate",)
        if fusion_method not in allowed:
            raise ValueError(f"--fusion_method {fusion_method} does not suit model {core!r} of {path}: "
                             f"use one of {', '.join(allowed)}")
        overrides["fusion"] = {"core_method": fusion_method, "strategy": None}   # re-derive the strategy
    if dataset_dir is not None:
        if not Path(dataset_dir).is_dir():
            raise FileNotFoundError(f"--dataset_dir {dataset_dir} is not a directory")
        overrides[SPLIT_KEYS[split]] = str(dataset_dir)
    wild = {}
    if pose_noise is not None:
        std_m, std_deg = (float(v) for v in pose_noise)
        if std_m < 0 or std_deg < 0:
            raise ValueError(f"--pose_noise stds must be >= 0, got {std_m} m, {std_deg} deg")
        wild.update(loc_err=bool(std_m or std_deg), xyz_std=std_m, ryp_std=std_deg)
    if delay_ms is not None:
        if delay_ms < 0:
            raise ValueError(f"--delay_ms must be >= 0, got {delay_ms}")
        wild.update({"async": delay_ms > 0, "async_mode": "sim", "async_overhead": float(delay_ms),
                     "data_size": 0.0, "backbone_delay": 0.0})
    if wild:
        overrides["wild_setting"] = wild
    if score_threshold is not None:
        if not 0.0 <= score_threshold < 1.0:
            raise ValueError(f"--score_threshold must be in [0, 1), got {score_threshold}")
        overrides["postprocess"] = {"target_args": {"score_threshold": float(score_threshold)}}
    cfg = load_config(path, overrides) if overrides else base
    changed_fusion = fusion_method if fusion_method not in (None, base["fusion"]["strategy"]) else None
    return cfg, split, setting_tag(changed_fusion, pose_noise, delay_ms, dataset_dir, score_threshold)
