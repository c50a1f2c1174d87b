"""Benchmark the whole cooperative detector, stage by stage, at V2X-ViT's full configuration.

Loads ``hypes_yaml/v2xset/point_pillar_v2xvit.yaml`` (V2X-ViT: 281.6 m x 76.8 m at 0.4 m pillars,
PointPillars backbone, a 256 x 48 x 176 fusion map) and swaps ``model.core_method`` to compare
the fusion methods on the same input: synthetic LiDAR-like scans (denser near the sensor) for each
agent, voxelized with the project's ``Voxelizer``, agents a few metres apart (the maps are warped
into the ego frame). Prints best-of-N inference latency (torch.no_grad, ``--threads`` threads) of
the BEV stage (pillar encoder, scatter, backbone), the fusion (ego warp + fusion module), the head
and the whole forward pass, with parameter counts. The machine may be shared: timings are the best
of ``--repeat`` runs.

    .venv/bin/python tools/bench_model.py --agents 1 2 5
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from v2xdet.config import load_config
from v2xdet.data_utils.preprocess import Voxelizer
from v2xdet.models import build_detector

CONFIG = Path(__file__).resolve().parents[1] / "hypes_yaml" / "v2xset" / "point_pillar_v2xvit.yaml"
METHODS = {
    "fcooper": ("point_pillar_fcooper", {"model.args.transformer": None}),
    "attfuse": ("point_pillar_attfuse", {"model.args.transformer": None}),
    "v2xvit": ("point_pillar_transformer", {}),
    "mswin_deform": ("point_pillar_mswin_deform",
                     {"model.args.transformer.encoder.pwindow_att_config.deform": {"enabled": True}}),
}


def lidar_scan(n_points: int, lidar_range: list[float], rng: np.random.Generator) -> np.ndarray:
    """(N, 4) points around the sensor: uniform azimuth, range ~ exponential (dense near), two heights."""
    azimuth = rng.uniform(-math.pi, math.pi, n_points)
    radius = np.minimum(rng.exponential(25.0, n_points) + 2.0, 140.0)
    z = np.where(rng.random(n_points) < 0.6, -1.7, rng.uniform(-1.5, 0.5, n_points))
    pts = np.column_stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z, rng.random(n_points)])
    keep = ((pts[:, 0] > lidar_range[0]) & (pts[:, 0] < lidar_range[3])
            & (pts[:, 1] > lidar_range[1]) & (pts[:, 1] < lidar_range[4]))
    return pts[keep].astype(np.float32)


def make_batch(cfg: dict, n_agents: int, n_points: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    voxelizer = Voxelizer.from_config(cfg, train=False)
    lidar_range = cfg["preprocess"]["cav_lidar_range"]
    feats, nums, coords = [], [], []
    for i in range(n_agents):
        v = voxelizer(lidar_scan(n_points, lidar_range, rng))
        feats.append(torch.from_numpy(v["voxel_features"]))
        nums.append(torch.from_numpy(v["voxel_num_points"]))
        coords.append(torch.nn.functional.pad(torch.from_numpy(v["voxel_coords"]), (1, 0), value=i))
    to_ego = torch.eye(4).repeat(1, n_agents, 1, 1)
    prior = torch.zeros(1, n_agents, 3)
    for i in range(1, n_agents):
        yaw = math.radians(15.0 * i)
        to_ego[0, i, :2, :2] = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
        to_ego[0, i, :2, 3] = torch.tensor([8.0 * i, -3.0 * i])
        prior[0, i, 1] = i % 3
    if n_agents > 2:
        prior[0, -1, 2] = 1.0  # an RSU
    return {"voxel_features": torch.cat(feats), "voxel_num_points": torch.cat(nums),
            "voxel_coords": torch.cat(coords), "record_len": torch.tensor([n_agents]),
            "agent_to_ego": to_ego, "prior_encoding": prior,
            "spatial_correction": torch.eye(4).repeat(1, n_agents, 1, 1)}


def best(fn, repeat: int) -> float:
    fn()
    out = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def bench(method: str, n_agents: int, n_points: int, repeat: int) -> dict:
    core, overrides = METHODS[method]
    cfg = load_config(CONFIG, {"model.core_method": core, **overrides})
    torch.manual_seed(0)
    model = build_detector(cfg["model"]).eval()
    batch = make_batch(cfg, n_agents, n_points)
    with torch.no_grad():
        bev = model.bev_features(batch)
        fused = model.fuse(bev, batch)
        row = {
            "method": method, "agents": n_agents, "pillars": int(batch["voxel_coords"].shape[0]) // n_agents,
            "bev": best(lambda: model.bev_features(batch), repeat),
            "fusion": best(lambda: model.fuse(bev, batch), repeat),
            "head": best(lambda: model.head(fused), repeat),
            "total": best(lambda: model(batch), repeat),
            "params": sum(p.numel() for p in model.parameters()),
            "fusion_params": sum(p.numel() for p in model.fusion.parameters()),
        }
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--agents", nargs="+", type=int, default=[1, 2, 5])
    parser.add_argument("--points", type=int, default=60000, help="points per agent scan before cropping")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"V2X-ViT full configuration ({CONFIG.name}); best of {args.repeat}, {args.threads} threads")
    print(f"{'method':<14}{'agents':>7}{'pillars/agent':>14}{'bev s':>8}{'fusion s':>10}{'head s':>8}"
          f"{'total s':>9}{'params M':>10}{'fusion M':>10}")
    for method in args.methods:
        for n in args.agents:
            r = bench(method, n, args.points, args.repeat)
            print(f"{r['method']:<14}{r['agents']:>7}{r['pillars']:>14}{r['bev']:>8.3f}{r['fusion']:>10.3f}"
                  f"{r['head']:>8.3f}{r['total']:>9.3f}{r['params'] / 1e6:>10.2f}"
                  f"{r['fusion_params'] / 1e6:>10.2f}")


if __name__ == "__main__":
    main()
