"""3D views with open3d: a window when a display exists, an off-screen PNG when not.

Off-screen rendering tries open3d's Filament ``OffscreenRenderer`` first (needs Vulkan:
``apt-get install libvulkan1 mesa-vulkan-drivers``), then the legacy ``Visualizer`` with a hidden
window read back by ``capture_screen_float_buffer`` (open3d falls back to an EGL context, which
needs Mesa's EGL/GL drivers: ``apt-get install libegl1 libgl1-mesa-dri``). When neither works the
error says what to install instead of GLFW's bare message (DESIGN.md section 7).

Handedness: the data is in CARLA's left-handed frame; every geometry's y is negated before
drawing, so the 3D view is the scene as seen, not its mirror image.
"""
from __future__ import annotations

import contextlib
import ctypes.util
import os
import tempfile
from pathlib import Path

import numpy as np

from .bev import AGENT_COLORS, GT_COLOR, LINK_COLOR, PRED_COLOR, save_png
from .scene import Scene

# box edges between OpenCOOD-ordered corners, plus the heading tick drawn separately
BOX_EDGES = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [7, 4],
                      [0, 4], [1, 5], [2, 6], [3, 7]])
_FLIP_Y = np.array([1.0, -1.0, 1.0])

INSTALL_HINT = ("install Vulkan for open3d's off-screen renderer (apt-get install libvulkan1 "
                "mesa-vulkan-drivers), or Mesa's EGL/OpenGL drivers for the legacy renderer "
                "(apt-get install libegl1 libgl1-mesa-dri)")


class RenderUnavailableError(RuntimeError):
    """3D rendering is impossible here; the message names what to install."""


def has_display() -> bool:
    """Whether a window can be opened (an X11 or Wayland display is set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _rgb(hex_color: str) -> np.ndarray:
    return np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def _import_open3d():
    try:
        import open3d as o3d
    except (ImportError, OSError) as exc:
        raise RenderUnavailableError(
            f"open3d cannot be imported ({exc}): pip install open3d-cpu (or open3d), and the system "
            "library libusb-1.0-0 (apt-get install libusb-1.0-0)") from exc
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    return o3d


@contextlib.contextmanager
def _captured_native_stderr():
    """Redirect file descriptor 2 (where GLFW/EGL print) into a buffer; yields a dict whose
    ``text`` holds what was printed once the block ends."""
    out = {"text": ""}
    try:
        saved = os.dup(2)
    except OSError:   # no real stderr (embedded interpreters): nothing to capture
        yield out
        return
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            out["text"] = buf.read().decode(errors="replace")


def scene_geometries(scene: Scene, o3d) -> list[tuple[str, object, str]]:
    """``(name, geometry, kind)`` for the clouds, boxes, agents and links; kind is points|mesh.

    Box edges, headings and links are thin tubes rather than GL lines, which most drivers draw one
    pixel wide whatever width is asked for.
    """
    geoms = []
    for i, pts in enumerate(scene.points):
        if len(pts):
            xyz = np.asarray(pts[:, :3], dtype=float) * _FLIP_Y
            cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
            cloud.paint_uniform_color(_rgb(AGENT_COLORS[i % len(AGENT_COLORS)]))
            geoms.append((f"points_{i}", cloud, "points"))
    for name, corners, color, radius in (("gt", scene.gt_corners, GT_COLOR, 0.07),
                                         ("pred", scene.pred_corners, PRED_COLOR, 0.09)):
        if len(corners):
            starts, ends = box_edges(corners * _FLIP_Y)
            geoms.append((f"boxes_{name}", tubes(starts, ends, radius, _rgb(color), o3d), "mesh"))
    if scene.agent_positions is not None and len(scene.agent_positions):
        pos = np.zeros((len(scene.agent_positions), 3))
        pos[:, :scene.agent_positions.shape[1]] = scene.agent_positions[:, :3]
        pos = pos * _FLIP_Y
        for i, p in enumerate(pos):
            mesh = o3d.geometry.TriangleMesh
            marker = (mesh.create_box(2.4, 2.4, 2.4).translate(p - [1.2, 1.2, 0.0]) if scene.is_rsu[i]
                      else mesh.create_sphere(1.5 if i else 2.0).translate(p))
            marker.paint_uniform_color(_rgb(AGENT_COLORS[i % len(AGENT_COLORS)]))
            marker.compute_vertex_normals()
            geoms.append((f"agent_{i}", marker, "mesh"))
        if len(pos) > 1:
            lift = np.array([0.0, 0.0, 2.0])
            links = tubes(np.repeat(pos[:1] + lift, len(pos) - 1, axis=0), pos[1:] + lift, 0.08,
                          _rgb(LINK_COLOR), o3d)
            geoms.append(("links", links, "mesh"))
    return geoms


def box_edges(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points ``(13 K, 3)`` of every box's 12 edges and its heading (bottom centre to
    the middle of the front face, corners 0 and 1)."""
    starts = corners[:, BOX_EDGES[:, 0]]
    ends = corners[:, BOX_EDGES[:, 1]]
    centre = corners[:, :4].mean(axis=1, keepdims=True)
    front = corners[:, :2].mean(axis=1, keepdims=True)
    return (np.concatenate([starts, centre], axis=1).reshape(-1, 3),
            np.concatenate([ends, front], axis=1).reshape(-1, 3))


def tubes(starts: np.ndarray, ends: np.ndarray, radius: float, color, o3d, sides: int = 6):
    """One mesh of ``sides``-sided open tubes from ``starts[i]`` to ``ends[i]`` (vectorized)."""
    angle = 2 * np.pi * np.arange(sides) / sides
    ring = np.column_stack([np.cos(angle), np.sin(angle)]) * radius                # (S, 2)
    axis = ends - starts
    length = np.linalg.norm(axis, axis=1, keepdims=True)
    keep = length[:, 0] > 1e-9
    starts, axis, length = starts[keep], axis[keep], length[keep]
    w = axis / length
    helper = np.where(np.abs(w[:, 2:3]) < 0.9, [[0.0, 0.0, 1.0]], [[1.0, 0.0, 0.0]])
    u = np.cross(w, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = np.cross(w, u)
    offsets = ring[None, :, :1] * u[:, None] + ring[None, :, 1:] * v[:, None]       # (E, S, 3)
    bottom = starts[:, None] + offsets
    top = bottom + axis[:, None]
    verts = np.concatenate([bottom, top], axis=1).reshape(-1, 3)                     # (E * 2S, 3)
    k = np.arange(sides)
    k1 = (k + 1) % sides
    quad = np.concatenate([np.column_stack([k, k1, sides + k]), np.column_stack([k1, sides + k1, sides + k])])
    faces = (quad[None] + (2 * sides * np.arange(len(starts)))[:, None, None]).reshape(-1, 3)
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces))
    mesh.paint_uniform_color(np.asarray(color, dtype=float))
    mesh.compute_vertex_normals()
    return mesh


def look_at(eye, centre, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """World -> camera extrinsic (open3d's pinhole convention: x right, y down, z forward)."""
    eye, centre, up = (np.asarray(v, dtype=float) for v in (eye, centre, up))
    forward = centre - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rot = np.stack([right, down, forward])
    extrinsic = np.eye(4)
    extrinsic[:3, :3] = rot
    extrinsic[:3, 3] = -rot @ eye
    return extrinsic


def default_camera(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Eye and look-at point (display frame, y flipped): behind and above the ego, looking ahead."""
    centre = np.array([18.0, 0.0, 0.0])
    eye = np.array([-22.0, -26.0, 48.0])
    return eye, centre


def _intrinsic(width: int, height: int, fov_deg: float) -> np.ndarray:
    f = (height / 2) / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2 - 0.5], [0, f, height / 2 - 0.5], [0, 0, 1]])


def render_3d(scene: Scene, width: int = 1280, height: int = 720, fov_deg: float = 60.0,
              eye=None, centre=None, backends=("offscreen", "legacy")) -> tuple[np.ndarray, str]:
    """Render ``scene`` off-screen; return ``(image (H, W, 3) uint8, backend used)``.

    Raises :class:`RenderUnavailableError` naming what to install when no backend works.
    """
    o3d = _import_open3d()
    if eye is None or centre is None:
        eye, centre = default_camera(scene)
    extrinsic = look_at(eye, centre)
    intrinsic = _intrinsic(width, height, fov_deg)
    geoms = scene_geometries(scene, o3d)
    failures = []
    for name in backends:
        render = {"offscreen": _render_offscreen, "legacy": _render_legacy}.get(name)
        if render is None:
            raise ValueError(f"unknown 3D backend {name!r}; choose from offscreen, legacy")
        with _captured_native_stderr() as native:
            try:
                image = render(o3d, geoms, width, height, intrinsic, extrinsic)
            except Exception as exc:   # open3d raises RuntimeError, or returns nothing usable
                image, error = None, f"{type(exc).__name__}: {exc}"
        if image is not None:
            return image, name
        lines = [ln for ln in native["text"].splitlines() if ln.strip()][-2:]
        failures.append(f"{name}: {error}" + (f" [{' / '.join(lines)}]" if lines else ""))
    raise RenderUnavailableError("open3d cannot render off-screen on this machine (" + "; ".join(failures)
                                 + f"). To fix: {INSTALL_HINT}.")


def vulkan_available() -> bool:
    """Whether the Vulkan loader (``libvulkan.so.1``) can be found.

    Filament's renderer needs it; trying without it fails and leaves GLFW in a state in which the
    legacy renderer cannot open its hidden window in the same process, so we check first.
    """
    return ctypes.util.find_library("vulkan") is not None


def _render_offscreen(o3d, geoms, width, height, intrinsic, extrinsic):
    if not vulkan_available():
        raise RuntimeError("the Vulkan loader libvulkan.so.1 is not installed")
    rendering = o3d.visualization.rendering
    renderer = rendering.OffscreenRenderer(width, height)
    try:
        renderer.scene.set_background([1.0, 1.0, 1.0, 1.0])
        for name, geom, kind in geoms:
            mat = rendering.MaterialRecord()
            if kind == "points":
                mat.shader, mat.point_size = "defaultUnlit", 1.5
            else:
                mat.shader = "defaultLit"
            renderer.scene.add_geometry(name, geom, mat)
        renderer.setup_camera(intrinsic, extrinsic, width, height)
        image = np.asarray(renderer.render_to_image())
    finally:
        del renderer
    return _check_image(image, width, height, "offscreen")


def _render_legacy(o3d, geoms, width, height, intrinsic, extrinsic):
    vis = o3d.visualization.Visualizer()
    if not vis.create_window(window_name="v2xdet", width=width, height=height, visible=False):
        raise RuntimeError("could not create a hidden window (no GLFW platform and no EGL context)")
    try:
        opt = vis.get_render_option()
        opt.background_color = np.ones(3)
        opt.point_size = 1.5
        opt.mesh_show_back_face = True
        for _, geom, _ in geoms:
            vis.add_geometry(geom)
        _set_legacy_camera(o3d, vis, width, height, intrinsic, extrinsic)
        vis.poll_events()
        vis.update_renderer()
        image = np.asarray(vis.capture_screen_float_buffer(do_render=True))
    finally:
        vis.destroy_window()
    return _check_image(np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), width, height, "legacy")


def _set_legacy_camera(o3d, vis, width, height, intrinsic, extrinsic) -> None:
    params = o3d.camera.PinholeCameraParameters()
    params.intrinsic = o3d.camera.PinholeCameraIntrinsic(width, height, intrinsic)
    params.extrinsic = extrinsic
    ctrl = vis.get_view_control()
    ctrl.set_constant_z_far(2000.0)
    if not ctrl.convert_from_pinhole_camera_parameters(params, allow_arbitrary=True):
        raise RuntimeError("open3d refused the camera parameters")


def _check_image(image: np.ndarray, width: int, height: int, backend: str) -> np.ndarray:
    if image.ndim != 3 or image.shape[:2] != (height, width):
        raise RuntimeError(f"{backend} renderer returned an image of shape {image.shape}, "
                           f"expected ({height}, {width}, 3)")
    if image.dtype != np.uint8:
        image = np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3])


def annotate_3d(image: np.ndarray, scene: Scene, dpi: int = 100) -> np.ndarray:
    """The render with a legend (colours of agents, GT, detections) and the title, as a picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    h, w = image.shape[:2]
    fig = Figure(figsize=(w / dpi, h / dpi + 0.55), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0.55 / (h / dpi + 0.55), 1, h / dpi / (h / dpi + 0.55)))
    ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()
    handles = [Line2D([], [], color=GT_COLOR, lw=2, label=f"ground truth ({len(scene.gt_corners)})"),
               Line2D([], [], color=PRED_COLOR, lw=2, label=f"detections ({len(scene.pred_corners)})")]
    for i in range(scene.num_agents):
        kind = "ego" if i == 0 else ("RSU" if scene.is_rsu[i] else "CAV")
        marker = "s" if scene.is_rsu[i] else "o"
        handles.append(Line2D([], [], marker=marker, linestyle="", color=AGENT_COLORS[i % len(AGENT_COLORS)],
                              label=f"{kind} {scene.agent_ids[i]}"))
    fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=9, frameon=False)
    if scene.title:
        ax.text(0.01, 0.98, scene.title, transform=ax.transAxes, va="top", fontsize=10,
                bbox={"fc": "white", "ec": "none", "alpha": 0.8})
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def draw_3d(scene: Scene, path, width: int = 1280, height: int = 720, **kwargs) -> tuple[np.ndarray, str]:
    """Render ``scene`` off-screen, add its legend, save a PNG at ``path``; return (image, backend)."""
    image, backend = render_3d(scene, width, height, **kwargs)
    image = annotate_3d(image, scene)
    save_png(image, Path(path))
    return image, backend


def show_3d(scene: Scene, title: str = "v2xdet") -> None:
    """Open an interactive open3d window (needs a display: see :func:`has_display`)."""
    if not has_display():
        raise RenderUnavailableError("no display (DISPLAY / WAYLAND_DISPLAY unset) for an open3d window; "
                                     "write PNGs with --save_vis instead")
    o3d = _import_open3d()
    geoms = [g for _, g, _ in scene_geometries(scene, o3d)]
    o3d.visualization.draw_geometries(geoms, window_name=scene.title or title)
