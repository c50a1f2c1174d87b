"""The config schema: a small spec language and the schema of a v2xdet (OpenCOOD / V2X-ViT) config.

A spec validates a value parsed from YAML and returns a normalised copy (numbers become floats,
optional keys get their defaults). Problems are collected, never raised one by one: ``validate``
walks the whole tree and raises ONE ``ConfigError`` listing every problem it found, each naming
the key path (``model.args.base_bev_backbone.layer_nums[1]``), the value and what was expected.
Checks that tie a node's own keys together (list lengths, thresholds) run only once that node's
keys are individually valid; checks across sections live in ``v2xdet.config.derive``.

The language: ``Num``, ``Int``, ``Bool``, ``Str(choices=)``, ``List(of, length=)``,
``Dict({key: spec}, aliases=)`` (every key required unless wrapped in ``Optional``),
``Optional(spec, default=)``, ``Derived(spec)`` (a key ``derive`` computes; accepted on input so
that a saved config loads again) and ``OneOf(tag, {name: Dict})`` (a mapping whose ``tag`` key,
e.g. ``core_method`` or ``NAME``, chooses the schema of the rest).

Adding a model argument is one entry in ``COMMON_MODEL_ARGS`` (every model) or in the model's
entry of ``MODELS``; adding a model is one entry in ``MODELS``. The exemplar
(``hypes_yaml/exemplar.yaml``) must show every key: ``tests/test_config.py`` enforces it.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple


class _Sentinel:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING = _Sentinel("MISSING")  # a key that is absent / an Optional without default
INVALID = _Sentinel("INVALID")  # returned by a spec for a value that failed validation

# A check looks at a node that passed its own type checks and yields problems as
# (path relative to the node, offending value, what was expected).
Check = Callable[[Any], Iterable[tuple[str, Any, str]]]


def show(value: Any, limit: int = 80) -> str:
    """Short printable form of a config value for error messages: repr plus its YAML type."""
    if value is MISSING:
        return "nothing (the key is missing)"
    if value is None:
        return "null"
    kind = {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "mapping"}
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{text} ({kind.get(type(value), type(value).__name__)})"


def join(path: str, key: str | int) -> str:
    """Key path of a child: ``a.b`` + ``c`` -> ``a.b.c``; ``a`` + ``3`` (index) -> ``a[3]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if not key:
        return path
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


@dataclass(frozen=True)
class Issue:
    """One problem: where (key path), what was there, what was expected."""

    path: str
    value: Any
    expected: str
    problem: str = ""

    def __str__(self) -> str:
        where = self.path or "<top level>"
        what = f"{self.problem}, " if self.problem else ""
        got = "missing" if self.value is MISSING else f"got {show(self.value)}"
        return f"{where}: {what}{got}; expected {self.expected}"


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and every problem found."""

    def __init__(self, source: str, issues: Iterable[Issue] = (), detail: str = ""):
        self.source = str(source)
        self.issues = tuple(issues)
        if detail:
            message = f"invalid config {self.source}: {detail}"
        else:
            n = len(self.issues)
            head = f"invalid config {self.source}: " + ("1 problem" if n == 1 else f"{n} problems")
            message = "\n  ".join([head, *map(str, self.issues)])
        super().__init__(message)


# ----------------------------------------------------------------------------------------------
# The spec language
# ----------------------------------------------------------------------------------------------


class Spec:
    """Base of all specs: ``validate`` type-checks, normalises, then runs the node's checks."""

    def __init__(self, checks: Iterable[Check] = ()):
        self.checks = tuple(checks)

    def validate(self, value: Any, path: str, issues: list[Issue]) -> Any:
        out = self._validate(value, path, issues)
        if out is INVALID:
            return INVALID
        n_before = len(issues)
        for check in self.checks:
            for rel, bad, expected in check(out):
                issues.append(Issue(join(path, rel), bad, expected))
        return out if len(issues) == n_before else INVALID

    def _validate(self, value: Any, path: str, issues: list[Issue]) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def _fail(self, value: Any, path: str, issues: list[Issue]) -> _Sentinel:
        issues.append(Issue(path, value, self.describe()))
        return INVALID


def _bounds(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" <= {high:g}"
    return ""


class Num(Spec):
    """A finite real number (int or float in the YAML; always a float after validation)."""

    def __init__(self, min: float | None = None, max: float | None = None, *, min_open: bool = False,
                 checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.min, self.max, self.min_open = min, max, min_open

    def describe(self) -> str:
        return "a number" + _bounds(self.min, self.max, self.min_open)

    def _validate(self, value, path, issues):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return self._fail(value, path, issues)
        low_bad = self.min is not None and (value < self.min or (self.min_open and value == self.min))
        if low_bad or (self.max is not None and value > self.max):
            return self._fail(value, path, issues)
        return float(value)


class Int(Spec):
    """An integer (a YAML float such as ``2.0`` is refused: counts and sizes are written whole)."""

    def __init__(self, min: int | None = None, max: int | None = None, checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.min, self.max = min, max

    def describe(self) -> str:
        return "an integer" + _bounds(self.min, self.max, False)

    def _validate(self, value, path, issues):
        if isinstance(value, bool) or not isinstance(value, int):
            return self._fail(value, path, issues)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            return self._fail(value, path, issues)
        return int(value)


class Bool(Spec):
    """``true`` or ``false``."""

    def describe(self) -> str:
        return "true or false"

    def _validate(self, value, path, issues):
        return value if isinstance(value, bool) else self._fail(value, path, issues)


class Str(Spec):
    """A string, optionally one of ``choices`` (a list, or a mapping name -> what it means)."""

    def __init__(self, choices: Iterable[str] | Mapping[str, str] | None = None, *, what: str = "",
                 checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.choices = None if choices is None else tuple(choices)
        self.what = what

    def describe(self) -> str:
        if self.choices is None:
            return "a string"
        return f"{self.what + ', ' if self.what else ''}one of: {', '.join(self.choices)}"

    def _validate(self, value, path, issues):
        if not isinstance(value, str):
            return self._fail(value, path, issues)
        if self.choices is not None and value not in self.choices:
            return self._fail(value, path, issues)
        return value


class List(Spec):
    """A list whose items all match ``of``; ``length`` fixes its size, ``min_len`` bounds it."""

    def __init__(self, of: Spec, length: int | None = None, *, min_len: int = 0,
                 checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.of, self.length, self.min_len = of, length, min_len

    def describe(self) -> str:
        if self.length is not None:
            size = f"{self.length} "
        elif self.min_len > 0:
            size = f"at least {self.min_len} "
        else:
            size = ""
        return f"a list of {size}items, each {self.of.describe()}"

    def _validate(self, value, path, issues):
        if not isinstance(value, list | tuple):
            return self._fail(value, path, issues)
        if (self.length is not None and len(value) != self.length) or len(value) < self.min_len:
            issues.append(Issue(path, value, self.describe(), f"{len(value)} items"))
            return INVALID
        out = [self.of.validate(item, join(path, i), issues) for i, item in enumerate(value)]
        return INVALID if any(item is INVALID for item in out) else out


class Optional(Spec):
    """Marks a ``Dict`` key as optional; ``default`` (validated like a given value) fills it."""

    def __init__(self, spec: Spec, default: Any = MISSING):
        super().__init__()
        self.spec, self.default = spec, default

    def describe(self) -> str:
        return self.spec.describe()

    def _validate(self, value, path, issues):
        return self.spec.validate(value, path, issues)


class Derived(Optional):
    """A key that ``v2xdet.config.derive`` computes; a given value must agree with the computed one."""

    def __init__(self, spec: Spec):
        super().__init__(spec)


class Dict(Spec):
    """A mapping with known keys: unknown keys and missing required keys are problems.

    ``aliases`` maps another spelling of a key to the canonical one (the output uses the canonical
    name). ``allow_empty_list`` accepts ``[]`` for an empty mapping, as OpenCOOD writes
    ``fusion: {args: []}``.
    """

    def __init__(self, fields: Mapping[str, Spec], *, aliases: Mapping[str, str] | None = None,
                 allow_empty_list: bool = False, checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.fields = dict(fields)
        self.aliases = dict(aliases or {})
        self.allow_empty_list = allow_empty_list

    def describe(self) -> str:
        return f"a mapping with keys: {', '.join(self.fields)}"

    def _unknown(self, key: Any) -> str:
        known = list(self.fields) + list(self.aliases)
        near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return f"one of the known keys: {', '.join(self.fields)}{hint}"

    def _validate(self, value, path, issues):
        if value is None or (self.allow_empty_list and value == []):
            value = {}
        if not isinstance(value, Mapping):
            return self._fail(value, path, issues)
        given: dict[str, Any] = {}
        for key, item in value.items():
            name = self.aliases.get(key, key)
            if name not in self.fields:
                issues.append(Issue(join(path, str(key)), item, self._unknown(key), "unknown key"))
            elif name in given:
                issues.append(Issue(join(path, str(key)), item,
                                    f"only one of {name!r} and its alias {key!r}", "duplicate key"))
            else:
                given[name] = item
        out: dict[str, Any] = {}
        ok = len(given) == len(value)
        for name, spec in self.fields.items():
            item = given.get(name, MISSING)
            if item is None and isinstance(spec, Optional):
                item = MISSING  # `key:` with nothing after it means "use the default"
            if item is MISSING:
                if not isinstance(spec, Optional):
                    issues.append(Issue(join(path, name), MISSING, f"a required key: {spec.describe()}"))
                    ok = False
                    continue
                if spec.default is MISSING:
                    continue
                item = _copy(spec.default)
            checked = spec.validate(item, join(path, name), issues)
            ok = ok and checked is not INVALID
            out[name] = checked
        return out if ok else INVALID


class _Tag(Spec):
    """The tag key of a ``OneOf`` variant: outputs the canonical variant name."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def describe(self) -> str:
        return repr(self.name)

    def _validate(self, value, path, issues):
        return self.name


class OneOf(Spec):
    """A tagged union: the mapping's ``tag`` key (``core_method``, ``NAME``) chooses a ``Dict``.

    ``aliases`` maps other names of a variant to its canonical name; the output carries the
    canonical name.
    """

    def __init__(self, tag: str, variants: Mapping[str, Dict], *, aliases: Mapping[str, str] | None = None,
                 what: str = "", checks: Iterable[Check] = ()):
        super().__init__(checks)
        self.tag, self.what = tag, what
        self.aliases = dict(aliases or {})
        self.variants = {
            name: Dict({tag: _Tag(name), **variant.fields}, aliases=variant.aliases,
                       allow_empty_list=variant.allow_empty_list, checks=variant.checks)
            for name, variant in variants.items()
        }

    def names(self) -> str:
        by_target: dict[str, list[str]] = {}
        for alias, target in self.aliases.items():
            by_target.setdefault(target, []).append(alias)
        return ", ".join(name + (f" (alias {', '.join(by_target[name])})" if name in by_target else "")
                         for name in self.variants)

    def describe(self) -> str:
        what = f"{self.what}, " if self.what else ""
        return f"a mapping whose {self.tag!r} is {what}one of: {self.names()}"

    def _validate(self, value, path, issues):
        if not isinstance(value, Mapping):
            return self._fail(value, path, issues)
        name = value.get(self.tag, MISSING)
        if name is MISSING:
            issues.append(Issue(join(path, self.tag), MISSING, f"a required key: {self.describe()}"))
            return INVALID
        canonical = self.aliases.get(name, name) if isinstance(name, str) else None
        if canonical not in self.variants:
            issues.append(Issue(join(path, self.tag), name,
                                f"{self.what + ', ' if self.what else ''}one of: {self.names()}"))
            return INVALID
        return self.variants[canonical].validate(value, path, issues)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def validate(value: Any, spec: Spec | None = None, path: str = "", source: str = "<config>") -> Any:
    """``value`` checked against ``spec`` (default: the whole config schema) and normalised.

    ``path`` is the key path of ``value`` inside its config and ``source`` names the file, both
    for messages; every problem found is reported in ONE ``ConfigError``.
    """
    issues: list[Issue] = []
    out = (spec or CONFIG_SCHEMA).validate(value, path, issues)
    if issues or out is INVALID:
        raise ConfigError(source, issues)
    return out


# ----------------------------------------------------------------------------------------------
# Walking a schema (used by the exemplar test and by anyone documenting the config)
# ----------------------------------------------------------------------------------------------


class KeyPath(NamedTuple):
    path: str  # e.g. "model<point_pillar_transformer>.args.transformer.encoder.depth"
    spec: Spec  # the key's spec, Optional/Derived unwrapped
    derived: bool


def walk_schema(spec: Spec, prefix: str = "") -> Iterator[KeyPath]:
    """Every key path of ``spec``; a ``OneOf`` variant adds ``<name>``, a list item adds ``[]``."""
    if isinstance(spec, Optional):
        spec = spec.spec
    if isinstance(spec, List):
        yield from walk_schema(spec.of, prefix + "[]")
    elif isinstance(spec, OneOf):
        for name, variant in spec.variants.items():
            yield from walk_schema(variant, f"{prefix}<{name}>")
    elif isinstance(spec, Dict):
        for key, field in spec.fields.items():
            path = join(prefix, key)
            inner = field.spec if isinstance(field, Optional) else field
            yield KeyPath(path, inner, isinstance(field, Derived))
            yield from walk_schema(inner, path)


def present_paths(spec: Spec, value: Any, prefix: str = "") -> set[str]:
    """The key paths of ``walk_schema`` that a raw (unvalidated) ``value`` actually writes."""
    if isinstance(spec, Optional):
        spec = spec.spec
    found: set[str] = set()
    if isinstance(spec, List) and isinstance(value, list):
        for item in value:
            found |= present_paths(spec.of, item, prefix + "[]")
    elif isinstance(spec, OneOf) and isinstance(value, Mapping) and isinstance(value.get(spec.tag), str):
        name = spec.aliases.get(value[spec.tag], value[spec.tag])
        if name in spec.variants:
            found |= present_paths(spec.variants[name], value, f"{prefix}<{name}>")
    elif isinstance(spec, Dict) and isinstance(value, Mapping):
        for key, item in value.items():
            name = spec.aliases.get(key, key)
            if name in spec.fields:
                path = join(prefix, name)
                found.add(path)
                found |= present_paths(spec.fields[name], item, path)
    return found


# ----------------------------------------------------------------------------------------------
# Checks shared by several sections
# ----------------------------------------------------------------------------------------------


def _check_range(r: list[float]) -> Iterator[tuple[str, Any, str]]:
    for axis in range(3):
        if r[axis + 3] <= r[axis]:
            yield "", r, (f"[xmin, ymin, zmin, xmax, ymax, zmax] with each max above its min "
                          f"(axis {'xyz'[axis]}: {r[axis + 3]:g} <= {r[axis]:g})")


def _check_interval(rel: str) -> Check:
    def check(node: dict) -> Iterator[tuple[str, Any, str]]:
        low, high = node[rel]
        if low > high:
            yield rel, node[rel], "[low, high] with low <= high"
    return check


def _same_length(*keys: str) -> Check:
    def check(node: dict) -> Iterator[tuple[str, Any, str]]:
        present = [k for k in keys if k in node]
        n = len(node[present[0]])
        for key in present[1:]:
            if len(node[key]) != n:
                yield key, node[key], f"a list as long as {present[0]} ({n} items)"
    return check


def _odd(k: int) -> Iterator[tuple[str, Any, str]]:
    if k % 2 == 0:
        yield "", k, "an odd kernel size (the offset network keeps the grid centred)"


def _increasing(rel: str) -> Check:
    def check(node: dict) -> Iterator[tuple[str, Any, str]]:
        values = node[rel]
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            yield rel, values, "strictly increasing epochs"
    return check


def backbone_stride(args: Mapping) -> float:
    """Stride (in voxels) of the BEV backbone's output: every level must end at the same stride."""
    bb = args["base_bev_backbone"]
    return math.prod(bb["layer_strides"][:1]) / bb["upsample_strides"][0]


def feature_stride(args: Mapping) -> float:
    """Stride (in voxels) of the map the heads see: backbone stride times the shrink header's."""
    shrink = args.get("shrink_header")
    return backbone_stride(args) * (math.prod(shrink["stride"]) if shrink else 1)


def feature_channels(args: Mapping) -> int:
    """Channels of the map the fusion and heads see: shrink header output, else the backbone's."""
    shrink = args.get("shrink_header")
    return shrink["dim"][-1] if shrink else sum(args["base_bev_backbone"]["num_upsample_filter"])


def _check_backbone(bb: dict) -> Iterator[tuple[str, Any, str]]:
    ends = [math.prod(bb["layer_strides"][: i + 1]) / up for i, up in enumerate(bb["upsample_strides"])]
    if any(abs(e - ends[0]) > 1e-9 for e in ends):
        levels = [math.prod(bb["layer_strides"][: i + 1]) for i in range(len(ends))]
        yield "upsample_strides", bb["upsample_strides"], (
            f"upsampling that brings every level to one stride (level strides {levels} divided by "
            f"these give {', '.join(f'{e:g}' for e in ends)})")


def _check_model_args(args: dict) -> Iterator[tuple[str, Any, str]]:
    """Consistency of the model's own arguments (channels and strides that must line up)."""
    vfe_out = args["pillar_vfe"]["num_filters"][-1]
    if args["point_pillar_scatter"]["num_features"] != vfe_out:
        yield "point_pillar_scatter.num_features", args["point_pillar_scatter"]["num_features"], (
            f"the pillar encoder's output channels, pillar_vfe.num_filters[-1] = {vfe_out}")
    up_channels = sum(args["base_bev_backbone"]["num_upsample_filter"])
    shrink = args.get("shrink_header")
    if shrink and shrink["input_dim"] != up_channels:
        yield "shrink_header.input_dim", shrink["input_dim"], (
            f"the backbone's output channels, sum(base_bev_backbone.num_upsample_filter) = {up_channels}")
    channels = feature_channels(args)
    if args.get("compression", 0) > 0 and channels % args["compression"]:
        yield "compression", args["compression"], f"a divisor of the feature channels ({channels})"
    stride = feature_stride(args)
    if abs(stride - round(stride)) > 1e-9 or round(stride) < 1:
        yield "base_bev_backbone.upsample_strides", args["base_bev_backbone"]["upsample_strides"], (
            f"a whole feature stride >= 1 after the shrink header, got {stride:g}")
    encoder = args.get("transformer", {}).get("encoder")
    if encoder:
        for key in ("cav_att_config", "pwindow_att_config"):
            if encoder[key]["dim"] != channels:
                yield f"transformer.encoder.{key}.dim", encoder[key]["dim"], (
                    f"the feature channels the fusion receives ({channels})")
        for key in ("use_RTE", "RTE_ratio"):
            if key in encoder and encoder[key] != encoder["cav_att_config"][key]:
                yield f"transformer.encoder.{key}", encoder[key], (
                    f"the same value as transformer.encoder.cav_att_config.{key} "
                    f"({encoder['cav_att_config'][key]!r}), which the fusion uses")


# ----------------------------------------------------------------------------------------------
# The schema
# ----------------------------------------------------------------------------------------------

RANGE = List(Num(), 6, checks=[_check_range])  # [xmin, ymin, zmin, xmax, ymax, zmax], metres
VOXEL_SIZE = List(Num(0, min_open=True), 3)  # [vx, vy, vz], metres
FRACTION = Num(0, 1)

# yaml_parser: OpenCOOD evaluates this function name; we only look it up. All of these derive
# grid and anchor sizes from the lidar range and voxel size, which ``derive`` does for every config.
YAML_PARSERS = {
    "load_point_pillar_params": "PointPillars: scatter grid size and anchor grid (OpenCOOD, V2X-ViT)",
    "load_voxel_params": "VoxelNet: anchor grid from the voxel size (OpenCOOD)",
    "load_second_params": "SECOND: grid size and anchor grid (OpenCOOD)",
    "load_general_params": "HEAL / CoAlign: grid size and anchor grid",
}

# fusion.core_method: OpenCOOD dataset class names and v2xdet's short names -> strategy.
FUSION_STRATEGIES = {
    "none": "none",
    "late": "late",
    "early": "early",
    "intermediate": "intermediate",
    "LateFusionDataset": "late",
    "EarlyFusionDataset": "early",
    "IntermediateFusionDataset": "intermediate",
    "IntermediateFusionDatasetV2": "intermediate",
}

TRAIN_PARAMS = Dict({
    "batch_size": Int(1),
    "epoches": Int(1),  # OpenCOOD's spelling
    "eval_freq": Optional(Int(0), 1),
    "save_freq": Optional(Int(1), 1),
    "save_every_steps": Optional(Int(0), 0),  # also refresh latest.pth every N steps; 0: epochs only
    "max_cav": Optional(Int(1), 5),
    "num_threads": Optional(Int(0), 0),
    "num_workers": Optional(Int(0), 0),
    "seed": Optional(Int(0), 0),
})

WILD_SETTING = Dict({
    "async": Optional(Bool(), False),
    "async_mode": Optional(Str(["sim", "real"]), "sim"),
    "async_overhead": Optional(Num(0), 100.0),
    "seed": Optional(Int(0), 25),
    "loc_err": Optional(Bool(), False),
    "xyz_std": Optional(Num(0), 0.2),
    "ryp_std": Optional(Num(0), 0.2),
    "data_size": Optional(Num(0), 0.0),
    "transmission_speed": Optional(Num(0, min_open=True), 27.0),
    "backbone_delay": Optional(Num(0), 0.0),
})

FUSION = Dict({
    "core_method": Str(FUSION_STRATEGIES, what="a fusion strategy"),
    "cur_ego_pose_flag": Optional(Bool()),  # V2X-ViT's F-Cooper config puts it here; moved to args
    "args": Optional(Dict({
        "cur_ego_pose_flag": Optional(Bool()),  # default True, filled by derive
        "proj_first": Optional(Bool(), False),
        "ego_choice": Optional(Str(["first", "random"]), "first"),
    }, allow_empty_list=True), {}),
    "strategy": Derived(Str(["none", "late", "early", "intermediate"])),
})

DATA_AUGMENT = List(OneOf("NAME", {
    "random_world_flip": Dict({"ALONG_AXIS_LIST": List(Str(["x", "y"]), min_len=1)}),
    "random_world_rotation": Dict({"WORLD_ROT_ANGLE": List(Num(-math.pi, math.pi), 2)},
                                  checks=[_check_interval("WORLD_ROT_ANGLE")]),
    "random_world_scaling": Dict({"WORLD_SCALE_RANGE": List(Num(0, min_open=True), 2)},
                                 checks=[_check_interval("WORLD_SCALE_RANGE")]),
}, what="an augmentation"))

PREPROCESS = Dict({
    "core_method": Str(["SpVoxelPreprocessor", "VoxelPreprocessor"], what="a voxelizer"),
    "args": Dict({
        "voxel_size": VOXEL_SIZE,
        "max_points_per_voxel": Int(1),
        "max_voxel_train": Int(1),
        "max_voxel_test": Int(1),
    }),
    "cav_lidar_range": RANGE,
    "grid_size": Derived(List(Int(1), 3)),
})


def _check_anchor_args(a: dict) -> Iterator[tuple[str, Any, str]]:
    if a["num"] != len(a["r"]):
        yield "num", a["num"], f"the number of anchor yaws, len(r) = {len(a['r'])}"


def _check_thresholds(t: dict) -> Iterator[tuple[str, Any, str]]:
    if t["neg_threshold"] > t["pos_threshold"]:
        yield "neg_threshold", t["neg_threshold"], f"at most pos_threshold ({t['pos_threshold']:g})"


POSTPROCESS = Dict({
    "core_method": Str(["VoxelPostprocessor"], what="an anchor postprocessor"),
    "gt_range": Optional(RANGE),
    "anchor_args": Dict({
        "cav_lidar_range": Optional(RANGE),
        "l": Num(0, min_open=True),
        "w": Num(0, min_open=True),
        "h": Num(0, min_open=True),
        "r": List(Num(-360, 360), min_len=1),
        "feature_stride": Optional(Int(1)),
        "num": Int(1),
        "vw": Derived(Num(0, min_open=True)),
        "vh": Derived(Num(0, min_open=True)),
        "vd": Derived(Num(0, min_open=True)),
        "W": Derived(Int(1)),
        "H": Derived(Int(1)),
        "D": Derived(Int(1)),
        "anchor_grid": Derived(List(Int(1), 2)),
    }, checks=[_check_anchor_args]),
    "target_args": Dict({
        "pos_threshold": FRACTION,
        "neg_threshold": FRACTION,
        "score_threshold": FRACTION,
        "min_points": Optional(Int(0), 0),
    }, checks=[_check_thresholds]),
    "order": Optional(Str(["hwl", "lwh"]), "hwl"),
    "max_num": Optional(Int(1), 100),
    "nms_thresh": FRACTION,
})

# ---- model ------------------------------------------------------------------------------------

COMMON_MODEL_ARGS: dict[str, Spec] = {
    "voxel_size": Optional(VOXEL_SIZE),
    "lidar_range": Optional(RANGE),
    "anchor_number": Optional(Int(1)),
    "anchor_num": Optional(Int(1)),  # V2X-ViT's point_pillar configs repeat anchor_number here
    "max_cav": Optional(Int(1)),
    "compression": Optional(Int(0), 0),
    "backbone_fix": Optional(Bool(), False),
    "cls_head_dim": Optional(Int(1)),
    "pillar_vfe": Dict({
        "use_norm": Bool(),
        "with_distance": Bool(),
        "use_absolute_xyz": Bool(),
        "num_filters": List(Int(1), min_len=1),
    }),
    "point_pillar_scatter": Dict({
        "num_features": Int(1),
        "grid_size": Derived(List(Int(1), 3)),
    }),
    "base_bev_backbone": Dict({
        "layer_nums": List(Int(1), min_len=1),
        "layer_strides": List(Int(1), min_len=1),
        "num_filters": List(Int(1), min_len=1),
        "upsample_strides": List(Int(1), min_len=1),
        "num_upsample_filter": List(Int(1), min_len=1),
    }, checks=[_same_length("layer_nums", "layer_strides", "num_filters", "upsample_strides",
                            "num_upsample_filter"), _check_backbone]),
    "shrink_header": Optional(Dict({
        "kernal_size": List(Int(1), min_len=1),  # V2X-ViT's spelling; OpenCOOD's kernel_size is an alias
        "stride": List(Int(1), min_len=1),
        "padding": List(Int(0), min_len=1),
        "dim": List(Int(1), min_len=1),
        "input_dim": Int(1),
    }, aliases={"kernel_size": "kernal_size"},
        checks=[_same_length("kernal_size", "stride", "padding", "dim")])),
    "dir_args": Optional(Dict({
        "dir_offset": Optional(Num(-math.pi, math.pi), math.pi / 4),
        "num_bins": Optional(Int(2), 2),
    })),
}

_ATTENTION = {"heads": Int(1), "dim_head": Int(1), "dropout": Num(0, 1)}

CAV_ATT_CONFIG = Dict({
    "dim": Int(1),
    "use_hetero": Bool(),
    "use_RTE": Bool(),
    "RTE_ratio": Int(1),
    **_ATTENTION,
})

_PWINDOW_FIELDS: dict[str, Spec] = {
    "dim": Int(1),
    "heads": List(Int(1), min_len=1),
    "dim_head": List(Int(1), min_len=1),
    "dropout": Num(0, 1),
    "window_size": List(Int(1), min_len=1),
    "relative_pos_embedding": Bool(),
    "fusion_method": Str(["split_attn", "naive"], what="a branch fusion"),
}
_PWINDOW_CHECKS = [_same_length("window_size", "heads", "dim_head")]

# Deformable-branch defaults: measured over an MSwin block alone at 5 agents (tools/bench_fusion.py
# --mswin), 2 heads x 64 at stride 8 add +22%, 4 x 32 +39% and stride 4 +135%, so the cheap setting
# is the default.
DEFORM = Dict({
    "enabled": Bool(),
    "heads": Optional(Int(1), 2),
    "dim_head": Optional(Int(1), 64),
    "stride": Optional(Int(1), 8),
    "offset_range_factor": Optional(Num(0, min_open=True), 2.0),
    "offset_kernel": Optional(Int(1, checks=[_odd]), 5),
    "sample_from": Optional(Str(["own", "all"]), "all"),
    "use_pe": Optional(Bool(), True),
})


def _transformer(pwindow: Dict) -> Dict:
    """V2X-ViT's ``transformer`` argument with the given spatial (MSwin) attention block."""
    return Dict({"encoder": Dict({
        "num_blocks": Int(1),
        "depth": Int(1),
        "use_roi_mask": Bool(),
        "use_RTE": Optional(Bool()),
        "RTE_ratio": Optional(Int(1)),
        "cav_att_config": CAV_ATT_CONFIG,
        "pwindow_att_config": pwindow,
        "feed_forward": Dict({"mlp_dim": Int(1), "dropout": Num(0, 1)}),
        "sttf": Dict({
            "voxel_size": Optional(VOXEL_SIZE),
            "downsample_rate": Optional(Int(1)),
        }),
    })})


V2XVIT_TRANSFORMER = _transformer(Dict(_PWINDOW_FIELDS, checks=_PWINDOW_CHECKS))
MSWIN_DEFORM_TRANSFORMER = _transformer(Dict({**_PWINDOW_FIELDS, "deform": DEFORM}, checks=_PWINDOW_CHECKS))


class Model(NamedTuple):
    strategies: tuple[str, ...]  # fusion strategies the model serves
    args: dict[str, Spec]  # arguments on top of COMMON_MODEL_ARGS


SINGLE_AGENT = ("none", "early", "late")
INTERMEDIATE = ("intermediate",)

MODELS: dict[str, Model] = {
    "point_pillar": Model(SINGLE_AGENT, {}),
    "point_pillar_fcooper": Model(INTERMEDIATE, {}),
    "point_pillar_opv2v": Model(INTERMEDIATE, {}),
    "point_pillar_transformer": Model(INTERMEDIATE, {"transformer": V2XVIT_TRANSFORMER}),
    "point_pillar_mswin_deform": Model(INTERMEDIATE, {"transformer": MSWIN_DEFORM_TRANSFORMER}),
}
MODEL_ALIASES = {"point_pillar_attfuse": "point_pillar_opv2v"}

MODEL = OneOf("core_method", {
    name: Dict({"args": Dict({**COMMON_MODEL_ARGS, **model.args}, checks=[_check_model_args])})
    for name, model in MODELS.items()
}, aliases=MODEL_ALIASES, what="a model")

LOSS = Dict({
    "core_method": Str(["point_pillar_loss"], what="a loss"),
    "args": Dict({
        "cls_weight": Num(0),
        "reg": Num(0),
        "dir_weight": Optional(Num(0)),
    }),
})

_ADAM_ARGS = Dict({
    "eps": Optional(Num(0, min_open=True)),
    "weight_decay": Optional(Num(0)),
    "betas": Optional(List(Num(0, 1), 2)),
    "amsgrad": Optional(Bool()),
})
OPTIMIZER = OneOf("core_method", {
    "Adam": Dict({"lr": Num(0, min_open=True), "args": Optional(_ADAM_ARGS, {})}),
    "AdamW": Dict({"lr": Num(0, min_open=True), "args": Optional(_ADAM_ARGS, {})}),
    "SGD": Dict({"lr": Num(0, min_open=True), "args": Optional(Dict({
        "momentum": Optional(Num(0)),
        "weight_decay": Optional(Num(0)),
        "nesterov": Optional(Bool()),
    }), {})}),
}, what="a torch.optim optimizer")

GAMMA = Num(0, 1, min_open=True)
LR_SCHEDULER = OneOf("core_method", {
    "step": Dict({"gamma": GAMMA, "step_size": Int(1)}),
    "multistep": Dict({"gamma": GAMMA, "step_size": List(Int(1), min_len=1)},
                      checks=[_increasing("step_size")]),
    "exponential": Dict({"gamma": GAMMA}),
    "cosineannealwarm": Dict({
        "epoches": Int(1),
        "warmup_lr": Num(0),
        "warmup_epoches": Int(0),
        "lr_min": Num(0),
    }),
}, what="a learning-rate schedule")

CONFIG_SCHEMA = Dict({
    "name": Str(),
    "root_dir": Str(),
    "validate_dir": Str(),
    "test_dir": Optional(Str()),
    "yaml_parser": Optional(Str(YAML_PARSERS, what="a known yaml_parser (looked up, never evaluated)"),
                            "load_point_pillar_params"),
    "train_params": TRAIN_PARAMS,
    "comm_range": Optional(Num(0, min_open=True), 70.0),
    "wild_setting": Optional(WILD_SETTING, {}),
    "fusion": FUSION,
    "data_augment": Optional(DATA_AUGMENT, []),
    "preprocess": PREPROCESS,
    "postprocess": POSTPROCESS,
    "model": MODEL,
    "loss": LOSS,
    "optimizer": OPTIMIZER,
    "lr_scheduler": LR_SCHEDULER,
})
