"""The four fusion strategies as views of one prepared sample (:class:`.base.Prepared`).

A view turns the sample into *units*: one unit is one entry of the detector's batch, holding
the agent maps that fuse into one output map, the transforms and priors of those agents, the
labels its targets come from, and ``output_to_ego``, the map from the unit's output frame to the
sample's ego frame (identity except for late fusion, where the postprocess uses it to merge).

======================  =============================================  ==========================
strategy                detector input maps (one unit unless noted)    training labels
======================  =============================================  ==========================
``none``                the ego's cloud                                the ego's own labels
``early``               every agent's cloud moved into the ego frame   the union GT (ego frame)
                        with the noisy transforms, merged
``intermediate``        every agent's cloud in its own frame, or       the union GT (ego frame)
                        projected into the ego frame (``proj_first``)
``late``                one unit per agent: its cloud in its frame     that agent's own labels
======================  =============================================  ==========================

Single-agent detectors (``none``, ``late``) learn from the vehicles their agent lists (those
its sensor covers), as OpenCOOD trains them; evaluation always uses the union GT of the sample,
so every strategy is scored against the same boxes. Late fusion trains on every agent of the
sample (each a unit) rather than on one random agent as OpenCOOD does.
"""
from __future__ import annotations

import numpy as np

from v2xdet.geometry.transforms import transform_points

from .base import BaseDataset, Prepared

_EYE = np.eye(4)


def pairwise_from(to_ego: np.ndarray) -> np.ndarray:
    """(L, L, 4, 4) with ``[i, j] = inv(M_j) @ M_i``: map ``i``'s frame into map ``j``'s."""
    return np.linalg.inv(to_ego)[None, :] @ to_ego[:, None]


class NoFusionDataset(BaseDataset):
    """The ego alone: its cloud, its own labels."""

    strategy = "none"

    def view(self, prepared: Prepared) -> dict:
        return {"units": [self.single_unit(prepared.points[0], prepared.own_boxes[0], prepared, 0)]}


class EarlyFusionDataset(BaseDataset):
    """Raw clouds shared: every agent's points in the ego frame (noisy transforms), merged."""

    strategy = "early"

    def view(self, prepared: Prepared) -> dict:
        merged = np.concatenate([transform_points(p, t) for p, t in
                                 zip(prepared.points, prepared.fusion_to_ego, strict=True)])
        return {"units": [self.single_unit(merged, prepared.gt_boxes, prepared, 0)]}


class LateFusionDataset(BaseDataset):
    """Boxes shared: every agent detects in its own frame; the postprocess moves its boxes to the
    ego frame with ``output_to_ego`` (the noisy transform) and merges them."""

    strategy = "late"

    def view(self, prepared: Prepared) -> dict:
        return {"units": [self.single_unit(p, labels, prepared, i, to_ego) for i, (p, labels, to_ego) in
                          enumerate(zip(prepared.points, prepared.own_boxes, prepared.fusion_to_ego,
                                        strict=True))]}


class IntermediateFusionDataset(BaseDataset):
    """Features shared: one map per agent, fused by the model with ``agent_to_ego`` (noisy),
    ``spatial_correction`` and ``prior_encoding``. With ``fusion.args.proj_first`` each cloud is
    first moved by its ``agent_to_ego`` (which then becomes the identity)."""

    strategy = "intermediate"

    def view(self, prepared: Prepared) -> dict:
        plan = prepared.plan
        agent_to_ego, points = prepared.agent_to_ego, prepared.points
        if self.proj_first:
            points = [transform_points(p, t) for p, t in zip(points, agent_to_ego, strict=True)]
            agent_to_ego = np.broadcast_to(_EYE, agent_to_ego.shape).copy()
        pairwise = pairwise_from(prepared.spatial_correction @ agent_to_ego)
        unit = self.unit(points, prepared.gt_boxes, prepared.rng, agent_to_ego, prepared.spatial_correction,
                         plan.prior_encoding, pairwise, _EYE)
        return {"units": [unit]}


DATASETS = {
    "none": NoFusionDataset,
    "early": EarlyFusionDataset,
    "late": LateFusionDataset,
    "intermediate": IntermediateFusionDataset,
}
