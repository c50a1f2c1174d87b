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
``late``                one unit per agent: its cloud in its           that agent's own labels
                        detection frame (see below)                    (same frame)
======================  =============================================  ==========================

Late fusion's *detection frame*: every agent detects with the config's ``cav_lidar_range`` and
anchors, whose heights suit a roof-mounted vehicle LiDAR. A roadside unit's sensor sits metres
higher, so in its own frame the ground and the cars lie below the range and would be cropped
away. Each agent therefore detects in its data frame shifted along z by
``rise = its sensor's world z - the ego sensor's world z`` (clean data-frame poses; zero for the
ego and for vehicles at the ego's height), which puts its sensor at the ego's sensor height. The
shift moves its points and its own labels, and ``output_to_ego`` undoes it before the agent's
transform to the ego.

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


def detection_shifts(prepared: Prepared) -> np.ndarray:
    """(L, 3) translation from each agent's data frame to its late-fusion detection frame.

    ``A @ (0, 0, rise_i)`` with ``rise_i`` = agent ``i``'s LiDAR world z minus the ego's (data-frame
    poses, clean: an agent knows its own height) and ``A`` the sample's augmentation, so the shift
    lives in the augmented frames as every other transform does.
    """
    heights = prepared.plan.pose_data[:, 2]
    rise = heights - heights[0]
    return rise[:, None] * prepared.augmentation[:3, 2][None, :]


def moved_by(rows: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A copy of ``rows`` (points or boxes: x, y, z first) translated by ``shift`` (3,)."""
    out = rows.copy()
    out[:, :3] += shift
    return out


class LateFusionDataset(BaseDataset):
    """Boxes shared: every agent detects in its detection frame (its data frame shifted to the
    ego's sensor height, see the module doc); the postprocess moves its boxes to the ego frame
    with ``output_to_ego`` (the shift undone, then the noisy transform) and merges them."""

    strategy = "late"

    def view(self, prepared: Prepared) -> dict:
        units = []
        for i, shift in enumerate(detection_shifts(prepared)):
            points, labels = moved_by(prepared.points[i], shift), moved_by(prepared.own_boxes[i], shift)
            undo = np.eye(4)
            undo[:3, 3] = -shift
            units.append(self.single_unit(points, labels, prepared, i, prepared.fusion_to_ego[i] @ undo))
        return {"units": units}


class IntermediateFusionDataset(BaseDataset):
    """Features shared: one map per agent, fused by the model with ``agent_to_ego`` (noisy),
    ``spatial_correction`` and ``prior_encoding``. With ``fusion.args.proj_first`` each cloud is
    first moved by its ``agent_to_ego`` (which then becomes the identity); without it each cloud is
    voxelized in its detection frame (as late fusion's), which the BEV warp does not see: it
    moves the map in x, y and yaw only."""

    strategy = "intermediate"

    def view(self, prepared: Prepared) -> dict:
        plan = prepared.plan
        agent_to_ego, points = prepared.agent_to_ego, prepared.points
        if self.proj_first:
            points = [transform_points(p, t) for p, t in zip(points, agent_to_ego, strict=True)]
            agent_to_ego = np.broadcast_to(_EYE, agent_to_ego.shape).copy()
        else:
            points = [moved_by(p, shift) for p, shift in zip(points, detection_shifts(prepared), strict=True)]
        pairwise = pairwise_from(prepared.spatial_correction @ agent_to_ego)
        in_ego = points if self.proj_first else (lambda: [
            transform_points(p, t) for p, t in zip(prepared.points, prepared.fusion_to_ego, strict=True)])
        unit = self.unit(points, prepared.gt_boxes, prepared.rng, agent_to_ego, prepared.spatial_correction,
                         plan.prior_encoding, pairwise, _EYE, label_clouds=in_ego)
        return {"units": [unit]}


DATASETS = {
    "none": NoFusionDataset,
    "early": EarlyFusionDataset,
    "late": LateFusionDataset,
    "intermediate": IntermediateFusionDataset,
}
