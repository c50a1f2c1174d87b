"""Preprocessing between a sample's points/boxes and the detector: crop, augment, voxelize,
anchors and training targets."""
from v2xdet.data_utils.preprocess.anchors import AnchorGenerator
from v2xdet.data_utils.preprocess.augment import (
    apply_augmentation,
    augment,
    augmentation_matrix,
    conjugate_transform,
)
from v2xdet.data_utils.preprocess.box_coder import decode, encode
from v2xdet.data_utils.preprocess.crop import crop_range, range_mask, remove_ego_points
from v2xdet.data_utils.preprocess.targets import assign_targets, direction_bins, split_by_points
from v2xdet.data_utils.preprocess.voxelize import Voxelizer, grid_size

__all__ = ["AnchorGenerator", "Voxelizer", "apply_augmentation", "assign_targets", "augment",
           "augmentation_matrix", "conjugate_transform", "crop_range", "decode", "direction_bins",
           "encode", "grid_size", "range_mask", "remove_ego_points", "split_by_points"]
