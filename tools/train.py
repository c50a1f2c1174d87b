"""Train a detector: start a run from a config, or resume one from its model directory.

    python tools/train.py --hypes_yaml hypes_yaml/v2xset/point_pillar_v2xvit.yaml [--model_dir DIR]
    python tools/train.py --model_dir runs/<name>_<time>          # resume from its latest checkpoint
    torchrun --nproc_per_node=4 tools/train.py --hypes_yaml ...    # one process per GPU (DDP)

A new run gets ``runs/<name>_<time>/`` (or ``--model_dir``) holding the resolved ``config.yaml``,
checkpoints (``latest.pth``, ``net_epoch<N>.pth``, ``best.pth`` by validation AP@0.7), ``train.log``
and tensorboard events. Stopping at any moment and resuming continues exactly where the last
checkpoint left off (``--save_every_steps`` adds mid-epoch checkpoints).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--hypes_yaml", type=Path, help="config of a new run")
    add("--model_dir", type=Path,
        help="with --hypes_yaml: the new run's folder; alone: the run to resume")
    add("--runs_root", type=Path, default=Path("runs"),
        help="where new run folders are made (default: runs)")
    add("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a config value of a new run (repeatable), e.g. train_params.batch_size=4")
    add("--num_workers", type=int, help="data-loading processes (default train_params.num_workers)")
    add("--num_threads", type=int,
        help="torch CPU threads per process (default train_params.num_threads; 0 = torch's)")
    add("--save_every_steps", type=int, help="also checkpoint every N steps (default: epochs only)")
    add("--seed", type=int, help="training seed (default train_params.seed)")
    add("--pretrained_model", type=Path,
        help="warm start a new run: copy this checkpoint's weights whose names and shapes match "
             "(e.g. a no-fusion run's best.pth for a cooperative model)")
    add("--amp", action="store_true", help="float16 mixed precision (CUDA only)")
    add("--strict", action="store_true", help="stop at the first frame that fails to load")
    add("--deterministic", action="store_true",
        help="deterministic kernels (bit-exact resume on GPU; slower)")
    add("--no_tune_allocator", action="store_true",
        help="keep glibc's malloc defaults (default: tune it for large tensors, v2xdet.engine.allocator)")
    add("--cpu", action="store_true", help="train on CPU even when CUDA is available")
    add("--no_progress", action="store_true", help="no tqdm progress bars")
    return parser.parse_args(argv)


def main(argv=None):
    import torch

    from v2xdet.config import ConfigError, parse_overrides
    from v2xdet.engine import (
        CheckpointError,
        Trainer,
        TrainOptions,
        configure_allocator,
        init_distributed,
        shutdown,
    )
    from v2xdet.engine.data import FrameLoadError
    from v2xdet.engine.rundir import discard_unstarted_run, prepare_run
    from v2xdet.engine.v2x_task import V2XTask

    args = parse_args(argv)
    # keep large freed tensors on the heap (see v2xdet.engine.allocator), before any model is built
    allocator = configure_allocator(not args.no_tune_allocator)
    if os.environ.get("RANK", "0") == "0":     # torchrun: one line, from the first process
        print(f"train: allocator {allocator}", file=sys.stderr)
    ctx = init_distributed(use_cuda=False if args.cpu else None)
    try:
        cfg, model_dir = prepare_run(args.hypes_yaml, args.model_dir, args.runs_root,
                                     parse_overrides(args.overrides), ctx)
        threads = args.num_threads
        if threads is None:
            threads = cfg["train_params"].get("num_threads", 0)
        if threads:
            torch.set_num_threads(threads)
        options = TrainOptions.from_config(
            cfg, num_workers=args.num_workers, save_every_steps=args.save_every_steps, seed=args.seed,
            amp=args.amp, strict=args.strict, deterministic=args.deterministic, progress=not args.no_progress,
            pretrained_model=str(args.pretrained_model) if args.pretrained_model else None)
        try:
            trainer = Trainer(V2XTask(cfg), model_dir, options, ctx=ctx)
        except BaseException:
            if args.hypes_yaml is not None and ctx.is_main:
                discard_unstarted_run(model_dir)    # a bad dataset path must not leave an empty run
            raise
        return trainer.fit()
    except (ConfigError, CheckpointError, FrameLoadError, OSError, ValueError) as exc:
        raise SystemExit(f"train: {exc}") from exc
    finally:
        shutdown(ctx)


if __name__ == "__main__":
    main()
