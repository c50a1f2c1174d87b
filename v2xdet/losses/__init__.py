"""Training losses, by ``loss.core_method``."""
from v2xdet.losses.point_pillar_loss import PointPillarLoss

LOSSES = {"point_pillar_loss": PointPillarLoss}


def build_loss(loss_cfg: dict) -> PointPillarLoss:
    """From a config's ``loss`` section (``core_method`` and ``args``)."""
    core = loss_cfg.get("core_method")
    if core not in LOSSES:
        raise ValueError(f"loss.core_method must be one of {sorted(LOSSES)}, got {core!r}")
    return LOSSES[core](loss_cfg.get("args") or {})


__all__ = ["LOSSES", "PointPillarLoss", "build_loss"]
