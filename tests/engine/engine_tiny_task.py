"""A tiny detection task made in code, to test the engine's mechanics in seconds on CPU.

Each frame holds one box whose centre the model regresses from 8 features; augmentation draws
from python's, numpy's and torch's global generators (so per-sample seeding is exercised), the
model has dropout (so the main process's random state matters), and chosen frames fail to load
the way a missing file would.
"""
from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from v2xdet.engine.task import FrameResult, Task
from v2xdet.evaluation import EvalAccumulator
from v2xdet.geometry.boxes import boxes_to_corners


class TinyFrames(Dataset):
    def __init__(self, n: int, train: bool, bad: tuple = (), seed: int = 0):
        self.features = np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)
        w = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)   # one law for every split
        self.centres = (self.features @ w).astype(np.float32) * 0.2
        self.train = train
        self.bad = set(bad)

    def __len__(self) -> int:
        return len(self.features)

    def describe(self, index: int) -> str:
        return f"/data/tiny/{index:06d}.pcd"

    def __getitem__(self, index: int) -> dict:
        if index in self.bad:
            raise FileNotFoundError(f"{self.describe(index)} does not exist")
        x = torch.from_numpy(self.features[index].copy())
        if self.train:  # augmentation from every global generator
            noise = np.random.normal(0, 0.05, size=8)  # noqa: NPY002 (global generator on purpose)
            x = x + torch.from_numpy(noise.astype(np.float32))
            x = x * (1 + 0.05 * torch.rand(1)) + 0.01 * random.random()
        return {"x": x, "centre": torch.from_numpy(self.centres[index]), "frame_id": f"{index:06d}"}


def tiny_collate(samples: list) -> dict:
    return {"x": torch.stack([s["x"] for s in samples]),
            "centre": torch.stack([s["centre"] for s in samples]),
            "frame_id": [s["frame_id"] for s in samples]}


class TinyDetector(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 4))

    def forward(self, batch: dict) -> dict:
        out = self.body(batch["x"])
        return {"reg": out[:, :2], "cls": out[:, 2], "dir": out[:, 3]}


def tiny_loss(output: dict, batch: dict):
    reg = nn.functional.smooth_l1_loss(output["reg"], batch["centre"])
    cls = nn.functional.binary_cross_entropy_with_logits(output["cls"], torch.ones_like(output["cls"]))
    direction = (output["dir"] ** 2).mean()
    return reg + 0.1 * cls + 0.01 * direction, {"cls": cls, "reg": reg, "dir": direction}


def _boxes(centres: np.ndarray) -> np.ndarray:
    n = len(centres)
    return np.column_stack([centres, np.zeros(n), np.full(n, 4.0), np.full(n, 2.0), np.full(n, 1.5),
                            np.zeros(n)])


class TinyTask(Task):
    def __init__(self, cfg: dict, n_train: int = 24, n_val: int = 8, bad: tuple = ()):
        super().__init__(cfg)
        self.n_train, self.n_val, self.bad = n_train, n_val, bad

    def build_model(self):
        return TinyDetector()

    def build_loss(self):
        return tiny_loss

    def build_dataset(self, split: str, train: bool):
        if split == "train":
            return TinyFrames(self.n_train, train=True, bad=self.bad, seed=1)
        return TinyFrames(self.n_val, train=False, seed=2)

    def collate(self, samples):
        return tiny_collate(samples)

    def detections(self, output, batch):
        pred = _boxes(output["reg"].detach().cpu().numpy().astype(np.float64))
        gt = _boxes(batch["centre"].cpu().numpy().astype(np.float64))
        scores = torch.sigmoid(output["cls"]).detach().cpu().numpy()
        return [FrameResult(fid, boxes_to_corners(pred[i:i + 1]), scores[i:i + 1],
                            boxes_to_corners(gt[i:i + 1]), pred_boxes=pred[i:i + 1])
                for i, fid in enumerate(batch["frame_id"])]

    def new_evaluator(self):
        return EvalAccumulator()


def tiny_config(**train_params) -> dict:
    params = {"epoches": 3, "batch_size": 4, "eval_freq": 1, "save_freq": 1, "seed": 7}
    params.update(train_params)
    return {"name": "tiny", "train_params": params,
            "optimizer": {"core_method": "Adam", "lr": 0.03, "args": {"eps": 1e-10, "weight_decay": 1e-4}},
            "lr_scheduler": {"core_method": "multistep", "step_size": [2], "gamma": 0.1}}
