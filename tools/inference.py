"""Run a trained model over a split: AP at 0.3/0.5/0.7, latency by stage, bytes sent, pictures.

    python tools/inference.py --model_dir runs/<name>_<time> [--fusion_method late] [--save_npy]
        [--save_vis [--vis_3d] [--animation gif]] [--pose_noise 0.2 0.2] [--delay_ms 100]

One checkpoint can be scored under perfect and noisy settings: each non-default setting writes
its own ``eval_<tag>.yaml`` (and ``npy_<tag>/``, ``vis_<tag>/``) next to ``eval.yaml``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

FUSION_METHODS = ("none", "late", "early", "intermediate")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--model_dir", type=Path, required=True, help="a run folder written by tools/train.py")
    add("--fusion_method", choices=FUSION_METHODS,
        help="how agents cooperate (default: the config's); must suit the model")
    add("--dataset_dir", type=Path, help="split folder to run on (default: the config's)")
    add("--split", choices=("validate", "test"), default="validate",
        help="config split whose folder is used: validate_dir (default) or test_dir")
    add("--checkpoint", default="best", help="best (default; else the latest), latest, or a path")
    add("--save_npy", action="store_true", help="write <frame>.npz per frame (tools/eval_ap.py)")
    add("--save_vis", action="store_true", help="write a BEV PNG per frame")
    add("--vis_3d", action="store_true", help="also render a 3D PNG per frame off-screen (open3d)")
    add("--show_vis", action="store_true", help="open an open3d window per frame (needs a display)")
    add("--animation", choices=("gif", "mp4"), help="also join the BEV PNGs into an animation")
    add("--vis_every", type=int, default=1, help="draw every N-th frame")
    add("--global_sort_detections", action="store_true",
        help="eval yaml's OpenCOOD keys hold the globally re-sorted AP (both are printed)")
    add("--pose_noise", type=float, nargs=2, metavar=("STD_M", "STD_DEG"),
        help="localization error of the shared poses (e.g. 0.2 0.2; 0 0 turns it off)")
    add("--delay_ms", type=float, help="delay of the other agents' data (e.g. 100; 0 turns it off)")
    add("--score_threshold", type=float,
        help="detections below this score are dropped (default: the config's target_args.score_threshold)")
    add("--num_workers", type=int, default=0, help="data-loading processes")
    add("--num_threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    add("--max_frames", type=int, help="stop after this many frames")
    add("--strict", action="store_true", help="stop at the first frame that fails to load")
    add("--no_tune_allocator", action="store_true",
        help="keep glibc's malloc defaults (default: tune it for large tensors, v2xdet.engine.allocator)")
    add("--cpu", action="store_true", help="run on CPU even when CUDA is available")
    add("--no_progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    import torch

    from v2xdet.config import ConfigError
    from v2xdet.engine import CheckpointError, configure_allocator
    from v2xdet.engine.data import FrameLoadError
    from v2xdet.engine.inference import InferenceOptions, run_inference
    from v2xdet.engine.v2x_task import V2XTask, inference_config
    from v2xdet.visualization import RenderUnavailableError

    args = parse_args(argv)
    # keep large freed tensors on the heap (see v2xdet.engine.allocator), before any model is built
    allocator = configure_allocator(not args.no_tune_allocator)
    print(f"inference: allocator {allocator}", file=sys.stderr)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    try:
        cfg, split, tag = inference_config(args.model_dir, args.fusion_method, args.dataset_dir, args.split,
                                           args.pose_noise, args.delay_ms, args.score_threshold)
        drawing = args.save_vis or args.vis_3d or args.show_vis
        task = V2XTask(cfg, keep_points=drawing or cfg["fusion"]["strategy"] == "early")
        options = InferenceOptions(
            checkpoint=args.checkpoint, split=split, save_npy=args.save_npy, save_vis=args.save_vis,
            vis_3d=args.vis_3d, show_vis=args.show_vis, animation=args.animation, vis_every=args.vis_every,
            global_sort=args.global_sort_detections, num_workers=args.num_workers, strict=args.strict,
            tag=tag, max_frames=args.max_frames, progress=not args.no_progress)
        return run_inference(task, args.model_dir, options, device=device)
    except (ConfigError, CheckpointError, FrameLoadError, RenderUnavailableError, OSError, ValueError) as exc:
        raise SystemExit(f"inference: {exc}") from exc


if __name__ == "__main__":
    main()
