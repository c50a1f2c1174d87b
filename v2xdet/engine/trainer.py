"""The training loop: exact resume, atomic checkpoints, DDP, AMP, AP validation, logging.

A run lives in one model directory::

    config.yaml          the resolved config (written by the caller, see :mod:`v2xdet.engine.rundir`)
    latest.pth           the newest full training state (every ``save_every_steps`` and every epoch)
    net_epoch<N>.pth     the state after epoch N (every ``save_freq`` epochs)
    best.pth             the state with the best validation AP@0.7
    train.log            plain-text log;  events.out.tfevents.*  tensorboard scalars

A checkpoint holds the model, optimizer, scheduler, AMP scaler, epoch, step, position inside the
epoch, the best metric and every rank's random states. Data order comes from a sampler shuffled
by ``seed + epoch`` and each sample is drawn under a seed of (seed, epoch, index), so a run that
is stopped and resumed from ``latest.pth`` takes the same steps as one that never stopped.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .checkpoint import (
    BEST,
    LATEST,
    CheckpointError,
    atomic_save,
    epoch_checkpoint_name,
    find_resume_checkpoint,
    load_checkpoint,
    load_pretrained,
    load_state_strict,
    model_state,
)
from .data import FailedFrame, ResumableSampler, SeededSamples, make_loader
from .distributed import DistContext, barrier, gather_to_main, sum_over_ranks
from .optim import build_optimizer, build_scheduler
from .rng import get_rng_state, rank_seed, seed_everything, set_rng_state
from .runlog import RunLog
from .task import Task, ap_values

CHECKPOINT_FORMAT = "v2xdet-train-checkpoint/1"
BEST_METRIC = "ap_70"


@dataclass
class TrainOptions:
    """Loop settings; :meth:`from_config` reads them from ``train_params`` (OpenCOOD's key names)."""
    epochs: int
    batch_size: int
    eval_freq: int = 1            # validate (AP) every N epochs; 0: never
    save_freq: int = 1            # write net_epoch<N>.pth every N epochs
    save_every_steps: int = 0     # also refresh latest.pth every N optimizer steps; 0: epoch ends only
    num_workers: int = 0
    seed: int = 0
    amp: bool = False             # float16 autocast + GradScaler; only honoured on CUDA
    strict: bool = False          # stop at the first frame that fails to load
    deterministic: bool = False   # torch.use_deterministic_algorithms (bitwise resume on GPU)
    find_unused_parameters: bool = False
    progress: bool = True         # tqdm bar per epoch
    pretrained_model: str | None = None  # warm start a new run from this checkpoint's matching weights

    _CONFIG_KEYS = {"epochs": ("epoches", "epochs"), "batch_size": ("batch_size",),
                    "eval_freq": ("eval_freq",), "save_freq": ("save_freq",),
                    "save_every_steps": ("save_every_steps",), "num_workers": ("num_workers",),
                    "seed": ("seed",)}

    @classmethod
    def from_config(cls, cfg: dict, **overrides) -> TrainOptions:
        """Options from ``cfg['train_params']`` (``epoches`` as OpenCOOD spells it), then overrides."""
        params = cfg.get("train_params") or {}
        values = {}
        for name, keys in cls._CONFIG_KEYS.items():
            for key in keys:
                if key in params:
                    values[name] = params[key]
                    break
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("epochs", "batch_size"):
            if name not in values:
                raise ValueError(f"train_params.{cls._CONFIG_KEYS[name][0]} is required")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training options {unknown}")
        options = cls(**values)
        options.check()
        return options

    def check(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"train_params.{name} must be a positive integer, got {value!r}")
        for name in ("eval_freq", "save_freq", "save_every_steps", "num_workers", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"train_params.{name} must be a non-negative integer, got {value!r}")
        if self.save_freq < 1:
            raise ValueError(f"train_params.save_freq must be >= 1, got {self.save_freq}")


@dataclass
class TrainState:
    epoch: int = 0             # completed epochs
    global_step: int = 0       # optimizer steps taken
    batch_in_epoch: int = 0    # loader batches consumed in the current epoch
    best_metric: float = -math.inf
    best_epoch: int = -1
    skipped_frames: int = 0    # frames that failed to load (all ranks), whole run
    skipped_in_epoch: int = 0  # the same, current epoch


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


class Trainer:
    """Train ``task``'s model in ``model_dir``, resuming from its latest checkpoint if there is one.

    ``on_step_end(trainer)`` runs after every optimizer step (and after that step's checkpoint).
    """

    def __init__(self, task: Task, model_dir, options: TrainOptions, ctx: DistContext | None = None,
                 on_step_end: Callable[[Trainer], None] | None = None, log_console: bool = True):
        self.task, self.cfg = task, task.cfg
        self.model_dir = Path(model_dir)
        self.options = options
        self.ctx = ctx or DistContext()
        self.on_step_end = on_step_end
        self.device = self.ctx.device
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self.log = RunLog(self.model_dir, enabled=self.ctx.is_main, console=log_console)
        try:
            self._build(task, options)
        except BaseException:
            self.log.close()
            raise

    def _build(self, task: Task, options: TrainOptions) -> None:
        """Model, loss, optimizer, schedule, data, then the checkpoint to resume from (if any)."""
        self.amp = options.amp and self.device.type == "cuda"
        if options.amp and not self.amp:
            self.log.warning("--amp ignored: mixed precision is used only on CUDA devices")
        if options.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's reproducibility condition
            torch.use_deterministic_algorithms(True, warn_only=False)

        seed_everything(options.seed)  # identical initial weights on every rank
        self.model = task.build_model().to(self.device)
        self.loss_fn = task.build_loss()
        if "optimizer" not in self.cfg:
            raise ValueError("config has no 'optimizer' section (core_method, lr, args)")
        self.optimizer = build_optimizer(self.cfg["optimizer"], self.model.parameters())
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.state = TrainState()

        self.train_data = SeededSamples(task.build_dataset("train", train=True), options.seed, options.strict)
        if len(self.train_data) == 0:
            raise ValueError("the training dataset is empty")
        self.sampler = ResumableSampler(self.train_data, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
                                        shuffle=True, seed=options.seed)
        steps = math.ceil(self.sampler.num_samples / options.batch_size)
        schedule = build_scheduler(self.cfg.get("lr_scheduler"), self.optimizer, options.epochs, steps)
        self.scheduler, self.scheduler_per_step = schedule.scheduler, schedule.per_step
        self.val_data = None
        if options.eval_freq and self.ctx.is_main:
            self.val_data = SeededSamples(task.build_dataset("validate", train=False), options.seed,
                                          options.strict)

        seed_everything(rank_seed(options.seed, self.ctx.rank))  # each rank its own dropout stream
        self.resumed_from = self._resume()
        if self.resumed_from is None and options.pretrained_model:
            report = load_pretrained(self.model, options.pretrained_model)
            self.log.info(f"warm start from {options.pretrained_model}: {len(report['loaded'])} tensors "
                          f"loaded, {len(report['skipped'])} kept their initialization, "
                          f"{len(report['unused'])} unused")
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=ids,
                                                 find_unused_parameters=options.find_unused_parameters)

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self) -> dict | None:
        """The full training state (a collective: every rank's RNG state is gathered)."""
        rng = gather_to_main(self.ctx, get_rng_state())
        if not self.ctx.is_main:
            return None
        return {"format": CHECKPOINT_FORMAT, "model": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "state": asdict(self.state), "rng": rng,
                "world_size": self.ctx.world_size}

    def _save(self, names: list[str]) -> None:
        ckpt = self._checkpoint()
        if ckpt is not None:
            for name in names:
                atomic_save(ckpt, self.model_dir / name)
        barrier(self.ctx)

    def _resume(self) -> Path | None:
        path = find_resume_checkpoint(self.model_dir)
        if path is None:
            return None
        ckpt = load_checkpoint(path, map_location=self.device)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a v2xdet training checkpoint "
                                  f"(format {ckpt.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
        load_state_strict(self.model, model_state(ckpt, path), path)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["state"])
        rng = ckpt["rng"]
        if len(rng) != self.ctx.world_size:
            self.log.warning(f"{path} was written by {len(rng)} process(es), now {self.ctx.world_size}: "
                             "the run continues but not bit-for-bit as the original would have")
        set_rng_state(_to_cpu(rng[self.ctx.rank % len(rng)]))
        self.log.info(f"resumed from {path}: epoch {self.state.epoch}, step {self.state.global_step}, "
                      f"batch {self.state.batch_in_epoch} of the epoch")
        return path

    # ------------------------------------------------------------------ loop
    def fit(self) -> TrainState:
        """Train to ``options.epochs``; return the final state."""
        opts = self.options
        self.log.info(f"training {type(unwrap(self.model)).__name__} in {self.model_dir} on {self.device} "
                      f"x{self.ctx.world_size}: {len(self.train_data)} frames, batch {opts.batch_size} per "
                      f"process, epochs {self.state.epoch}->{opts.epochs}")
        try:
            while self.state.epoch < opts.epochs:
                failed = self._train_epoch()
                self._end_epoch(failed)
        finally:
            self.log.flush()
        self.log.info(f"done: {self.state.global_step} steps, best {BEST_METRIC} "
                      f"{self.state.best_metric:.4f} at epoch {self.state.best_epoch}, "
                      f"{self.state.skipped_frames} frame(s) skipped")
        self.log.close()
        return self.state

    def _train_epoch(self) -> list[FailedFrame]:
        opts, state = self.options, self.state
        epoch = state.epoch
        self.train_data.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.sampler.set_start(min(state.batch_in_epoch * opts.batch_size, self.sampler.num_samples))
        loader = make_loader(self.train_data, self.sampler, opts.batch_size, self.task.collate,
                             opts.num_workers, epoch, pin_memory=self.device.type == "cuda")
        batches = math.ceil(self.sampler.num_samples / opts.batch_size)
        bar = tqdm(total=batches, initial=state.batch_in_epoch, desc=f"epoch {epoch + 1}/{opts.epochs}",
                   disable=not (self.ctx.is_main and opts.progress), dynamic_ncols=True)
        self.model.train()
        failed, frames, start = [], 0, time.perf_counter()
        for loaded in loader:
            state.batch_in_epoch += 1
            for bad in loaded.failed:
                self.log.warning(f"skipped {bad.name} (index {bad.index}): {bad.error}")
            failed.extend(loaded.failed)
            empty, n_failed = sum_over_ranks(self.ctx, [loaded.batch is None, len(loaded.failed)])
            state.skipped_frames += int(n_failed)
            state.skipped_in_epoch += int(n_failed)
            if empty:                 # a rank has no frame left in this batch: every rank skips it
                bar.update(1)
                continue
            total, terms = self._step(self.task.to_device(loaded.batch, self.device))
            frames += loaded.num_frames
            fps = frames / max(time.perf_counter() - start, 1e-9)
            lr = self._last_lr
            self.log.scalars({"loss": total, **terms, "lr": lr}, state.global_step, prefix="train/")
            bar.set_postfix(loss=f"{total:.4f}", fps=f"{fps:.1f}")
            bar.update(1)
            if opts.save_every_steps and state.global_step % opts.save_every_steps == 0:
                self._save([LATEST])
            if self.on_step_end is not None:
                self.on_step_end(self)
        bar.close()
        if frames:
            self.log.scalars({"fps": frames / max(time.perf_counter() - start, 1e-9)}, epoch + 1, "train/")
        return failed

    def _step(self, batch: dict) -> tuple[float, dict]:
        self._last_lr = self.optimizer.param_groups[0]["lr"]    # the LR this step uses
        with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
            output = self.model(batch)
            total, terms = self.loss_fn(output, batch)
        if not torch.isfinite(total.detach()).all() and not self.amp:
            raise FloatingPointError(f"loss is {total.item()} at epoch {self.state.epoch + 1}, step "
                                     f"{self.state.global_step + 1} (terms {_floats(terms)}): "
                                     "training diverged")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler_per_step:
            self.scheduler.step()
        self.state.global_step += 1
        return float(total.detach()), _floats(terms)

    def _end_epoch(self, failed: list[FailedFrame]) -> None:
        state, opts = self.state, self.options
        if state.skipped_in_epoch:
            names = ", ".join(f.name for f in failed[:10]) + (" ..." if len(failed) > 10 else "")
            self.log.warning(f"epoch {state.epoch + 1}: {state.skipped_in_epoch} frame(s) failed to load and "
                             f"were skipped (this process: {names or 'before the resume'}); --strict stops "
                             "at the first one")
        state.skipped_in_epoch = 0
        if not self.scheduler_per_step:
            self.scheduler.step()
        state.epoch += 1
        state.batch_in_epoch = 0
        names = [LATEST]
        if state.epoch % opts.save_freq == 0 or state.epoch == opts.epochs:
            names.append(epoch_checkpoint_name(state.epoch))
        if opts.eval_freq and (state.epoch % opts.eval_freq == 0 or state.epoch == opts.epochs):
            improved = False
            if self.ctx.is_main:
                metrics = self.validate()
                self.log.scalars(metrics, state.epoch, prefix="val/")
                shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
                self.log.info(f"epoch {state.epoch}: {shown}")
                if metrics[BEST_METRIC] > state.best_metric:
                    state.best_metric, state.best_epoch = metrics[BEST_METRIC], state.epoch
                    improved = True
            if gather_to_main(self.ctx, improved)[0]:
                names.append(BEST)
        self._save(names)
        self.log.flush()

    @torch.no_grad()
    def validate(self) -> dict:
        """Loss and AP@0.3/0.5/0.7 on the validation split (main process, unwrapped model)."""
        model = unwrap(self.model)
        model.eval()
        evaluator = self.task.new_evaluator()
        sampler = ResumableSampler(self.val_data, num_replicas=1, rank=0, shuffle=False)
        loader = make_loader(self.val_data, sampler, self.options.batch_size, self.task.collate,
                             self.options.num_workers, 0, pin_memory=self.device.type == "cuda")
        losses, skipped = [], 0
        for loaded in tqdm(loader, desc="validate", leave=False,
                           disable=not (self.ctx.is_main and self.options.progress)):
            for bad in loaded.failed:
                self.log.warning(f"validation: skipped {bad.name} (index {bad.index}): {bad.error}")
            skipped += len(loaded.failed)
            if loaded.batch is None:
                continue
            batch = self.task.to_device(loaded.batch, self.device)
            with torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp):
                output = model(batch)
                total, _ = self.loss_fn(output, batch)
            losses.append(float(total) * loaded.num_frames)
            for frame in self.task.detections(output, batch):
                evaluator.add_frame(frame.pred_corners, frame.pred_scores, frame.gt_corners)
        model.train()
        if skipped:
            self.log.warning(f"validation: {skipped} frame(s) failed to load and were skipped")
        frames = len(self.val_data) - skipped
        metrics = ap_values(evaluator.summary())
        metrics["loss"] = sum(losses) / frames if frames else math.nan
        return metrics


def _floats(terms: dict) -> dict:
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in terms.items()}


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    return obj
