"""Configs (``hypes_yaml``): load, validate, derive, save.

``load_config(path)`` reads one YAML file (anchors and aliases work; ``1e-3`` is a float, as
OpenCOOD's loader makes it), applies overrides, validates it against
``v2xdet.config_schema.CONFIG_SCHEMA`` and computes every derived value in ``derive`` — the one
place where values that follow from other keys (grid size, anchor grid, defaults that depend on
another section) are filled or checked. The result is a plain dict of plain Python values.
``save_config`` writes that dict atomically; loading the saved file gives the same dict.

Every problem is a ``ConfigError`` (a ``ValueError``) naming the file, the key path, the value and
what was expected. Schema problems are all reported together; ``derive``'s cross-section problems
are reported together once the schema is satisfied.
"""
from __future__ import annotations

import copy
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from v2xdet.config_schema import (
    CONFIG_SCHEMA,
    FUSION_STRATEGIES,
    MODELS,
    ConfigError,
    Issue,
    feature_channels,
    feature_stride,
    show,
    validate,
)

__all__ = ["ConfigError", "derive", "load_config", "merge", "parse_overrides", "parse_yaml", "read_yaml",
           "resolve", "save_config", "validate"]

# PyYAML follows YAML 1.1, where a float needs a dot: ``1e-3`` would load as the string '1e-3'.
# OpenCOOD adds a resolver for such floats; this one accepts the exponent forms with or without a dot.
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """Safe loader with exponent floats, and duplicate keys refused (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXP_FLOAT, list("-+0123456789."))


class _Dumper(yaml.SafeDumper):
    """Safe dumper that writes repeated values out instead of as anchors and aliases."""

    def ignore_aliases(self, data):
        return True


def read_yaml(path: str | os.PathLike) -> Any:
    """The single YAML document of ``path``, parsed with the safe loader (no validation)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as stream:
            docs = list(yaml.load_all(stream, Loader=_Loader))
    except FileNotFoundError:
        raise FileNotFoundError(f"config file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), detail=f"not UTF-8 text ({err})") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), detail=f"not valid YAML:\n{err}") from None
    if len(docs) != 1:
        raise ConfigError(str(path), detail=f"expected exactly one YAML document, found {len(docs)}")
    return docs[0]


def parse_yaml(text: str, source: str = "<text>") -> Any:
    """One YAML document from a string, with the same loader as ``read_yaml``."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise ConfigError(source, detail=f"not valid YAML:\n{err}") from None


def merge(base: Mapping, patch: Mapping) -> dict:
    """``base`` updated by ``patch``: mappings merge key by key, ``None`` removes a key, others replace."""
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _nest(overrides: Mapping, source: str) -> dict:
    """Turn dotted keys (``{"model.args.compression": 32}``) into a nested patch for ``merge``."""
    patch: dict = {}
    for key, value in overrides.items():
        *parents, last = str(key).split(".")
        node = patch
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(source, detail=f"override {key!r} goes through "
                                  f"{'.'.join(parents[: i + 1])!r}, which another override sets to a value")
        node[last] = merge(node[last], value) if isinstance(node.get(last), dict) and isinstance(
            value, Mapping) else value
    return patch


def parse_overrides(items: Iterable[str]) -> dict:
    """Command-line overrides ``["train_params.batch_size=4", "optimizer.lr=1e-3"]`` -> dict.

    Values are parsed as YAML (``[1, 2]``, ``true``, ``null`` to remove a key).
    """
    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError("<overrides>", detail=f"{item!r}: expected KEY.PATH=VALUE")
        out[key.strip()] = parse_yaml(text, f"override {item!r}")
    return out


def load_config(path: str | os.PathLike, overrides: Mapping | None = None) -> dict:
    """Load, validate and derive the config at ``path`` (a file, or a model folder's config.yaml).

    ``overrides`` maps dotted key paths (or nested mappings) to values applied before validation;
    a ``None`` value removes the key.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "config.yaml"
    source = str(path)
    raw = read_yaml(path)
    if overrides:
        source += f" (with overrides of {', '.join(map(str, overrides))})"
        if not isinstance(raw, Mapping):
            raise ConfigError(source, detail=f"the top level is {show(raw)}, expected a mapping")
        raw = merge(raw, _nest(overrides, source))
    return resolve(raw, source)


def resolve(raw: Any, source: str = "<config>") -> dict:
    """Validate a parsed config against the schema and derive its values."""
    return derive(validate(raw, CONFIG_SCHEMA, source=source), source)


def save_config(cfg: Mapping, path: str | os.PathLike) -> Path:
    """Write a resolved config atomically as YAML; ``load_config(path)`` gives ``cfg`` back.

    The config is resolved again first, so a dict that would not load back is refused.
    """
    path = Path(path)
    cfg = dict(cfg)
    if resolve(copy.deepcopy(cfg), f"{path} (before saving)") != cfg:
        raise ConfigError(str(path), detail="refusing to save a config that is not resolved: pass the dict "
                          "load_config or resolve returned (defaults and derived values filled)")
    text = ("# Resolved v2xdet config (defaults and derived values filled) written by save_config.\n"
            + yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, default_flow_style=None, allow_unicode=True))
    _atomic_write_text(path, text)
    return path


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------------------------
# Derived values
# ----------------------------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


class _Deriver:
    """Fills keys that follow from others, or checks a given value agrees, collecting problems."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.issues: list[Issue] = []

    def problem(self, path: str, value: Any, expected: str) -> None:
        self.issues.append(Issue(path, value, expected))

    def tie(self, path: str, value: Any, origin: str, fill: bool = True) -> None:
        """``path`` (optional in the schema) must equal ``value``; fill it in when absent."""
        *parents, key = path.split(".")
        node = self.cfg
        for part in parents:
            node = node[part]
        if key in node:
            if not _same(node[key], value):
                self.problem(path, node[key], f"{show(value)}, {origin} (or leave the key out)")
        elif fill:
            node[key] = copy.deepcopy(value)


def _grid(lidar_range: list[float], voxel: list[float], path: str, d: _Deriver) -> list[int] | None:
    """Voxels per axis, when the range spans a whole number of voxels (within 1e-6) on every axis."""
    grid, whole = [], True
    for axis in range(3):
        extent = lidar_range[axis + 3] - lidar_range[axis]
        ratio = extent / voxel[axis]
        n = round(ratio)
        if n < 1 or abs(ratio - n) > 1e-6:
            whole = False
            d.problem(path, lidar_range, (
                f"a range spanning a whole number of voxels on every axis: along {'xyz'[axis]} it spans "
                f"{extent:g} m = {ratio:.6g} voxels of {voxel[axis]:g} m (preprocess.args.voxel_size)"))
        grid.append(n)
    return grid if whole else None


def derive(cfg: Mapping, source: str = "<config>") -> dict:
    """Every derived value of a validated config, in a copy (as OpenCOOD's load_point_pillar_params).

    Fills: ``fusion.strategy``; ``preprocess.grid_size`` and
    ``model.args.point_pillar_scatter.grid_size`` = range / voxel size (W, H, D);
    ``postprocess.anchor_args`` ``vw, vh, vd, W, H, D`` (OpenCOOD's meaning: the voxel grid),
    ``feature_stride`` (the model's output stride) and ``anchor_grid`` = (W, H) / feature_stride;
    ``postprocess.gt_range``; and the optional model keys that repeat another section's value
    (``voxel_size``, ``lidar_range``, ``anchor_number``, ``max_cav``, ``cls_head_dim``, STTF's
    ``voxel_size`` and ``downsample_rate``). A repeated value given in the file must agree.
    """
    cfg = copy.deepcopy(dict(cfg))
    d = _Deriver(cfg)

    # fusion strategy, and V2X-ViT's F-Cooper spelling of cur_ego_pose_flag (directly under fusion)
    fusion = cfg["fusion"]
    strategy = FUSION_STRATEGIES[fusion["core_method"]]
    d.tie("fusion.strategy", strategy, f"the strategy of fusion.core_method {fusion['core_method']!r}")
    legacy = fusion.pop("cur_ego_pose_flag", None)
    if legacy is not None:
        d.tie("fusion.args.cur_ego_pose_flag", legacy, "as fusion.cur_ego_pose_flag says")
    fusion["args"].setdefault("cur_ego_pose_flag", True)

    model, args = cfg["model"], cfg["model"]["args"]
    allowed = MODELS[model["core_method"]].strategies
    if strategy not in allowed:
        fitting = [name for name, m in MODELS.items() if strategy in m.strategies]
        d.problem("model.core_method", model["core_method"], (
            f"a model for {strategy} fusion (fusion.core_method is {fusion['core_method']!r}): "
            f"one of {', '.join(fitting)}; {model['core_method']!r} serves {', '.join(allowed)}"))

    # voxel grid
    pre = cfg["preprocess"]
    voxel, lidar_range = pre["args"]["voxel_size"], pre["cav_lidar_range"]
    grid = _grid(lidar_range, voxel, "preprocess.cav_lidar_range", d)
    d.tie("model.args.voxel_size", voxel, "as preprocess.args.voxel_size")
    d.tie("model.args.lidar_range", lidar_range, "as preprocess.cav_lidar_range")
    if grid is not None:
        d.tie("preprocess.grid_size", grid, "computed from cav_lidar_range / voxel_size")
        d.tie("model.args.point_pillar_scatter.grid_size", grid, "computed from cav_lidar_range / voxel_size")

    # anchors
    post = cfg["postprocess"]
    anchor = post["anchor_args"]
    d.tie("postprocess.anchor_args.cav_lidar_range", lidar_range, "as preprocess.cav_lidar_range")
    post.setdefault("gt_range", list(lidar_range))
    for key, size in zip(("vw", "vh", "vd"), voxel, strict=True):
        d.tie(f"postprocess.anchor_args.{key}", size, "as preprocess.args.voxel_size")
    stride = round(feature_stride(args))
    d.tie("postprocess.anchor_args.feature_stride", stride,
          f"the stride of the map model {model['core_method']!r} outputs (backbone and shrink header)")
    if grid is not None:
        for key, n in zip(("W", "H", "D"), grid, strict=True):
            d.tie(f"postprocess.anchor_args.{key}", n, "computed from cav_lidar_range / voxel_size")
        if grid[0] % stride or grid[1] % stride:
            d.problem("postprocess.anchor_args.feature_stride", anchor.get("feature_stride", stride), (
                f"a feature stride that divides the voxel grid {grid[0]} x {grid[1]} (else the model's "
                "map and the anchor grid differ in size): change cav_lidar_range or the model's strides"))
        else:
            d.tie("postprocess.anchor_args.anchor_grid", [grid[0] // stride, grid[1] // stride],
                  "the voxel grid W, H divided by feature_stride")

    # model arguments that repeat other sections
    d.tie("model.args.anchor_number", anchor["num"], "as postprocess.anchor_args.num")
    d.tie("model.args.anchor_num", anchor["num"], "as postprocess.anchor_args.num", fill=False)
    d.tie("model.args.max_cav", cfg["train_params"]["max_cav"], "as train_params.max_cav")
    d.tie("model.args.cls_head_dim", feature_channels(args), "the channels of the map the heads see")
    if "transformer" in args:
        d.tie("model.args.transformer.encoder.sttf.voxel_size", voxel, "as preprocess.args.voxel_size")
        d.tie("model.args.transformer.encoder.sttf.downsample_rate", stride,
              "the model's feature stride, which scales the spatial transform to the feature map")

    # direction classifier: on when model.args.dir_args is given; its loss weight follows
    loss_args = cfg["loss"]["args"]
    if "dir_args" not in args and loss_args.get("dir_weight", 0.0) > 0:
        d.problem("loss.args.dir_weight", loss_args["dir_weight"],
                  "0 or nothing, unless model.args.dir_args sets up a direction classifier")
    loss_args.setdefault("dir_weight", 0.2 if "dir_args" in args else 0.0)

    if d.issues:
        raise ConfigError(source, d.issues)
    return validate(cfg, CONFIG_SCHEMA, source=source)  # filled keys checked, and put in schema order
