"""Simulated scenarios written in V2XSet's exact on-disk layout, through ``data_utils.formats``.

``generate_dataset`` writes::

    DIR/generation.yaml                  the parameters (written first, marked complete at the end)
    DIR/<split>/<scenario>/data_protocol.yaml
    DIR/<split>/<scenario>/<agent_id>/<timestamp>.pcd / .yaml
    DIR/stats.yaml                       realism statistics and timings

Scenario ``i`` (counted over all splits) is simulated from ``SeedSequence([seed, i])``, so a
scene does not depend on how many others there are or on the worker that made it, and the same
seed gives the same bytes. A folder that already holds something is never written into
silently: another dataset, or files this tool did not write, are refused; the same dataset is
written again only with ``overwrite``.
"""
from __future__ import annotations

import datetime as _dt
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from v2xdet.data_utils.formats import write_frame
from v2xdet.data_utils.formats.atomic import atomic_write_bytes
from v2xdet.data_utils.formats.frame_yaml import to_plain

from .presets import get_preset, preset_dict
from .stats import RealismStats
from .world import AgentFrame, FrameRecord, Scenario, WorldPreset

DEFAULT_SPLITS = {"train": 0.7, "validate": 0.15, "test": 0.15}
SPLIT_NAMES = ("train", "validate", "test")
FORMAT_VERSION = 1


class DatasetExistsError(ValueError):
    """The output folder already holds something this call must not overwrite."""


def parse_splits(text: str) -> dict[str, float]:
    """``"train=0.7,validate=0.15,test=0.15"`` (or ``"train,test"``: equal shares) to a dict."""
    out: dict[str, float] = {}
    for item in [t.strip() for t in text.split(",") if t.strip()]:
        name, _, share = item.partition("=")
        name = name.strip()
        if name not in SPLIT_NAMES:
            raise ValueError(f"--splits: unknown split {name!r}; expected names from {SPLIT_NAMES}")
        if name in out:
            raise ValueError(f"--splits: split {name!r} given twice")
        try:
            out[name] = float(share) if share else 1.0
        except ValueError:
            raise ValueError(f"--splits: share of {name!r} must be a number, got {share!r}") from None
    if not out:
        raise ValueError("--splits: give at least one split, e.g. 'train=0.7,validate=0.15,test=0.15'")
    if any(v <= 0 for v in out.values()):
        raise ValueError(f"--splits: shares must be positive, got {out}")
    total = sum(out.values())
    return {k: v / total for k, v in out.items()}


def split_counts(n_scenes: int, splits: dict[str, float]) -> dict[str, int]:
    """Scenes per split by largest remainder; every split gets one scene while there are enough."""
    names = list(splits)
    raw = np.array([splits[n] for n in names]) * n_scenes
    counts = np.floor(raw).astype(int)
    if n_scenes >= len(names):
        counts = np.maximum(counts, 1)
    while counts.sum() > n_scenes:
        counts[int(np.argmax(counts))] -= 1
    order = np.argsort(-(raw - np.floor(raw)), kind="stable")
    k = 0
    while counts.sum() < n_scenes:
        counts[order[k % len(names)]] += 1
        k += 1
    return dict(zip(names, counts.tolist(), strict=True))


def scenario_name(index: int) -> str:
    """A V2XSet-style folder name (``YYYY_MM_DD_HH_MM_SS``), one simulated minute per scene."""
    return (_dt.datetime(2030, 1, 1) + _dt.timedelta(minutes=index)).strftime("%Y_%m_%d_%H_%M_%S")


def frame_meta(agent: AgentFrame, record: FrameRecord, sizes: np.ndarray, ids: np.ndarray) -> dict:
    """The frame yaml of one agent (V2XSet keys; ``extent`` holds half sizes)."""
    vehicles = {}
    for v in agent.labels:
        length, width, height = sizes[v]
        pose = record.poses[v]
        vehicles[int(ids[v])] = {
            "location": [float(pose[0]), float(pose[1]), float(pose[2])],
            "center": [0.0, 0.0, float(height / 2)],
            "extent": [float(length / 2), float(width / 2), float(height / 2)],
            "angle": [float(pose[3]), float(pose[4]), float(pose[5])],
            "speed": float(record.speed_kmh[v]),
        }
    return {
        "RSU": bool(agent.is_rsu),
        "ego_speed": float(agent.ego_speed),
        "lidar_pose": [float(x) for x in agent.lidar_pose],
        "true_ego_pos": [float(x) for x in agent.true_ego_pos],
        "predicted_ego_pos": [float(x) for x in agent.predicted_ego_pos],
        "vehicles": vehicles,
    }


def protocol(scenario: Scenario, first: FrameRecord, seed: int, index: int) -> dict:
    """``data_protocol.yaml``: OpenCDA's layout, the LiDAR section of every agent."""
    p = scenario.preset
    cavs = [{"id": a.agent_id, "spawn_position": [float(x) for x in a.true_ego_pos],
             "sensing": {"perception": {"lidar": p.lidar.protocol()}}} for a in first.agents if not a.is_rsu]
    rsus = [{"id": a.agent_id, "spawn_position": [float(x) for x in a.lidar_pose],
             "sensing": {"perception": {"lidar": p.rsu_lidar.protocol()}}} for a in first.agents if a.is_rsu]
    return {
        "description": f"Simulated by v2xdet.data_utils.synthetic: preset {p.name}, seed {seed}, "
                       f"scene {index}",
        "world": {"fixed_delta_seconds": 0.05, "sync_mode": True, "seed": int(seed)},
        "scenario": {"single_cav_list": cavs, "rsu_list": rsus},
        "vehicle_base": {"sensing": {"perception": {"lidar": p.lidar.protocol()}}},
    }


def _dump(data: dict) -> bytes:
    return yaml.safe_dump(to_plain(data), default_flow_style=False, sort_keys=False).encode("utf-8")


def simulate_scene(out_dir: str | os.PathLike, split: str, index: int, seed: int, n_frames: int,
                   preset: WorldPreset, data: str = "binary",
                   preview: str | os.PathLike | None = None, cast_threads: int = 0) -> RealismStats:
    """Simulate scene ``index`` and write it under ``out_dir/split``; return its statistics."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    scenario = Scenario(preset, rng, n_frames, cast_threads=cast_threads)
    name = scenario_name(index)
    split_dir = Path(out_dir) / split
    fleet = scenario.traffic.fleet
    stats = RealismStats()
    record = None
    for record in scenario.frames():
        if record.timestamp == scenario.first_timestamp:
            (split_dir / name).mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(split_dir / name / "data_protocol.yaml",
                               _dump(protocol(scenario, record, seed, index)))
        for agent in record.agents:
            write_frame(split_dir, name, agent.agent_id, record.timestamp, agent.sweep.points,
                        frame_meta(agent, record, fleet.size, fleet.ids), data=data)
        stats.add(record, fleet.size)
    if preview is not None and record is not None:
        from .preview import render_frame
        render_frame(scenario, record, preview)
    return stats


def _check_out_dir(out: Path, params: dict, overwrite: bool) -> None:
    """Refuse a folder holding another dataset or foreign files; clear our own with ``overwrite``."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetExistsError(f"{out} exists and is not a folder")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    gen = out / "generation.yaml"
    if not gen.is_file():
        raise DatasetExistsError(
            f"{out} is not empty ({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}) and has no "
            "generation.yaml, so it is not a dataset written by this tool; refusing to write into it: "
            "choose a new or empty folder")
    try:
        old = yaml.safe_load(gen.read_text())
        old_params = old["parameters"]
    except (yaml.YAMLError, KeyError, TypeError) as err:
        raise DatasetExistsError(f"{gen} is unreadable ({err}); refusing to write into {out}") from None
    ours = set(old_params.get("splits", {})) | {"generation.yaml", "stats.yaml"}
    foreign = [e for e in entries if e not in ours and not e.startswith(".")]
    if foreign:
        raise DatasetExistsError(f"{out} holds files this tool did not write ({', '.join(foreign[:5])}); "
                                 "refusing to write into it")
    if old_params != params:
        changed = sorted(k for k in set(old_params) | set(params) if old_params.get(k) != params.get(k))
        if not overwrite:
            raise DatasetExistsError(
                f"{out} already holds a different synthetic dataset (differing: {', '.join(changed)}); "
                "refusing to overwrite it: use overwrite (--overwrite) to replace it, or another folder")
    elif not overwrite:
        raise DatasetExistsError(
            f"{out} already holds this dataset (same parameters, status {old.get('status')!r}); "
            "use overwrite (--overwrite) to write it again")
    for e in entries:
        path = out / e
        if path.is_dir():
            shutil.rmtree(path)
        elif e in ours:
            path.unlink()


# Worker processes are ours: glibc keeps large blocks on the heap there (see engine.allocator,
# which would import torch) and BLAS stays on one thread. glibc reads these at process start.
_WORKER_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30), "OPENBLAS_NUM_THREADS": "1"}


def _worker_pool(n: int):
    """A pool of ``n`` spawned processes started with ``_WORKER_ENV`` (the parent's is restored)."""
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    try:
        return multiprocessing.get_context("spawn").Pool(n)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _scene_job(args) -> RealismStats:
    return simulate_scene(*args)


def generate_dataset(out_dir: str | os.PathLike, n_scenes: int, n_frames: int, seed: int,
                     preset: str = "v2xset", splits: dict[str, float] | None = None,
                     cavs: tuple[int, int] | None = None, rsus: tuple[int, int] | None = None,
                     overwrite: bool = False, data: str = "binary", workers: int = 1,
                     preview: str | os.PathLike | None = None,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Simulate ``n_scenes`` scenarios of ``n_frames`` frames and write them; return the statistics.

    ``splits`` maps split names to shares (default 70/15/15 train/validate/test); ``cavs`` /
    ``rsus`` override the preset's agents per scenario (inclusive ranges). The statistics are
    also written to ``out_dir/stats.yaml``.
    """
    if int(n_scenes) != n_scenes or n_scenes < 1:
        raise ValueError(f"n_scenes must be a positive integer, got {n_scenes}")
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers}")
    world = get_preset(preset, cavs=cavs, rsus=rsus)
    splits = dict(DEFAULT_SPLITS if splits is None else splits)
    counts = split_counts(int(n_scenes), splits)
    out = Path(out_dir)
    params = {"format_version": FORMAT_VERSION, "preset": preset, "world": preset_dict(world),
              "scenes": int(n_scenes), "frames": int(n_frames), "seed": int(seed),
              "splits": {k: int(v) for k, v in counts.items()}, "data": data}
    _check_out_dir(out, params, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "generation.yaml", _dump({"status": "incomplete", "parameters": params}))
    # parallel scenes share the cores: each casts its rays on its share of them
    cast_threads = 0 if workers == 1 else max(1, (os.cpu_count() or 1) // workers)
    jobs, index = [], 0
    for split, count in counts.items():
        for _ in range(count):
            jobs.append((out, split, index, int(seed), int(n_frames), world, data,
                         preview if index == 0 else None, cast_threads))
            index += 1
    start = time.perf_counter()
    total = RealismStats()
    if workers == 1:
        results = map(_scene_job, jobs)
    else:
        pool = _worker_pool(min(workers, len(jobs)))
        results = pool.imap(_scene_job, jobs)
    try:
        for k, (job, stats) in enumerate(zip(jobs, results, strict=True)):
            total.merge(stats)
            if progress is not None:
                progress(f"scene {k + 1}/{len(jobs)} ({job[1]}/{scenario_name(job[2])}): "
                         f"{stats.frames} frames, {len(stats.points)} agent frames, "
                         f"{time.perf_counter() - start:.1f} s elapsed")
    finally:
        if workers > 1:
            pool.close()
            pool.join()
    elapsed = time.perf_counter() - start
    summary = total.summary()
    rate = 1.0 / elapsed if elapsed > 0 else 0.0
    summary["timing"] = {"seconds": round(elapsed, 2), "workers": int(workers),
                         "frames_per_second": round(total.frames * rate, 3),
                         "agent_frames_per_second": round(len(total.points) * rate, 3)}
    atomic_write_bytes(out / "stats.yaml", _dump(summary))
    atomic_write_bytes(out / "generation.yaml", _dump({"status": "complete", "parameters": params}))
    return summary
