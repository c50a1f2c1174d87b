"""Which agents of a padded batch are real, and how to pack them.

Fusion inputs are padded to ``(B, L, ...)`` with ``mask (B, L)`` (True = real agent, slot 0 =
ego). Per-agent work (projections, window attention, FFN) runs on the packed real agents only,
so its cost follows the real agent count; cross-agent attention gathers the packed rows back
into the padded ``(B, L)`` structure and masks the padding out.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AgentLayout:
    """Index bookkeeping for the real agents of a padded batch.

    ``flat``: (N,) indices ``b * L + l`` of the real agents (batch-major order);
    ``batch``: (N,) sample of each packed agent; ``slot_to_packed``: (B, L) packed index of each
    slot, with padded slots pointing at their sample's ego (a valid row that the mask removes);
    ``ego``: (B,) packed index of each sample's ego; ``full``: no padding at all.
    """

    mask: torch.Tensor
    flat: torch.Tensor
    batch: torch.Tensor
    slot_to_packed: torch.Tensor
    ego: torch.Tensor
    full: bool

    @staticmethod
    def from_mask(mask: torch.Tensor) -> AgentLayout:
        if mask.dim() != 2 or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a (B, L) bool tensor, got {mask.dtype} {tuple(mask.shape)}")
        if mask.shape[1] == 0 or not bool(mask[:, 0].all()):
            raise ValueError("mask[:, 0] must be True: slot 0 of every sample is its ego agent")
        b, n_slots = mask.shape
        flat = mask.reshape(-1).nonzero().squeeze(1)
        packed_of_flat = torch.cumsum(mask.reshape(-1).long(), 0) - 1
        slot_to_packed = packed_of_flat.view(b, n_slots)
        ego = slot_to_packed[:, 0].clone()
        slot_to_packed = torch.where(mask, slot_to_packed, ego[:, None])
        return AgentLayout(
            mask=mask,
            flat=flat,
            batch=flat // n_slots,
            slot_to_packed=slot_to_packed,
            ego=ego,
            full=bool(mask.all()),
        )

    @property
    def num_packed(self) -> int:
        return int(self.flat.numel())

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, ...) -> (N, ...) real agents only (a view when there is no padding)."""
        flat = x.reshape((-1,) + tuple(x.shape[2:]))
        return flat if self.full else flat.index_select(0, self.flat)
