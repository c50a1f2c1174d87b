"""Inference over a split: detections, AP (per-frame and global order), latency, bytes sent, pictures.

For each frame (batch size 1, dataset order) the runner times three stages: data (waiting for
the loader), model forward, and postprocess (decode, NMS, late merge); it feeds the evaluator,
and optionally writes ``<index>.npz`` (``pred_corners``, ``pred_scores``, ``gt_corners``: the
format ``tools/eval_ap.py`` reads, file names in dataset order), BEV PNGs, off-screen 3D PNGs and
an animation of the BEV pictures. The AP summary goes to ``eval.yaml`` in the model dir
(OpenCOOD's keys; ``eval_global_sort.yaml`` when the global order is primary; a ``_<tag>`` suffix
for non-default settings so perfect and noisy runs of one checkpoint sit side by side).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import (
    BEST,
    CheckpointError,
    find_resume_checkpoint,
    load_checkpoint,
    load_state_strict,
    model_state,
)
from .data import ResumableSampler, SeededSamples, make_loader
from .files import atomic_open
from .task import Task, ap_values

STAGES = ("data", "forward", "postprocess")


@dataclass
class InferenceOptions:
    checkpoint: str = "best"       # best (falls back to the latest) | latest | a .pth path
    split: str = "validate"        # the dataset split the task builds
    save_npy: bool = False         # <out>/npy[_tag]/<index>.npz per frame
    save_vis: bool = False         # <out>/vis[_tag]/<index>_bev.png per frame
    vis_3d: bool = False           # also <index>_3d.png rendered off-screen with open3d
    show_vis: bool = False         # an open3d window per frame (needs a display)
    animation: str | None = None   # "gif" or "mp4": the BEV pictures as one animation
    vis_every: int = 1             # draw every N-th frame
    global_sort: bool = False      # eval yaml's OpenCOOD keys hold the globally re-sorted AP
    num_workers: int = 0
    strict: bool = False           # stop at the first frame that fails to load
    tag: str = ""                  # suffix of output names (e.g. "pose0.2-0.2_delay100")
    max_frames: int | None = None  # stop after this many frames (quick looks)
    progress: bool = True


@dataclass
class InferenceReport:
    summary: dict
    ap: dict                       # per-frame order (OpenCOOD's)
    ap_global: dict                # global re-sort
    frames: int
    skipped: list = field(default_factory=list)
    latency_ms: dict = field(default_factory=dict)     # mean per frame by stage, and total
    bytes_per_agent: float | None = None               # mean bytes one non-ego agent sends per frame
    bytes_per_frame: float | None = None               # mean bytes all agents send per frame
    checkpoint: Path | None = None
    eval_path: Path | None = None
    npy_dir: Path | None = None
    vis_dir: Path | None = None

    def format(self) -> str:
        """Plain-text summary: AP in both orders, latency by stage, bytes sent."""
        lines = [f"{self.frames} frames from {self.checkpoint}"
                 + (f", {len(self.skipped)} skipped (failed to load)" if self.skipped else "")]
        head = "ranking     " + "".join(f"  AP@{t / 100:.1f}" for t in (30, 50, 70))
        lines += [head, "per-frame   " + "".join(f"  {self.ap[k]:.4f}" for k in ("ap_30", "ap_50", "ap_70")),
                  "global      " + "".join(f"  {self.ap_global[k]:.4f}" for k in ("ap_30", "ap_50", "ap_70"))]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.latency_ms.items())
        lines.append(f"latency per frame (ms): {stages}")
        if self.bytes_per_agent is None:
            lines.append("bytes sent: n/a for this task")
        else:
            lines.append(f"bytes sent per frame: {self.bytes_per_agent:,.0f} per cooperating agent, "
                         f"{self.bytes_per_frame:,.0f} in all")
        return "\n".join(lines)


def resolve_checkpoint(model_dir, which: str = "best") -> Path:
    """``best.pth`` (else the latest checkpoint), ``latest``, or an explicit file."""
    model_dir = Path(model_dir)
    if which not in ("best", "latest"):
        path = Path(which)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        return path
    if which == "best" and (model_dir / BEST).is_file():
        return model_dir / BEST
    path = find_resume_checkpoint(model_dir)
    if path is None:
        raise FileNotFoundError(f"{model_dir} holds no checkpoint (best.pth, latest.pth or net_epoch<N>.pth)")
    return path


def load_model(task: Task, path, device: torch.device) -> torch.nn.Module:
    """The task's model with the weights of checkpoint ``path`` (strict), in eval mode."""
    model = task.build_model()
    load_state_strict(model, model_state(load_checkpoint(path, map_location="cpu"), path), path)
    return model.to(device).eval()


def save_frame_npz(path, pred_corners, pred_scores, gt_corners, sample_id: str = "") -> Path:
    """One frame's arrays as ``.npz`` (atomic), the format ``tools/eval_ap.py`` reads."""
    with atomic_open(path) as f:
        np.savez(f, pred_corners=np.asarray(pred_corners, np.float32).reshape(-1, 8, 3),
                 pred_scores=np.asarray(pred_scores, np.float32).reshape(-1),
                 gt_corners=np.asarray(gt_corners, np.float32).reshape(-1, 8, 3),
                 sample_id=np.array(sample_id))
    return Path(path)


def _suffix(tag: str) -> str:
    return f"_{tag}" if tag else ""


def run_inference(task: Task, model_dir, options: InferenceOptions, device: torch.device | None = None,
                  log=print) -> InferenceReport:
    """Run ``task``'s model from ``model_dir`` over ``options.split``; write the outputs; report."""
    from v2xdet.evaluation import format_table, write_eval_yaml

    model_dir = Path(model_dir)
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if options.vis_every < 1:
        raise ValueError(f"vis_every must be >= 1, got {options.vis_every}")
    if options.animation and not options.save_vis:
        raise ValueError("an animation is made of the BEV pictures: add --save_vis")
    if options.animation not in (None, "gif", "mp4"):
        raise ValueError(f"animation must be 'gif' or 'mp4', got {options.animation!r}")
    drawing = options.save_vis or options.vis_3d or options.show_vis
    if options.show_vis:
        from v2xdet.visualization import RenderUnavailableError, has_display
        if not has_display():
            raise RenderUnavailableError("--show_vis needs a display (DISPLAY / WAYLAND_DISPLAY unset); use "
                                         "--save_vis to write pictures instead")
    ckpt = resolve_checkpoint(model_dir, options.checkpoint)
    model = load_model(task, ckpt, device)
    dataset = SeededSamples(task.build_dataset(options.split, train=False), seed=0, strict=options.strict)
    if len(dataset) == 0:
        raise ValueError(f"the {options.split} split is empty")
    loader = make_loader(dataset, ResumableSampler(dataset, shuffle=False), 1, task.collate,
                         options.num_workers, 0, pin_memory=device.type == "cuda")
    npy_dir = _out_dir(model_dir, "npy", options.tag) if options.save_npy else None
    vis_dir = _out_dir(model_dir, "vis", options.tag) if (options.save_vis or options.vis_3d) else None

    evaluator = task.new_evaluator()
    times = dict.fromkeys(STAGES, 0.0)
    frames, skipped, index = 0, [], 0
    sent, agent_count, bytes_known = 0.0, 0, True
    bev_paths = []
    total = len(dataset) if options.max_frames is None else min(len(dataset), options.max_frames)
    bar = tqdm(total=total, desc="inference", disable=not options.progress, dynamic_ncols=True)
    iterator = iter(loader)
    while frames + len(skipped) < total:
        start = time.perf_counter()
        try:
            loaded = next(iterator)
        except StopIteration:
            break
        times["data"] += time.perf_counter() - start
        bar.update(1)
        for bad in loaded.failed:
            log(f"skipped {bad.name} (index {bad.index}): {bad.error}")
        skipped.extend(loaded.failed)
        if loaded.batch is None:
            index += 1
            continue
        batch = task.to_device(loaded.batch, device)
        start = _sync(device)
        with torch.no_grad():
            output = model(batch)
        times["forward"] += _sync(device) - start
        start = time.perf_counter()
        results = task.detections(output, batch)
        times["postprocess"] += time.perf_counter() - start
        comm = task.comm_bytes(model, output, batch) if bytes_known else None
        bytes_known = comm is not None
        for k, frame in enumerate(results):
            evaluator.add_frame(frame.pred_corners, frame.pred_scores, frame.gt_corners)
            if npy_dir is not None:
                save_frame_npz(npy_dir / f"{index + k:06d}.npz", frame.pred_corners, frame.pred_scores,
                               frame.gt_corners, frame.frame_id)
            if comm is not None:
                sent += sum(comm[k].values())
                agent_count += len(comm[k])
        if drawing and index % options.vis_every == 0:
            bev_paths += _draw(task, batch, results, index, vis_dir, options)
        frames += len(results)
        index += len(results)
    bar.close()
    if frames == 0:
        raise ValueError(f"no frame of the {options.split} split could be evaluated ({len(skipped)} failed)")

    summary = evaluator.summary()
    eval_path = model_dir / f"eval{'_global_sort' if options.global_sort else ''}{_suffix(options.tag)}.yaml"
    write_eval_yaml(eval_path, summary, options.global_sort)
    if options.animation and bev_paths:
        from v2xdet.visualization import write_animation
        log(f"wrote {write_animation(bev_paths, vis_dir / f'sequence.{options.animation}', fps=10)}")
    latency = {k: 1000 * v / frames for k, v in times.items()}
    latency["total"] = sum(latency.values())
    report = InferenceReport(
        summary=summary, ap=ap_values(summary), ap_global=ap_values(summary, global_sort=True), frames=frames,
        skipped=skipped, latency_ms=latency,
        bytes_per_agent=(sent / agent_count if agent_count else 0.0) if bytes_known else None,
        bytes_per_frame=sent / frames if bytes_known else None,
        checkpoint=ckpt, eval_path=eval_path, npy_dir=npy_dir, vis_dir=vis_dir)
    log(format_table(summary))
    log(report.format())
    log(f"wrote {eval_path}")
    return report


def _out_dir(model_dir: Path, name: str, tag: str) -> Path:
    path = model_dir / f"{name}{_suffix(tag)}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sync(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _draw(task: Task, batch: dict, results: list, index: int, vis_dir: Path | None,
          options: InferenceOptions) -> list[Path]:
    from v2xdet.visualization import draw_3d, draw_bev, show_3d
    written = []
    for k, scene in enumerate(task.scenes(batch, results)):
        if options.save_vis:
            path = vis_dir / f"{index + k:06d}_bev.png"
            draw_bev(scene, path, view_range=scene.view_range)
            written.append(path)
        if options.vis_3d:
            draw_3d(scene, vis_dir / f"{index + k:06d}_3d.png")
        if options.show_vis:
            show_3d(scene)
    return written


def setting_tag(fusion_method: str | None = None, pose_noise=None, delay_ms: float | None = None,
                dataset_dir=None, score_threshold: float | None = None) -> str:
    """A short file-name tag for non-default inference settings (empty for the defaults)."""
    parts = []
    if fusion_method:
        parts.append(f"fusion-{fusion_method}")
    if pose_noise is not None:
        parts.append(f"pose{pose_noise[0]:g}m-{pose_noise[1]:g}deg")
    if delay_ms is not None:
        parts.append(f"delay{delay_ms:g}ms")
    if dataset_dir:
        parts.append(Path(dataset_dir).name)
    if score_threshold is not None:
        parts.append(f"score{score_threshold:g}")
    return "_".join(parts)


__all__ = ["CheckpointError", "InferenceOptions", "InferenceReport", "load_model", "resolve_checkpoint",
           "run_inference", "save_frame_npz", "setting_tag"]
