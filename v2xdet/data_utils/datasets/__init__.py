"""Datasets for every fusion strategy: one base builds the multi-agent sample, views encode it.

``build_dataset(cfg, split, train)`` picks the class from ``cfg['fusion']['strategy']``
(``none | late | early | intermediate``) in :data:`DATASETS`; each dataset's ``collate``
batches its samples into the detector's input dict (see :mod:`.collate`).
"""
from __future__ import annotations

from .base import BaseDataset, Prepared, split_dir
from .collate import collate
from .views import (
    DATASETS,
    EarlyFusionDataset,
    IntermediateFusionDataset,
    LateFusionDataset,
    NoFusionDataset,
    pairwise_from,
)


def build_dataset(cfg: dict, split: str, train: bool, **kwargs) -> BaseDataset:
    """The dataset of ``split`` (``train | validate | test``) for the config's fusion strategy.

    ``train`` enables augmentation, shuffling and (with ``fusion.args.ego_choice: random``) the
    random ego; ``kwargs`` go to the class (``with_targets``, ``keep_points``).
    """
    strategy = (cfg.get("fusion") or {}).get("strategy")
    if strategy not in DATASETS:
        raise ValueError(f"fusion.strategy must be one of {sorted(DATASETS)}, got {strategy!r}")
    return DATASETS[strategy](cfg, split, train, **kwargs)


__all__ = ["DATASETS", "BaseDataset", "EarlyFusionDataset", "IntermediateFusionDataset", "LateFusionDataset",
           "NoFusionDataset", "Prepared", "build_dataset", "collate", "pairwise_from", "split_dir"]
