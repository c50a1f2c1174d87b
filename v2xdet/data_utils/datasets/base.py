"""The dataset every fusion strategy shares: index a split, plan a sample, load, augment, encode.

``BaseDataset.__getitem__(i)`` does, for the ``i``-th ``(scenario, timestamp)`` of the split:

1. plan the sample (:func:`v2xdet.data_utils.scenario.plan_scenario`): ego, agents in range,
   delay, pose noise, transforms, labels;
2. load each chosen agent's point cloud from its data frame (the delayed one) and cut the
   returns off a vehicle agent's own body (roadside units have none);
3. in training, draw one augmentation ``A`` (flip, rotation, scaling) and apply it to every
   agent's cloud *in the agent's own frame*, to the ego-frame labels and to each agent's own
   labels; every frame-to-frame transform ``T`` becomes ``A T A^-1``. Moving a point ``p`` of
   agent ``i`` into the ego frame then gives ``A T p``: exactly the augmented ego-frame point, so
   the cooperative geometry holds for every strategy with no special case (intermediate fusion
   keeps each agent's map in its own frame);
4. hand the prepared sample to the strategy's view (:mod:`.views`), which decides which clouds
   become detector input maps (each range-cropped, shuffled in training, voxelized) and which
   labels become training targets (:func:`~v2xdet.data_utils.preprocess.assign_targets`).

Randomness: one generator per sample, ``default_rng([train_params.seed, epoch, index])``, drives
the ego choice, the augmentation and the point shuffle, so a sample is the same in any worker
and a run repeats exactly; call :meth:`set_epoch` each epoch to draw new ones. Delay and pose
noise have their own keyed generators (see :mod:`..noise`). Testing draws nothing.

A frame that cannot be read raises :class:`~v2xdet.data_utils.formats.FormatError` naming the
file; the training engine decides whether to skip the sample or stop.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from v2xdet.data_utils.formats import frame_paths, index_dataset, read_frame_yaml, read_pcd, vehicle_boxes
from v2xdet.data_utils.preprocess import (
    AnchorGenerator,
    Voxelizer,
    apply_augmentation,
    assign_targets,
    augmentation_matrix,
    conjugate_transform,
    crop_range,
    remove_ego_points,
    split_by_points,
)
from v2xdet.data_utils.scenario import (
    DEFAULT_COMM_RANGE,
    Scenario,
    ScenarioSettings,
    WildSetting,
    boxes_in_range,
    plan_scenario,
)
from v2xdet.geometry.boxes import boxes_to_corners
from v2xdet.geometry.transforms import transform_points

from .collate import collate

SPLIT_KEYS = {"train": "root_dir", "validate": "validate_dir", "test": "test_dir"}
EGO_CHOICES = ("first", "random")


def split_dir(cfg: dict, split: str) -> Path:
    """The folder of ``split`` (``train`` -> ``root_dir``, ``validate`` -> ``validate_dir``,
    ``test`` -> ``test_dir``)."""
    if split not in SPLIT_KEYS:
        raise ValueError(f"split must be one of {sorted(SPLIT_KEYS)}, got {split!r}")
    key = SPLIT_KEYS[split]
    if not cfg.get(key):
        raise ValueError(f"config key {key!r} (the {split} split folder) is not set")
    return Path(cfg[key])


@dataclass
class Prepared:
    """A planned, loaded and (in training) augmented sample, before a view encodes it.

    Arrays are indexed by agent, ego first. ``points[i]`` is in agent ``i``'s data frame; the
    transforms are :class:`Scenario`'s, conjugated by the augmentation; ``gt_boxes`` (current ego
    frame) and ``own_boxes[i]`` (agent ``i``'s data frame) are augmented and range-cropped.
    """

    plan: Scenario
    points: list[np.ndarray]
    agent_to_ego: np.ndarray
    spatial_correction: np.ndarray
    fusion_to_ego: np.ndarray
    pairwise: np.ndarray
    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    own_ids: list[np.ndarray]
    own_boxes: list[np.ndarray]
    augmentation: np.ndarray
    rng: np.random.Generator | None


class BaseDataset(Dataset):
    """Samples of one split for one fusion strategy (the subclass's view); see the module doc.

    ``cfg`` is a loaded config (``v2xdet.config.load_config``); ``split`` names the folder key;
    ``train`` turns on the random ego (``fusion.args.ego_choice: random``), augmentation and
    shuffling. ``with_targets`` computes the anchor targets (default: always, validation loss
    needs them); ``keep_points`` adds each sample's clouds in the ego frame for visualization.
    """

    strategy = "base"

    def __init__(self, cfg: dict, split: str, train: bool, with_targets: bool = True,
                 keep_points: bool = False):
        self.cfg = cfg
        self.split = split
        self.train = bool(train)
        self.with_targets = bool(with_targets)
        self.keep_points = bool(keep_points)
        self.root = split_dir(cfg, split)
        self.index = index_dataset(self.root)
        self.samples: list[tuple[str, str]] = list(self.index.frames())

        fusion_args = cfg["fusion"].get("args") or {}
        self.proj_first = bool(fusion_args.get("proj_first", False))
        ego_choice = fusion_args.get("ego_choice", "first")
        if ego_choice not in EGO_CHOICES:
            raise ValueError(f"fusion.args.ego_choice must be one of {EGO_CHOICES}, got {ego_choice!r}")
        self.random_ego = self.train and ego_choice == "random"
        train_params = cfg.get("train_params") or {}
        self.seed = int(train_params.get("seed", 0))
        self.epoch = 0

        pre, post = cfg["preprocess"], cfg["postprocess"]
        self.lidar_range = tuple(float(v) for v in pre["cav_lidar_range"])
        self.gt_range = tuple(float(v) for v in post.get("gt_range") or self.lidar_range)
        self.settings = ScenarioSettings(
            lidar_range=self.gt_range,
            comm_range=float(cfg.get("comm_range", DEFAULT_COMM_RANGE)),
            max_cav=int(train_params.get("max_cav", 5)),
            cur_ego_pose_flag=bool(fusion_args.get("cur_ego_pose_flag", True)),
            wild=WildSetting.from_config(cfg.get("wild_setting")),
        )
        self.augment_steps = list(cfg.get("data_augment") or []) if self.train else []
        self.voxelizer = Voxelizer.from_config(cfg, self.train)
        self.anchors = AnchorGenerator.from_config(cfg).anchors()
        targets = post["target_args"]
        self.pos_threshold = float(targets["pos_threshold"])
        self.neg_threshold = float(targets["neg_threshold"])
        self.min_points = int(targets.get("min_points", 0))
        dir_args = (cfg.get("model", {}).get("args") or {}).get("dir_args") or {}
        self.dir_offset = float(dir_args.get("dir_offset", np.pi / 4))
        self.num_dir_bins = int(dir_args.get("num_bins", 2))

    # ---- indexing -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Choose the random draws of ``epoch`` (call before each training epoch)."""
        self.epoch = int(epoch)

    def describe(self, idx: int) -> str:
        """A human name of sample ``idx`` for logs: its scenario folder and timestamp."""
        scenario, timestamp = self.samples[idx]
        return f"{self.root / scenario} frame {timestamp}"

    def sample_rng(self, idx: int) -> np.random.Generator | None:
        """The generator of sample ``idx`` in this epoch (``None`` in testing)."""
        return np.random.default_rng([self.seed, self.epoch, int(idx)]) if self.train else None

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self.samples):
            raise IndexError(f"sample {idx} out of range: the {self.split} split has {len(self)} samples")
        prepared = self.prepare(idx)
        sample = self.view(prepared)
        plan = prepared.plan
        sample.update({
            "strategy": self.strategy,
            "sample_id": (plan.scenario, plan.timestamp, int(plan.ego_id)),
            "agent_ids": plan.agent_ids.copy(),
            "delay": plan.delay.copy(),
            "gt_ids": prepared.gt_ids,
            "gt_boxes": prepared.gt_boxes.astype(np.float32),
            "gt_corners": boxes_to_corners(prepared.gt_boxes).astype(np.float32),
            # each agent's sensor in the current ego frame, where its data is put (for pictures)
            "agent_positions": prepared.fusion_to_ego[:, :3, 3].astype(np.float32),
        })
        if self.keep_points:
            sample["points"] = [transform_points(p, t)
                                for p, t in zip(prepared.points, prepared.fusion_to_ego, strict=True)]
        return sample

    # ---- the shared steps -------------------------------------------------------------------------

    def _meta_reader(self, scenario: str):
        cache: dict[tuple[int, str], dict] = {}

        def meta(agent_id: int, timestamp: str) -> dict:
            key = (agent_id, timestamp)
            if key not in cache:
                _, yaml_path = frame_paths(self.root, scenario, agent_id, timestamp)
                cache[key] = read_frame_yaml(yaml_path, agent_id=agent_id)
            return cache[key]
        return meta

    def plan(self, idx: int, rng: np.random.Generator | None) -> Scenario:
        scenario, timestamp = self.samples[idx]
        return plan_scenario(scenario, timestamp, self.index.agents_at(scenario, timestamp),
                             lambda a: self.index.timestamps(scenario, a), self._meta_reader(scenario),
                             vehicle_boxes, self.settings, rng if self.random_ego else None)

    def load_points(self, plan: Scenario) -> list[np.ndarray]:
        """Each chosen agent's cloud from its data frame; a vehicle's own body returns removed."""
        clouds = []
        for agent, stamp, rsu in zip(plan.agent_ids, plan.data_timestamps, plan.is_rsu, strict=True):
            pcd_path, _ = frame_paths(self.root, plan.scenario, int(agent), stamp)
            points = read_pcd(pcd_path)
            clouds.append(points if rsu else remove_ego_points(points))
        return clouds

    def prepare(self, idx: int) -> Prepared:
        rng = self.sample_rng(idx)
        plan = self.plan(idx, rng)
        points = self.load_points(plan)
        transforms = [plan.agent_to_ego, plan.spatial_correction, plan.fusion_to_ego, plan.pairwise]
        gt_boxes, own_boxes = plan.gt_boxes, plan.own_boxes
        matrix = np.eye(4)
        if self.augment_steps:
            matrix, scale = augmentation_matrix(self.augment_steps, rng)
            sizes = np.cumsum([len(b) for b in own_boxes])[:-1]
            labels = np.concatenate([gt_boxes, *own_boxes])
            points, moved = apply_augmentation(points, labels, matrix, scale)
            gt_boxes, own_boxes = moved[:len(gt_boxes)], np.split(moved[len(gt_boxes):], sizes)
            transforms = [conjugate_transform(t, matrix) for t in transforms]
        gt_keep = boxes_in_range(gt_boxes, self.gt_range)
        own_keep = [boxes_in_range(b, self.lidar_range) for b in own_boxes]
        return Prepared(
            plan=plan, points=points, agent_to_ego=transforms[0], spatial_correction=transforms[1],
            fusion_to_ego=transforms[2], pairwise=transforms[3],
            gt_ids=plan.gt_ids[gt_keep], gt_boxes=gt_boxes[gt_keep],
            own_ids=[ids[k] for ids, k in zip(plan.own_ids, own_keep, strict=True)],
            own_boxes=[b[k] for b, k in zip(own_boxes, own_keep, strict=True)],
            augmentation=matrix, rng=rng)

    def encode_map(self, points: np.ndarray, rng: np.random.Generator | None) -> dict[str, np.ndarray]:
        """One detector input map: range crop, shuffle (training: spconv keeps the first
        ``max_voxels`` voxels in point order), voxelize."""
        points = crop_range(points, self.lidar_range)
        if rng is not None:
            points = points[rng.permutation(len(points))]
        return self.voxelizer(np.ascontiguousarray(points, dtype=np.float32))

    def targets(self, boxes: np.ndarray, clouds) -> dict[str, np.ndarray] | None:
        """Anchor targets for labels ``boxes`` (in the map's frame), or None without targets.

        With ``target_args.min_points`` a label holding fewer points of ``clouds`` (a list of
        clouds in the labels' frame, or a callable giving it: computed only when needed) becomes
        an ignore region instead of a positive (:func:`~v2xdet.data_utils.preprocess.split_by_points`).
        """
        if not self.with_targets:
            return None
        sparse = None
        if self.min_points > 0:
            boxes, sparse = split_by_points(boxes, clouds() if callable(clouds) else clouds, self.min_points)
        return assign_targets(self.anchors, boxes, self.pos_threshold, self.neg_threshold,
                              self.dir_offset, self.num_dir_bins, ignore_boxes=sparse)

    def unit(self, maps: list[np.ndarray], labels: np.ndarray, rng, agent_to_ego: np.ndarray,
             spatial_correction: np.ndarray, prior_encoding: np.ndarray, pairwise: np.ndarray,
             output_to_ego: np.ndarray, label_clouds=None) -> dict:
        """One detector batch entry: ``len(maps)`` agent maps fused into one output. ``label_clouds``
        (see :meth:`targets`) defaults to ``maps``: the clouds already in the labels' frame."""
        targets = self.targets(labels, maps if label_clouds is None else label_clouds)
        return {"maps": [self.encode_map(p, rng) for p in maps], "targets": targets,
                "agent_to_ego": agent_to_ego, "spatial_correction": spatial_correction,
                "prior_encoding": prior_encoding, "pairwise": pairwise, "output_to_ego": output_to_ego,
                "label_boxes": np.asarray(labels, dtype=np.float32).reshape(-1, 7)}

    def single_unit(self, points: np.ndarray, labels: np.ndarray, prepared: Prepared, agent: int,
                    output_to_ego: np.ndarray | None = None) -> dict:
        """A unit of one map with identity transforms and agent ``agent``'s prior."""
        eye = np.eye(4)
        return self.unit([points], labels, prepared.rng, eye[None], eye[None],
                         prepared.plan.prior_encoding[agent:agent + 1], eye[None, None],
                         eye if output_to_ego is None else output_to_ego)

    def view(self, prepared: Prepared) -> dict:
        """``{"units": [...]}``: the strategy's detector inputs (see :mod:`.views`)."""
        raise NotImplementedError(f"{type(self).__name__} is not a fusion strategy; use build_dataset")

    collate = staticmethod(collate)
