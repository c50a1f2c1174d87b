"""Optimizer and learning-rate scheduler from the config, through explicit name tables.

Config keys (OpenCOOD's)::

    optimizer:    {core_method: Adam | AdamW | SGD, lr: 0.002, args: {eps: 1e-10, weight_decay: 1e-4}}
    lr_scheduler: {core_method: multistep, step_size: [10, 15], gamma: 0.1}   # MultiStepLR
                  {core_method: step, step_size: 10, gamma: 0.1}              # StepLR
                  {core_method: exponential, gamma: 0.95}                      # ExponentialLR
                  {core_method: cosineannealwarm, epoches: 60, warmup_lr: 2e-4, warmup_epoches: 5,
                   lr_min: 2e-5}     # linear warm-up then cosine, per iteration (OpenCOOD's)

``step``, ``multistep`` and ``exponential`` step once per epoch, ``cosineannealwarm`` once per
iteration, as in OpenCOOD (where it is timm's ``CosineLRScheduler`` with ``t_in_epochs=False``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def _require(cfg: dict, key: str, section: str, types, what: str):
    if key not in cfg:
        raise ValueError(f"{section}.{key} is required ({what})")
    value = cfg[key]
    if not isinstance(value, types) or isinstance(value, bool):
        raise ValueError(f"{section}.{key} must be {what}, got {value!r}")
    return value


def build_optimizer(cfg: dict, params) -> torch.optim.Optimizer:
    """Optimizer named by ``cfg['core_method']`` with ``lr`` and extra ``args``."""
    name = str(cfg.get("core_method", "")).lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer.core_method must be one of {sorted(OPTIMIZERS)}, "
                         f"got {cfg.get('core_method')!r}")
    lr = _require(cfg, "lr", "optimizer", (int, float), "a positive number")
    args = dict(cfg.get("args") or {})
    try:
        return OPTIMIZERS[name](params, lr=float(lr), **args)
    except TypeError as exc:
        raise ValueError(f"optimizer.args {args} not accepted by {OPTIMIZERS[name].__name__}: {exc}") from exc


@dataclass
class Schedule:
    """A torch LR scheduler and whether it steps after every iteration (else every epoch)."""
    scheduler: torch.optim.lr_scheduler.LRScheduler
    per_step: bool = False


class WarmupCosine:
    """LR factor at iteration ``t``: linear from ``warmup_lr`` to the base LR over ``warmup`` steps,
    then ``lr_min + (base - lr_min) (1 + cos(pi t / total)) / 2``, and ``lr_min`` after ``total``
    (timm's CosineLRScheduler without warm-up prefix, one cycle). A class, not a lambda, so
    ``LambdaLR.state_dict`` saves it and a resumed run continues the same curve."""

    def __init__(self, base_lr: float, total: int, warmup: int, warmup_lr: float, lr_min: float):
        self.base_lr, self.total, self.warmup = base_lr, max(1, total), warmup
        self.warmup_lr, self.lr_min = warmup_lr, lr_min

    def __call__(self, t: int) -> float:
        if t < self.warmup:
            lr = self.warmup_lr + t * (self.base_lr - self.warmup_lr) / self.warmup
        elif t >= self.total:
            lr = self.lr_min
        else:
            lr = self.lr_min + 0.5 * (self.base_lr - self.lr_min) * (1 + math.cos(math.pi * t / self.total))
        return lr / self.base_lr


def _multistep(cfg, opt, epochs):
    steps = _require(cfg, "step_size", "lr_scheduler", list, "a list of epochs")
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(s) for s in steps],
                                                gamma=float(cfg.get("gamma", 0.1)))


def _step(cfg, opt, epochs):
    step = _require(cfg, "step_size", "lr_scheduler", int, "an integer number of epochs")
    return torch.optim.lr_scheduler.StepLR(opt, step_size=step, gamma=float(cfg.get("gamma", 0.1)))


def _exponential(cfg, opt, epochs):
    return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=float(_require(
        cfg, "gamma", "lr_scheduler", (int, float), "a decay factor")))


def _cosine_warm(cfg, opt, epochs, steps_per_epoch):
    base = opt.param_groups[0]["lr"]
    total_epochs = int(cfg.get("epoches", epochs))
    warmup = int(cfg.get("warmup_epoches", 0)) * steps_per_epoch
    factor = WarmupCosine(base, total_epochs * steps_per_epoch, warmup, float(cfg.get("warmup_lr", base)),
                          float(cfg.get("lr_min", 0.0)))
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


SCHEDULERS = {"multistep": _multistep, "step": _step, "exponential": _exponential}
STEP_SCHEDULERS = {"cosineannealwarm": _cosine_warm}


def build_scheduler(cfg: dict | None, optimizer: torch.optim.Optimizer, epochs: int,
                    steps_per_epoch: int = 1) -> Schedule:
    """The LR schedule named by ``cfg['core_method']``; a constant LR when ``cfg`` is empty."""
    if not cfg:
        return Schedule(torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0))
    name = str(cfg.get("core_method", "")).lower()
    if name in SCHEDULERS:
        return Schedule(SCHEDULERS[name](cfg, optimizer, epochs))
    if name in STEP_SCHEDULERS:
        return Schedule(STEP_SCHEDULERS[name](cfg, optimizer, epochs, max(1, steps_per_epoch)), per_step=True)
    raise ValueError(f"lr_scheduler.core_method must be one of {sorted({**SCHEDULERS, **STEP_SCHEDULERS})}, "
                     f"got {cfg.get('core_method')!r}")
