"""Pictures of a frame: BEV PNGs (matplotlib, headless), 3D views (open3d), animations."""
from .animation import write_animation
from .bev import draw_bev, render_bev, save_png
from .scene import Scene
from .view3d import RenderUnavailableError, draw_3d, has_display, render_3d, show_3d

__all__ = ["RenderUnavailableError", "Scene", "draw_3d", "draw_bev", "has_display", "render_3d", "render_bev",
           "save_png", "show_3d", "write_animation"]
