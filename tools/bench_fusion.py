"""Benchmark the fusion modules at V2X-ViT's full fusion input (256 x 48 x 176, 3 layers).

Prints, per method and agent count: best-of-N inference latency (torch.no_grad, ``--threads``
threads), parameter count, FLOPs (``torch.utils.flop_counter.FlopCounterMode``, with the CPU
flash-attention kernel of ``scaled_dot_product_attention`` registered so attention is counted), the
arithmetic floor = FLOPs / this machine's fp32 matmul rate measured in the same run (2048 x 2048
products), and latency / floor; the same with CPU time (FLOPs / GEMM FLOP per CPU second), which a
shared machine disturbs less than wall time; and ``x paired``, the median over the runs of latency /
floor with each run paired with the rate measured just before it (a single 0.4 s rate measurement is
noisy, so only the median is shown). The glibc allocator is tuned at start-up (``tune_allocator``;
``--no_tune_allocator`` keeps glibc's defaults). ``--mswin`` times the MSwin block alone with and
without deformable-branch variants (run alternately). ``--malloc`` reruns one case in subprocesses
under different glibc allocator / transparent-huge-page settings. ``--breakdown`` profiles N forward
passes per case and splits the fastest one's time and FLOPs by kind of kernel (GEMMs, small
per-pixel products, attention kernels, the rest), each against its own floor. ``--dropout`` times
training-mode dropout (forward + backward) on one layer's maps, torch's ``nn.Dropout`` against the
encoder's ``Dropout`` (``v2xdet/models/fusion/dropout.py``), alternately.

    .venv/bin/python tools/bench_fusion.py                      # all methods, 1/2/5 agents
    .venv/bin/python tools/bench_fusion.py --methods v2xvit --agents 5 --malloc
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import subprocess
import sys

import torch
from benchlib import (
    add_allocator_option,
    best_alternating,
    count_flops,
    paired_floor_ratios,
    rates_around,
    time_by_kind,
    timed,
    total_seconds,
)

from v2xdet.engine.allocator import configure_allocator
from v2xdet.models.fusion import FUSIONS
from v2xdet.models.fusion.dropout import Dropout
from v2xdet.models.fusion.mswin import MSwin
from v2xdet.models.fusion.tokens import WindowOrder

H, W, C = 48, 176, 256
ENCODER = {
    "num_blocks": 1,
    "depth": 3,
    "use_roi_mask": True,
    "use_RTE": True,
    "RTE_ratio": 2,
    "sttf": {"voxel_size": [0.4, 0.4, 4], "downsample_rate": 4},
    "cav_att_config": {"dim": C, "use_hetero": True, "use_RTE": True, "RTE_ratio": 2, "heads": 8,
                       "dim_head": 32, "dropout": 0.3},
    "pwindow_att_config": {"dim": C, "heads": [16, 8, 4], "dim_head": [16, 32, 64], "dropout": 0.3,
                           "window_size": [4, 8, 16], "relative_pos_embedding": True,
                           "fusion_method": "split_attn"},
    "feed_forward": {"mlp_dim": 256, "dropout": 0.3},
}
DEFORM = {"enabled": True, "heads": 2, "dim_head": 64, "stride": 8, "offset_range_factor": 1.0,
          "offset_kernel": 5, "sample_from": "all", "use_pe": True}  # the full-size configs' branch
# Deformable-branch configurations compared by --mswin (overrides of DEFORM).
DEFORM_VARIANTS = [
    {},
    {"use_pe": False},
    {"sample_from": "own"},
    {"heads": 4, "dim_head": 32},
    {"stride": 4},
]
# glibc reads MALLOC_* at process start; THP_MEM_ALLOC_ENABLE makes torch madvise large buffers
# into transparent huge pages. Tensors above the mmap threshold (at most 32 MB in glibc) are
# mmapped and unmapped at every free, so each forward pass faults in (and the kernel zeroes) them
# again; MALLOC_MMAP_MAX_=0 keeps every allocation in the heap, and a large trim threshold keeps
# the freed heap for the next pass. These run with --no_tune_allocator (mallopt would override
# them); the last row is the scripts' default, tune_allocator() (mallopt at start-up).
ALLOCATOR_SETTINGS = {
    "glibc default": {},
    "mmap_thr=32M,trim=1G": {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**30)},
    "THP_MEM_ALLOC_ENABLE=1": {"THP_MEM_ALLOC_ENABLE": "1"},
    "mmap_max=0,trim=16G": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30)},
    "tune_allocator() (default)": None,
}


def method_args(name: str, deform: dict | None = None) -> dict:
    if name in ("max", "att"):
        return {}
    enc = copy.deepcopy(ENCODER)
    if name == "mswin_deform":
        enc["pwindow_att_config"]["deform"] = dict(DEFORM, **(deform or {}))
    return {"encoder": enc}


def make_inputs(n_agents: int, seed: int = 0):
    """Random maps, all agents real, delays 0..2 steps, one RSU, a small spatial correction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n_agents, C, H, W, generator=g)
    mask = torch.ones(1, n_agents, dtype=torch.bool)
    prior = torch.zeros(1, n_agents, 3)
    prior[0, :, 1] = torch.arange(n_agents) % 3
    if n_agents > 2:
        prior[0, -1, 2] = 1.0  # an RSU
    corr = torch.eye(4).repeat(1, n_agents, 1, 1)
    for i in range(1, n_agents):
        a = math.radians(0.2 * i)
        corr[0, i, :2, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        corr[0, i, :2, 3] = torch.tensor([0.2 * i, -0.1 * i])
    return x, mask, {"prior_encoding": prior, "spatial_correction": corr}


def fusion_call(name: str, n_agents: int, deform: dict | None = None):
    """The fusion module ``name`` (eval mode) and a no-arg call of it on n agents' maps."""
    torch.manual_seed(0)
    model = FUSIONS[name](method_args(name, deform), C).eval()
    x, mask, meta = make_inputs(n_agents)
    return model, lambda: model(x, mask, meta)


def bench_method(name: str, n_agents: int, repeat: int, deform: dict | None = None) -> dict:
    model, call = fusion_call(name, n_agents, deform)
    with torch.no_grad():
        times = timed(call, repeat)
        flops = count_flops(call)
        paired = paired_floor_ratios(call, flops, repeat) if flops > 1e9 else [math.nan]
    return {"method": name, "agents": n_agents, "flops": flops,
            "paired": statistics.median(paired),
            "params": sum(p.numel() for p in model.parameters()), **times}


def breakdown_table(name: str, n_agents: int, deform: dict | None, rate: float, repeat: int) -> None:
    """Where one forward pass's time goes, by kind of kernel, against each kind's own floor."""
    _, call = fusion_call(name, n_agents, deform)
    with torch.no_grad():
        call()  # warm-up
        kinds = time_by_kind(call, repeat)
    total = total_seconds(kinds)
    print(f"\n{name}, {n_agents} agents, the fastest of {repeat} profiled forward passes ({total:.2f} s) "
          f"by kind of kernel; floor = GFLOP / {rate / 1e9:.1f} GFLOP/s:")
    print(f"{'kind':<26}{'s':>8}{'share':>8}{'GFLOP':>9}{'GFLOP/s':>10}{'x floor':>9}{'s over floor':>14}")
    for kind, k in kinds.items():
        floor = k["flops"] / rate
        speed = f"{k['flops'] / k['seconds'] / 1e9:>10.1f}" if k["flops"] and k["seconds"] else f"{'-':>10}"
        ratio = f"{k['seconds'] / floor:>9.2f}" if k["flops"] else f"{'-':>9}"
        print(f"{kind:<26}{k['seconds']:>8.3f}{k['seconds'] / total:>8.0%}{k['flops'] / 1e9:>9.1f}{speed}"
              f"{ratio}{k['seconds'] - floor:>14.3f}")


def mswin_call(n_agents: int, deform: dict | None):
    """A no-arg call of one MSwin block (V2X-ViT's windows, optionally the deformable branch) on
    n agents' maps."""
    from v2xdet.models.fusion.mswin import DeformSources
    from v2xdet.models.fusion.v2xvit import MSwinDeformFusion, V2XViTFusion
    torch.manual_seed(0)
    cls = MSwinDeformFusion if deform else V2XViTFusion
    model = cls(method_args("mswin_deform" if deform else "v2xvit", deform), C).eval()
    mswin: MSwin = model.blocks[0].mswin
    order = WindowOrder(H, W, model.window_sizes)
    x = torch.randn(n_agents, H * W, C)
    y = torch.nn.functional.layer_norm(x, (C,))
    sources = None
    if deform and deform["sample_from"] == "all":
        sources = DeformSources(y, torch.arange(n_agents).repeat(n_agents, 1), None, True)
    return lambda: mswin(x, y, order, sources)


def bench_mswin(n_agents: int, repeat: int, deform: dict) -> dict:
    """Best times of the MSwin block without and with the deformable branch, run alternately so
    that a change in the machine's load affects both alike, and their FLOPs."""
    calls = {"plain": mswin_call(n_agents, None), "deform": mswin_call(n_agents, deform)}
    with torch.no_grad():
        best = best_alternating(calls, repeat)
        flops = {key: count_flops(call) for key, call in calls.items()}
    return {"seconds": best, "flops": flops}


def bench_dropout(n_agents: int, repeat: int, p: float = 0.3) -> dict:
    """Best times of training-mode dropout, forward and backward, on n agents' (T, C) maps: torch's
    ``nn.Dropout`` and ours, run alternately."""
    x = torch.randn(n_agents, H * W, C, requires_grad=True)
    calls = {name: (lambda m=module: m(x).sum().backward())
             for name, module in (("nn.Dropout", torch.nn.Dropout(p)), ("Dropout", Dropout(p)))}
    return best_alternating(calls, repeat)


def allocator_table(method: str, n_agents: int, repeat: int, threads: int) -> None:
    print(f"\nAllocator settings, {method} with {n_agents} agents (best wall of {repeat}; CPU, system "
          f"time and minor faults per forward pass; {threads} threads):")
    print(f"{'setting':<28}{'wall s':>8}{'CPU s':>8}{'sys s':>8}{'faults':>10}{'CPU vs glibc':>16}")
    base = None
    for label, env in ALLOCATOR_SETTINGS.items():
        cmd = [sys.executable, __file__, "--methods", method, "--agents", str(n_agents), "--repeat",
               str(repeat), "--threads", str(threads), "--json"]
        if env is not None:
            cmd.append("--no_tune_allocator")
        out = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                             check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])[0]
        base = base or row["cpu"]
        print(f"{label:<28}{row['seconds']:>8.2f}{row['cpu']:>8.2f}{row['sys']:>8.2f}{row['faults']:>10.0f}"
              f"{row['cpu'] / base:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(FUSIONS), choices=list(FUSIONS))
    parser.add_argument("--agents", nargs="+", type=int, default=[1, 2, 5])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (the best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--deform", type=json.loads, default=None,
                        help='overrides of the deform block, e.g. \'{"stride": 8, "sample_from": "own"}\'')
    parser.add_argument("--mswin", action="store_true", help="also time the MSwin block with/without deform")
    parser.add_argument("--breakdown", action="store_true",
                        help="also profile --repeat forward passes per case: the fastest one's time and "
                             "FLOPs by kind of kernel")
    parser.add_argument("--dropout", action="store_true",
                        help="also time training-mode dropout: nn.Dropout against ours")
    parser.add_argument("--malloc", action="store_true",
                        help="compare allocator settings (first method and agent count)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    add_allocator_option(parser)
    args = parser.parse_args()
    allocator = configure_allocator(not args.no_tune_allocator)
    torch.set_num_threads(args.threads)

    rows, rate, cpu_rate = rates_around(
        lambda: [bench_method(m, n, args.repeat, args.deform) for m in args.methods for n in args.agents])
    if args.json:
        print(json.dumps(rows))
        return
    print(f"fp32 matmul rate: {rate / 1e9:.1f} GFLOP/s wall, {cpu_rate / 1e9:.1f} GFLOP per CPU second "
          f"({args.threads} threads); fusion input {C} x {H} x {W}; best of {args.repeat}")
    print(f"allocator: {allocator}")
    print(f"{'method':<14}{'agents':>7}{'latency s':>11}{'floor s':>9}{'x floor':>9}{'CPU s':>8}"
          f"{'CPU floor':>11}{'x CPU fl':>10}{'x paired':>10}{'params M':>10}{'GFLOP':>9}")
    for r in rows:
        floor, cpu_floor = r["flops"] / rate, r["flops"] / cpu_rate
        if r["flops"] > 1e9:
            ratios = (f"{r['seconds'] / floor:>9.2f}", f"{r['cpu'] / cpu_floor:>10.2f}",
                      f"{r['paired']:>10.2f}")
        else:  # no GEMM work to speak of
            ratios = (f"{'-':>9}", f"{'-':>10}", f"{'-':>10}")
        print(f"{r['method']:<14}{r['agents']:>7}{r['seconds']:>11.3f}{floor:>9.3f}{ratios[0]}{r['cpu']:>8.2f}"
              f"{cpu_floor:>11.3f}{ratios[1]}{ratios[2]}{r['params'] / 1e6:>10.2f}{r['flops'] / 1e9:>9.1f}")
    if args.mswin:
        print(f"\nMSwin block alone (one layer, {C} x {H} x {W}); the deformable branch over the window "
              "branches:")
        print(f"{'deform':<44}{'agents':>7}{'windows s':>11}{'+deform s':>11}{'added':>8}{'GFLOP w':>9}"
              f"{'GFLOP w+d':>11}")
        variants = [args.deform] if args.deform is not None else DEFORM_VARIANTS
        for n in args.agents:
            for variant in variants:
                r = bench_mswin(n, args.repeat, dict(DEFORM, **variant))
                plain, deform = r["seconds"]["plain"], r["seconds"]["deform"]
                label = ",".join(f"{k}={v}" for k, v in variant.items()) or "as configured"
                print(f"{label:<44}{n:>7}{plain:>11.3f}{deform:>11.3f}{deform / plain - 1:>8.0%}"
                      f"{r['flops']['plain'] / 1e9:>9.1f}{r['flops']['deform'] / 1e9:>11.1f}")
    if args.breakdown:
        for m in args.methods:
            for n in args.agents:
                breakdown_table(m, n, args.deform, rate, args.repeat)
    if args.dropout:
        print(f"\nTraining-mode dropout (p = 0.3) of one layer's maps ({H * W} x {C} per agent), forward + "
              "backward, best of the alternating runs:")
        print(f"{'agents':>7}{'nn.Dropout ms':>15}{'ours ms':>10}{'speed-up':>10}")
        for n in args.agents:
            r = bench_dropout(n, args.repeat)
            print(f"{n:>7}{r['nn.Dropout'] * 1e3:>15.1f}{r['Dropout'] * 1e3:>10.1f}"
                  f"{r['nn.Dropout'] / r['Dropout']:>9.1f}x")
    if args.malloc:
        allocator_table(args.methods[0], args.agents[0], args.repeat, args.threads)


if __name__ == "__main__":
    main()
