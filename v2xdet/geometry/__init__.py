"""Poses, the box format, rotated IoU and NMS."""
