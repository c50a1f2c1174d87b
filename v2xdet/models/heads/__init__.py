"""Detection heads."""
from v2xdet.models.heads.anchor_head import AnchorHead

HEADS = {"anchor_head": AnchorHead}

__all__ = ["HEADS", "AnchorHead"]
