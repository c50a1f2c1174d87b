"""Benchmark a training step of the cooperative detector: forward, backward and the Adam step.

Per method and agent count, on ``--device`` (``cpu`` or ``cuda``) in fp32 or with ``--amp``
(float16 autocast and a GradScaler, as ``tools/train.py --amp``; CUDA only): the best of
``--repeat`` seconds per step for a batch of ``--batch_size`` samples, samples per second and, on
CUDA, the peak GPU memory of a step. The input is ``bench_model.py``'s (per agent a synthetic scan
filling ``--pillars`` pillars, voxelized). The loss is a surrogate, the mean square of every head
output: the anchor targets cost little against the network, and timing needs no labels. The model
is in training mode (dropout, batch-norm statistics) as in training. The fp32 rows keep PyTorch's
defaults, as ``tools/train.py`` does (on CUDA, cuDNN may run the convolutions in TF32).

    .venv/bin/python tools/bench_train.py --config compact --agents 1 3 --batch_size 2
    python tools/bench_train.py --device cuda --config full --agents 2 5 --batch_size 4 --amp
"""
from __future__ import annotations

import argparse

import torch
from bench_model import METHODS, make_batch, method_config
from benchlib import synchronized, timed

from v2xdet.engine.allocator import configure_allocator
from v2xdet.models import build_detector


def batch_of(cfg: dict, n_agents: int, batch_size: int, pillars: int) -> dict:
    """``batch_size`` cooperative samples of ``n_agents`` agents (each ``make_batch``, its own
    seed), collated as the detector takes them: agent indices run over the whole batch."""
    samples = [make_batch(cfg, n_agents, pillars, seed=s) for s in range(batch_size)]
    coords = []
    for s, sample in enumerate(samples):
        c = sample["voxel_coords"].clone()
        c[:, 0] += s * n_agents
        coords.append(c)
    out = {key: torch.cat([sample[key] for sample in samples]) for key in samples[0] if key != "voxel_coords"}
    return {**out, "voxel_coords": torch.cat(coords)}


def train_step(model: torch.nn.Module, batch: dict, amp: bool):
    """A no-argument training step: zero the gradients, forward under autocast if ``amp``, the
    surrogate loss, backward through the GradScaler, Adam step."""
    device = batch["voxel_features"].device
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    def step() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out = model(batch)
        loss = sum((v.float() ** 2).mean() for v in out.values())
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach()
    return step


def bench_case(config: str, method: str, n_agents: int, batch_size: int, pillars: int, repeat: int,
               device: str, amp: bool) -> dict:
    cfg = method_config(config, method)
    torch.manual_seed(0)
    model = build_detector(cfg["model"]).to(device).train()
    batch = {k: v.to(device) for k, v in batch_of(cfg, n_agents, batch_size, pillars).items()}
    step = synchronized(train_step(model, batch, amp), device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, repeat)["seconds"]
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"config": config, "method": method, "agents": n_agents, "batch": batch_size, "amp": amp,
            "seconds": seconds, "samples_per_s": batch_size / seconds, "peak_gib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["compact"], choices=["full", "compact"])
    parser.add_argument("--methods", nargs="+", default=["v2xvit", "mswin_deform"], choices=METHODS)
    parser.add_argument("--agents", nargs="+", type=int, default=[2, 5])
    parser.add_argument("--batch_size", type=int, default=2)
    parser.add_argument("--pillars", type=int, default=20000, help="non-empty pillars per agent")
    parser.add_argument("--repeat", type=int, default=3, help="timed steps per case (the best is kept)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--amp", action="store_true", help="also time float16 autocast + GradScaler (CUDA)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    if args.amp and args.device != "cuda":
        parser.error("--amp is for --device cuda (tools/train.py uses mixed precision on CUDA only)")
    configure_allocator(True)
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {args.threads} threads"
    print(f"training step (forward, backward, Adam), batch {args.batch_size}, {args.pillars} pillars per "
          f"agent, best of {args.repeat}; {where}")
    print(f"{'config':<9}{'method':<14}{'agents':>7}{'precision':>11}{'s/step':>9}{'samples/s':>11}"
          f"{'peak GiB':>10}")
    for config in args.config:
        for method in args.methods:
            for n in args.agents:
                for amp in ([False, True] if args.amp else [False]):
                    r = bench_case(config, method, n, args.batch_size, args.pillars, args.repeat,
                                   args.device, amp)
                    peak = f"{r['peak_gib']:>10.2f}" if r["peak_gib"] is not None else f"{'-':>10}"
                    print(f"{config:<9}{method:<14}{n:>7}{'fp16 amp' if amp else 'fp32':>11}"
                          f"{r['seconds']:>9.3f}{r['samples_per_s']:>11.2f}{peak}", flush=True)


if __name__ == "__main__":
    main()
