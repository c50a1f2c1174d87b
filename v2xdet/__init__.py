"""v2xdet: cooperative V2X LiDAR 3D object detection."""

__version__ = "0.1.0"
