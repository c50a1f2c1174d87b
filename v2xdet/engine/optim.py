"""Optimizer and learning-rate scheduler from the config, through explicit name tables.

Config keys (OpenCOOD's)::

    optimizer:    {core_method: Adam | AdamW | SGD, lr: 0.002, args: {eps: 1e-10, weight_decay: 1e-4}}
    lr_scheduler: {core_method: multistep, step_size: [10, 15], gamma: 0.1}   # MultiStepLR
                  {core_method: step, step_size: 10, gamma: 0.1}              # StepLR
                  {core_method: exponential, gamma: 0.95}                      # ExponentialLR
                  {core_method: cosine, lr_min: 1e-5}   # CosineAnnealingLR over the run's epochs

Schedulers step once per epoch, as OpenCOOD's do.
"""
from __future__ import annotations

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


def _cosine(cfg, opt, epochs):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, int(cfg.get("T_max", epochs))),
                                                      eta_min=float(cfg.get("lr_min", 0.0)))


SCHEDULERS = {"multistep": _multistep, "step": _step, "exponential": _exponential, "cosine": _cosine}


def build_scheduler(cfg: dict | None, optimizer: torch.optim.Optimizer, epochs: int):
    """Per-epoch LR scheduler named by ``cfg['core_method']``; a constant LR when ``cfg`` is empty."""
    if not cfg:
        return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    name = str(cfg.get("core_method", "")).lower()
    if name not in SCHEDULERS:
        raise ValueError(f"lr_scheduler.core_method must be one of {sorted(SCHEDULERS)}, "
                         f"got {cfg.get('core_method')!r}")
    return SCHEDULERS[name](cfg, optimizer, epochs)
