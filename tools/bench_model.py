"""Benchmark the whole cooperative detector, stage by stage, per fusion method and agent count.

Two configurations (``--config``):

* ``full``: V2X-ViT's full input, ``hypes_yaml/v2xset/point_pillar_v2xvit.yaml`` (range
  [-140.8, -38.4, -3, 140.8, 38.4, 1] at 0.4 m pillars, PointPillars backbone, fusion on a
  256 x 48 x 176 map, 3 layers) with ``model.core_method`` swapped per method, so that only the
  fusion differs (AttFuse without its 32x compression);
* ``compact``: the simulated world's CPU-sized models, ``hypes_yaml/synthetic/point_pillar_<method>.yaml``.

Input: per agent a synthetic LiDAR-like scan filling exactly ``--pillars`` pillar cells (cells
drawn without replacement, denser near the sensor, 1 to ``max_points_per_voxel`` points each,
more near), voxelized with the project's ``Voxelizer``; agents a few metres apart and rotated, so
their maps are warped into the ego frame. Prints best-of-``--repeat`` inference latency
(torch.no_grad, ``--threads`` threads) of each stage: encoder (PillarVFE + scatter), backbone
(the BEV stages: backbone, shrink header, compression), fusion (ego warp + fusion module), head,
and the whole forward pass; parameter counts; FLOPs of the forward pass and of the fusion
(``benchlib.count_flops``); the arithmetic floor = FLOPs / this machine's fp32 matmul rate,
measured before and after the rows in the same run (the better kept), and total / floor; and,
for the full configuration, ``vs ref`` = the reference V2X-ViT implementation's seconds per frame
(2 threads, 20,000 pillars per agent) / ours. The glibc allocator is tuned at start-up
(``tune_allocator``; ``--no_tune_allocator`` keeps glibc's defaults). ``--device cuda`` times the
same on the GPU, in full fp32 (TF32 off), against the GPU's fp32 GEMM rate, with no ``vs ref``.

    .venv/bin/python tools/bench_model.py                               # both configs, 1-5 agents
    .venv/bin/python tools/bench_model.py --config full --methods mswin_deform --agents 2 5
    python tools/bench_model.py --device cuda --agents 1 2 5 --repeat 10    # on a GPU machine
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from benchlib import add_allocator_option, count_flops, rates_around, synchronized, timed

from v2xdet.config import load_config
from v2xdet.data_utils.preprocess import Voxelizer
from v2xdet.data_utils.preprocess.voxelize import grid_size
from v2xdet.engine.allocator import configure_allocator
from v2xdet.models import build_detector

HYPES = Path(__file__).resolve().parents[1] / "hypes_yaml"
FULL_CONFIG = HYPES / "v2xset" / "point_pillar_v2xvit.yaml"
COMPACT_DIR = HYPES / "synthetic"
METHODS = ["fcooper", "attfuse", "v2xvit", "mswin_deform"]
# full configuration: method -> (model.core_method, overrides of FULL_CONFIG)
FULL_METHODS = {
    "fcooper": ("point_pillar_fcooper", {"model.args.transformer": None}),
    "attfuse": ("point_pillar_attfuse", {"model.args.transformer": None}),
    "v2xvit": ("point_pillar_transformer", {}),
    "mswin_deform": ("point_pillar_mswin_deform",
                     {"model.args.transformer.encoder.pwindow_att_config.deform": {"enabled": True}}),
}
# The reference V2X-ViT implementation at the full configuration: seconds per frame by agent count
# (CPU, 2 threads, 20,000 pillars per agent), and the issue's targets for our MSwin+deformable model.
REFERENCE_SECONDS = {1: 13.3, 2: 13.6, 5: 17.8}
TARGET_SPEEDUP = {2: 3.0, 5: 1.6}
STAGES = ["encoder", "backbone", "fusion", "head", "total"]


def method_config(config: str, method: str) -> dict:
    """The loaded config of ``method`` in configuration ``config`` (``full`` or ``compact``)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if config == "full":
        core, overrides = FULL_METHODS[method]
        return load_config(FULL_CONFIG, {"model.core_method": core, **overrides})
    if config == "compact":
        return load_config(COMPACT_DIR / f"point_pillar_{method}.yaml")
    raise ValueError(f"config must be 'full' or 'compact', got {config!r}")


def pillar_scan(n_pillars: int, voxel_size, lidar_range, max_points: int,
                rng: np.random.Generator) -> np.ndarray:
    """(N, 4) points filling exactly ``n_pillars`` distinct pillar cells around a sensor at the origin.

    Cells are drawn without replacement (Gumbel top-k) with weight ``exp(-r / 25 m) + 0.02`` of
    their distance ``r``; a cell holds ``1 + Poisson((max_points - 1) exp(-r / 15 m))`` points
    (at most ``max_points``), two thirds on the ground, the rest up to 0.5 m, inside the cell.
    """
    nx, ny = grid_size(voxel_size, lidar_range)[:2]
    if not 0 < n_pillars <= nx * ny:
        raise ValueError(f"n_pillars must be in [1, {nx * ny}] (the {nx} x {ny} grid), got {n_pillars}")
    vx, vy = float(voxel_size[0]), float(voxel_size[1])
    cx = lidar_range[0] + (np.arange(nx) + 0.5) * vx
    cy = lidar_range[1] + (np.arange(ny) + 0.5) * vy
    dist = np.hypot(cx[None, :], cy[:, None]).ravel()  # cell index = iy * nx + ix
    keys = np.log(np.exp(-dist / 25.0) + 0.02) + rng.gumbel(size=dist.size)
    cells = np.argpartition(-keys, n_pillars - 1)[:n_pillars]
    counts = np.minimum(1 + rng.poisson((max_points - 1) * np.exp(-dist[cells] / 15.0)), max_points)
    cell = np.repeat(cells, counts)
    offset = rng.uniform(0.05, 0.95, (cell.size, 2))  # away from the cell borders
    x = lidar_range[0] + (cell % nx + offset[:, 0]) * vx
    y = lidar_range[1] + (cell // nx + offset[:, 1]) * vy
    z = np.where(rng.random(cell.size) < 2 / 3, -1.7, rng.uniform(-1.5, 0.5, cell.size))
    return np.column_stack([x, y, z, rng.random(cell.size)]).astype(np.float32)


def make_batch(cfg: dict, n_agents: int, n_pillars: int, seed: int = 0) -> dict:
    """One cooperative sample of ``n_agents`` agents with ``n_pillars`` pillars each (see ``pillar_scan``)."""
    rng = np.random.default_rng(seed)
    voxelizer = Voxelizer.from_config(cfg, train=False)
    if n_pillars > voxelizer.max_voxels:
        raise ValueError(f"{n_pillars} pillars per agent exceed preprocess.args.max_voxel_test "
                         f"= {voxelizer.max_voxels}")
    feats, nums, coords = [], [], []
    for i in range(n_agents):
        v = voxelizer(pillar_scan(n_pillars, voxelizer.voxel_size, voxelizer.lidar_range,
                                  voxelizer.max_points_per_voxel, rng))
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


def stage_calls(model: torch.nn.Module, batch: dict) -> dict[str, Callable[[], object]]:
    """Zero-argument calls of each stage of ``model`` on ``batch`` (inputs precomputed), and the total."""
    coords, entries = batch["voxel_coords"], int(batch["record_len"].sum())

    def encoder():
        pillars = model.encoder(batch["voxel_features"], batch["voxel_num_points"], coords)
        return model.scatter(pillars, coords, entries)

    def backbone(x):
        for stage in model.bev.values():
            x = stage(x)
        return x

    scattered = encoder()
    bev = backbone(scattered)
    fused = model.fuse(bev, batch)
    return {"encoder": encoder, "backbone": lambda: backbone(scattered),
            "fusion": lambda: model.fuse(bev, batch), "head": lambda: model.head(fused),
            "total": lambda: model(batch)}


def bench(model: torch.nn.Module, batch: dict, repeat: int) -> dict:
    """Stage latencies (best of ``repeat``), the total's CPU time, FLOPs and parameter counts, on the
    device that holds ``model`` and ``batch``."""
    device = batch["voxel_features"].device
    with torch.no_grad():
        calls = stage_calls(model, batch)
        times = {name: timed(synchronized(call, device), repeat) for name, call in calls.items()}
        flops = count_flops(calls["total"])
        fusion_flops = count_flops(calls["fusion"])
    n_agents = int(batch["record_len"].sum())
    return {"agents": n_agents, "pillars": int(batch["voxel_coords"].shape[0]) / n_agents,
            **{name: t["seconds"] for name, t in times.items()}, "total_cpu": times["total"]["cpu"],
            "params": sum(p.numel() for p in model.parameters()),
            "fusion_params": sum(p.numel() for p in model.fusion.parameters()),
            "flops": flops, "fusion_flops": fusion_flops}


def bench_config(config: str, methods: list[str], agents: list[int], pillars: int, repeat: int,
                 device: str = "cpu") -> dict:
    """Rows of every method x agent count of ``config`` on ``device``, and a description of the
    configuration."""
    cfgs = {m: method_config(config, m) for m in methods}
    batches = {n: make_batch(cfgs[methods[0]], n, pillars) for n in agents}
    batches = {n: {k: v.to(device) for k, v in batch.items()} for n, batch in batches.items()}
    rows = []
    for method in methods:
        torch.manual_seed(0)
        model = build_detector(cfgs[method]["model"]).to(device).eval()
        rows += [{"config": config, "device": device, "method": method, **bench(model, batches[n], repeat)}
                 for n in agents]
    args = cfgs[methods[0]]["model"]["args"]
    height, width = model.feature_size  # the BEV stages are the same for every method
    info = (f"range {args['lidar_range']}, voxel {args['voxel_size'][0]} m, fusion map "
            f"{model.out_channels} x {height} x {width}")
    depths = {c["model"]["args"]["transformer"]["encoder"]["depth"] for c in cfgs.values()
              if "transformer" in c["model"]["args"]}
    if depths:
        info += f", {'/'.join(map(str, sorted(depths)))} transformer layers"
    return {"config": config, "info": info, "rows": rows}


def add_floor(row: dict, rate: float) -> dict:
    """The row with its arithmetic floor (FLOPs / matmul rate), total / floor and the reference ratio."""
    floor = row["flops"] / rate
    on_cpu = row.get("device", "cpu") == "cpu"   # the reference figures are CPU ones
    ref = REFERENCE_SECONDS.get(row["agents"]) if row["config"] == "full" and on_cpu else None
    return {**row, "floor": floor, "x_floor": row["total"] / floor,
            "vs_ref": ref / row["total"] if ref is not None else None}


def print_table(section: dict, rate: float) -> None:
    print(f"\n{section['config']}: {section['info']}")
    print(f"{'method':<14}{'agents':>7}{'pillars/ag':>11}{'encoder s':>10}{'backbone s':>11}{'fusion s':>9}"
          f"{'head s':>8}{'total s':>9}{'floor s':>9}{'x floor':>8}{'vs ref':>8}{'params M':>9}"
          f"{'fusion M':>9}{'GFLOP':>8}{'fus GFLOP':>10}")
    for r in (add_floor(row, rate) for row in section["rows"]):
        vs_ref = f"{r['vs_ref']:>8.2f}" if r["vs_ref"] is not None else f"{'-':>8}"
        print(f"{r['method']:<14}{r['agents']:>7}{r['pillars']:>11.0f}{r['encoder']:>10.3f}{r['backbone']:>11.3f}"
              f"{r['fusion']:>9.3f}{r['head']:>8.3f}{r['total']:>9.3f}{r['floor']:>9.3f}{r['x_floor']:>8.2f}"
              f"{vs_ref}{r['params'] / 1e6:>9.2f}{r['fusion_params'] / 1e6:>9.2f}{r['flops'] / 1e9:>8.1f}"
              f"{r['fusion_flops'] / 1e9:>10.1f}")


def target_lines(rows: list[dict]) -> list[str]:
    """The issue's targets for mswin_deform at the full configuration, where a row measures them."""
    out = []
    for r in rows:
        need = TARGET_SPEEDUP.get(r["agents"])
        on_cpu = r.get("device", "cpu") == "cpu"
        if r["config"] == "full" and r["method"] == "mswin_deform" and need is not None and on_cpu:
            got = REFERENCE_SECONDS[r["agents"]] / r["total"]
            verdict = "met" if got >= need else "NOT met"
            out.append(f"target mswin_deform full, {r['agents']} agents: {got:.2f}x the reference "
                       f"{REFERENCE_SECONDS[r['agents']]} s (need >= {need}x: {verdict})")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["full", "compact"], choices=["full", "compact"])
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--agents", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    parser.add_argument("--pillars", type=int, default=20000, help="non-empty pillars per agent")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per stage (the best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: time on the GPU (fp32, TF32 off; the floor from an 8192^3 fp32 GEMM)")
    add_allocator_option(parser)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    allocator = configure_allocator(not args.no_tune_allocator)
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

    sections, rate, cpu_rate = rates_around(
        lambda: [bench_config(c, args.methods, args.agents, args.pillars, args.repeat, args.device)
                 for c in args.config], args.device, 8192 if args.device == "cuda" else 2048)
    if args.json:
        sections = [{**s, "rows": [add_floor(r, rate) for r in s["rows"]]} for s in sections]
        print(json.dumps({"device": args.device, "matmul_rate": rate, "matmul_rate_cpu": cpu_rate,
                          "threads": args.threads,
                          "repeat": args.repeat, "allocator": allocator, "sections": sections}))
        return
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"{args.threads} threads"
    print(f"fp32 matmul rate: {rate / 1e9:.1f} GFLOP/s wall, {cpu_rate / 1e9:.1f} GFLOP per CPU second "
          f"(best before / after the rows; {where}); best of {args.repeat}; "
          f"{args.pillars} pillars per agent requested")
    print(f"allocator: {allocator}")
    print(f"vs ref: the reference V2X-ViT's s/frame at the full config (2 threads, 20,000 pillars/agent) "
          f"{REFERENCE_SECONDS} / ours")
    for section in sections:
        print_table(section, rate)
    for line in target_lines([r for s in sections for r in s["rows"]]):
        print(line)


if __name__ == "__main__":
    main()
