"""Poses, the box format, rotated IoU and NMS."""
from v2xdet.geometry.boxes import (
    boxes_from_hwl,
    boxes_to_bev_corners,
    boxes_to_corners,
    boxes_to_hwl,
    check_boxes,
    corners_to_boxes,
    limit_period,
    points_in_boxes,
    transform_boxes,
)
from v2xdet.geometry.iou import bev_iou_matrix, corners_to_bev_polygons, polygon_iou_matrix
from v2xdet.geometry.nms import rotated_nms, rotated_nms_polygons
from v2xdet.geometry.transforms import check_matrix, transform_points, x1_to_x2, x_to_world, yaw_of

__all__ = [
    "bev_iou_matrix", "boxes_from_hwl", "boxes_to_bev_corners", "boxes_to_corners", "boxes_to_hwl",
    "check_boxes", "check_matrix", "corners_to_bev_polygons", "corners_to_boxes", "limit_period",
    "points_in_boxes", "polygon_iou_matrix", "rotated_nms", "rotated_nms_polygons", "transform_boxes",
    "transform_points", "x1_to_x2", "x_to_world", "yaw_of",
]
