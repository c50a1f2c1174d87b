"""Config loading, validation, derived values, the exemplar, and the V2X-ViT V2XSet config."""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from v2xdet import config_schema as cs
from v2xdet.config import (
    ConfigError,
    derive,
    load_config,
    merge,
    parse_overrides,
    parse_yaml,
    read_yaml,
    resolve,
    save_config,
)

REPO = Path(__file__).resolve().parents[1]
EXEMPLAR = REPO / "hypes_yaml" / "exemplar.yaml"
V2XVIT = REPO / "hypes_yaml" / "v2xset" / "point_pillar_v2xvit.yaml"
V2XVIT_RANGE = "[-140.8, -38.4, -3, 140.8, 38.4, 1]"


def write_variant(tmp_path: Path, patch: dict | None = None, text_from: str | None = None,
                  base: Path = V2XVIT) -> Path:
    """A config file made from ``base``: its text with ``text_from`` edits, then ``patch`` merged."""
    text = base.read_text()
    if text_from is not None:
        old, new = text_from
        assert old in text
        text = text.replace(old, new)
    raw = parse_yaml(text)
    if patch:
        raw = merge(raw, patch)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def load_error(path: Path, **kwargs) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return info.value


def variant_blocks(text: str) -> list[tuple[str, dict]]:
    """The exemplar's ``#>`` blocks: (title, parsed patch)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("#> ---"):
            blocks.append((line[len("#> ---"):].strip(), []))
        elif line.startswith("#>"):
            blocks[-1][1].append(line[3:] if line.startswith("#> ") else line[2:])
    return [(title, parse_yaml("\n".join(lines), title)) for title, lines in blocks]


def strip_tags(path: str) -> str:
    return re.sub(r"<[^>]*>", "", path)


# ---------------------------------------------------------------------------------------------
# V2X-ViT's V2XSet config
# ---------------------------------------------------------------------------------------------


def test_v2xvit_config_derived_grid_and_anchors():
    cfg = load_config(V2XVIT)
    # independent computation: 281.6 m / 0.4 m, 76.8 m / 0.4 m, 4 m / 4 m
    assert cfg["preprocess"]["grid_size"] == [704, 192, 1]
    assert cfg["model"]["args"]["point_pillar_scatter"]["grid_size"] == [704, 192, 1]
    anchor = cfg["postprocess"]["anchor_args"]
    assert (anchor["W"], anchor["H"], anchor["D"]) == (704, 192, 1)
    assert (anchor["vw"], anchor["vh"], anchor["vd"]) == (0.4, 0.4, 4.0)
    # V2X-ViT's own setting: backbone stride 2, shrink header stride 2 -> feature stride 4
    assert anchor["feature_stride"] == 4
    assert anchor["anchor_grid"] == [176, 48]
    assert cfg["fusion"]["strategy"] == "intermediate"
    assert cfg["model"]["args"]["cls_head_dim"] == 256
    assert cfg["postprocess"]["gt_range"] == cfg["preprocess"]["cav_lidar_range"]
    assert isinstance(cfg["optimizer"]["args"]["eps"], float) and cfg["optimizer"]["args"]["eps"] == 1e-10


def test_v2xvit_config_feature_stride_2_gives_352_by_96_anchor_grid():
    cfg = load_config(V2XVIT, overrides={
        "postprocess.anchor_args.feature_stride": 2,
        "model.args.shrink_header.stride": [1],
        "model.args.transformer.encoder.sttf.downsample_rate": 2,
    })
    assert cfg["postprocess"]["anchor_args"]["anchor_grid"] == [352, 96]
    assert cfg["preprocess"]["grid_size"] == [704, 192, 1]


def test_v2xvit_config_keeps_every_key_and_value_of_the_file():
    """The resolved config is the file plus defaults and derived keys: nothing renamed or changed."""
    raw, cfg = read_yaml(V2XVIT), load_config(V2XVIT)

    def leaves(node, path=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, (*path, k))
        elif isinstance(node, list) and node and isinstance(node[0], dict):
            for i, v in enumerate(node):
                yield from leaves(v, (*path, i))
        else:
            yield path, node

    n = 0
    for path, value in leaves(raw):
        got = cfg
        for part in path:
            got = got[part]
        assert got == value, path
        n += 1
    assert n > 80
    assert cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["window_size"] == [4, 8, 16]
    assert cfg["wild_setting"]["async_mode"] == "sim" and cfg["wild_setting"]["backbone_delay"] == 10


# ---------------------------------------------------------------------------------------------
# Errors: each names the file, the key path, the value and what was expected
# ---------------------------------------------------------------------------------------------


def test_unknown_key(tmp_path):
    path = write_variant(tmp_path, {"train_params": {"epochs": 60}})
    err = load_error(path)
    msg = str(err)
    assert str(path) in msg
    assert "train_params.epochs: unknown key" in msg
    assert "60 (int)" in msg
    assert "one of the known keys: batch_size, epoches" in msg and "did you mean 'epoches'" in msg
    assert [i.path for i in err.issues] == ["train_params.epochs"]


def test_save_every_steps_is_a_training_option(tmp_path):
    from v2xdet.engine.trainer import TrainOptions

    assert load_config(write_variant(tmp_path, {}))["train_params"]["save_every_steps"] == 0
    cfg = load_config(write_variant(tmp_path, {"train_params": {"save_every_steps": 50}}))
    assert cfg["train_params"]["save_every_steps"] == 50
    assert TrainOptions.from_config(cfg).save_every_steps == 50
    msg = str(load_error(write_variant(tmp_path, {"train_params": {"save_every_steps": -1}})))
    assert "train_params.save_every_steps: got -1 (int); expected an integer >= 0" in msg


def test_eval_freq_zero_means_never_validate(tmp_path):
    from v2xdet.engine.trainer import TrainOptions

    cfg = load_config(write_variant(tmp_path, {"train_params": {"eval_freq": 0}}))
    assert TrainOptions.from_config(cfg).eval_freq == 0
    msg = str(load_error(write_variant(tmp_path, {"train_params": {"eval_freq": -2}})))
    assert "train_params.eval_freq: got -2 (int); expected an integer >= 0" in msg


def test_wrong_type_names_list_index(tmp_path):
    path = write_variant(tmp_path, {"model": {"args": {"base_bev_backbone": {"layer_nums": [3, "five", 8]}}}})
    err = load_error(path)
    msg = str(err)
    assert str(path) in msg
    assert "model.args.base_bev_backbone.layer_nums[1]: got 'five' (string); expected an integer >= 1" in msg
    assert len(err.issues) == 1


def test_missing_required_key(tmp_path):
    path = write_variant(tmp_path, {"model": {"args": {"pillar_vfe": {"num_filters": None}}}})
    msg = str(load_error(path))
    assert str(path) in msg
    assert ("model.args.pillar_vfe.num_filters: missing; expected a required key: "
            "a list of at least 1 items, each an integer >= 1") in msg


def test_value_out_of_range(tmp_path):
    path = write_variant(tmp_path, {"postprocess": {"target_args": {"pos_threshold": 1.5}}})
    msg = str(load_error(path))
    assert str(path) in msg
    assert "postprocess.target_args.pos_threshold: got 1.5 (float); expected a number in [0, 1]" in msg


def test_range_not_a_multiple_of_voxel_size(tmp_path):
    bad = "[-140.8, -38.4, -3, 140.8, 38.5, 1]"
    path = write_variant(tmp_path, text_from=(V2XVIT_RANGE, bad))
    err = load_error(path)
    msg = str(err)
    assert str(path) in msg
    assert "preprocess.cav_lidar_range: got [-140.8, -38.4, -3.0, 140.8, 38.5, 1.0] (list)" in msg
    assert "whole number of voxels" in msg and "along y it spans 76.9 m = 192.25 voxels of 0.4 m" in msg
    assert [i.path for i in err.issues] == ["preprocess.cav_lidar_range"]


def test_unknown_yaml_parser_lists_known_ones_and_is_never_evaluated(tmp_path):
    path = write_variant(tmp_path, {"yaml_parser": "__import__('os').getcwd"})
    msg = str(load_error(path))
    assert str(path) in msg
    assert "yaml_parser: got \"__import__('os').getcwd\" (string)" in msg
    for name in ("load_point_pillar_params", "load_voxel_params", "load_second_params",
                 "load_general_params"):
        assert name in msg


def test_unknown_core_method_lists_models(tmp_path):
    path = write_variant(tmp_path, {"model": {"core_method": "point_pillar_v2vnet"}})
    msg = str(load_error(path))
    assert str(path) in msg
    assert ("model.core_method: got 'point_pillar_v2vnet' (string); "
            "expected a model, one of: point_pillar,") in msg
    assert "point_pillar_opv2v (alias point_pillar_attfuse)" in msg and "point_pillar_mswin_deform" in msg


def test_all_schema_problems_reported_in_one_error(tmp_path):
    path = write_variant(tmp_path, {"train_params": {"batch_size": 0, "epochs": 3},
                                    "optimizer": {"lr": -1},
                                    "lr_scheduler": {"step_size": [50, 15]}})
    err = load_error(path)
    assert sorted(i.path for i in err.issues) == [
        "lr_scheduler.step_size", "optimizer.lr", "train_params.batch_size", "train_params.epochs"]
    assert str(err).startswith(f"invalid config {path}: 4 problems")


def test_derived_value_disagreeing_with_file_is_an_error(tmp_path):
    path = write_variant(tmp_path, {"model": {"args": {"voxel_size": [0.2, 0.2, 4]}},
                                    "postprocess": {"anchor_args": {"feature_stride": 2}}})
    err = load_error(path)
    msg = str(err)
    assert "model.args.voxel_size: got [0.2, 0.2, 4.0] (list); expected [0.4, 0.4, 4.0] (list), as " \
           "preprocess.args.voxel_size" in msg
    assert "postprocess.anchor_args.feature_stride: got 2 (int); expected 4 (int)" in msg
    assert len(err.issues) == 2


def test_model_must_fit_fusion_strategy(tmp_path):
    path = write_variant(tmp_path, {"model": {"core_method": "point_pillar", "args": {"transformer": None}}})
    msg = str(load_error(path))
    assert "model.core_method: got 'point_pillar' (string); expected a model for intermediate fusion" in msg
    assert "point_pillar_transformer" in msg


def test_model_args_consistency_checks(tmp_path):
    path = write_variant(tmp_path, {"model": {"args": {
        "point_pillar_scatter": {"num_features": 32},
        "shrink_header": {"input_dim": 256},
        "compression": 3,
        "base_bev_backbone": {"upsample_strides": [1, 2, 2]},
    }}})
    err = load_error(path)
    paths = sorted(i.path for i in err.issues)
    assert paths == ["model.args.base_bev_backbone.upsample_strides"]  # checks of the parent wait for it
    assert "every level to one stride" in str(err)
    assert "strides [2, 4, 8] divided by these give 2, 2, 4" in str(err)
    path = write_variant(tmp_path, {"model": {"args": {
        "point_pillar_scatter": {"num_features": 32},
        "shrink_header": {"input_dim": 256},
        "compression": 3,
    }}})
    paths = sorted(i.path for i in load_error(path).issues)
    assert paths == ["model.args.compression", "model.args.point_pillar_scatter.num_features",
                     "model.args.shrink_header.input_dim"]


def test_dir_weight_needs_dir_args(tmp_path):
    path = write_variant(tmp_path, {"loss": {"args": {"dir_weight": 0.2}}})
    msg = str(load_error(path))
    assert "loss.args.dir_weight: got 0.2 (float); expected 0 or nothing, unless model.args.dir_args" in msg
    cfg = load_config(write_variant(tmp_path, {"model": {"args": {"dir_args": {}}}}))
    assert cfg["model"]["args"]["dir_args"] == {"dir_offset": math.pi / 4, "num_bins": 2}
    assert cfg["loss"]["args"]["dir_weight"] == 0.2


def test_yaml_errors_name_file_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: a\ntrain_params:\n  batch_size: 2\n  batch_size: 4\n")
    msg = str(load_error(path))
    assert str(path) in msg and "duplicate key 'batch_size'" in msg and "line 4" in msg
    path.write_text("name: [a\n")
    assert "not valid YAML" in str(load_error(path))
    path.write_text("a: 1\n---\nb: 2\n")
    assert "exactly one YAML document, found 2" in str(load_error(path))
    path.write_text("- 1\n- 2\n")
    assert "<top level>: got [1, 2] (list); expected a mapping" in str(load_error(path))
    with pytest.raises(FileNotFoundError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------
# YAML features, overrides, save / load
# ---------------------------------------------------------------------------------------------


def test_yaml_anchors_aliases_merge_keys_and_exponent_floats():
    doc = parse_yaml(
        "base: &b {x: 1, y: [1, 2]}\n"
        "other:\n  <<: *b\n  y: 3\n"
        "same: *b\n"
        "floats: [1e-3, 1E5, -2.5e-3, .5e1, 1.5, +3e2]\n"
        "kept: ['1e-3', 1, 0x10, true, sim]\n")
    assert doc["other"] == {"x": 1, "y": 3}
    assert doc["same"] == {"x": 1, "y": [1, 2]}
    assert doc["floats"] == [0.001, 100000.0, -0.0025, 5.0, 1.5, 300.0]
    assert all(type(v) is float for v in doc["floats"])
    assert doc["kept"] == ["1e-3", 1, 16, True, "sim"]
    assert type(doc["kept"][1]) is int
    # the global PyYAML loaders are untouched
    assert yaml.safe_load("a: 1e-3")["a"] == "1e-3"


def test_anchored_values_are_independent_after_loading():
    cfg = load_config(V2XVIT)
    cfg["preprocess"]["args"]["voxel_size"][0] = 9.0
    assert cfg["model"]["args"]["voxel_size"][0] == 0.4


def test_overrides_dotted_nested_and_removal(tmp_path):
    base = load_config(V2XVIT)
    cfg = load_config(V2XVIT, overrides={
        "train_params.batch_size": 4,
        "model": {"args": {"compression": 32}},
        "optimizer.lr": 2e-3,
        "wild_setting.backbone_delay": None,  # removed -> default 0
    })
    assert cfg["train_params"]["batch_size"] == 4 and base["train_params"]["batch_size"] == 2
    assert cfg["model"]["args"]["compression"] == 32
    assert cfg["model"]["args"]["shrink_header"] == base["model"]["args"]["shrink_header"]
    assert cfg["optimizer"]["lr"] == 0.002
    assert cfg["wild_setting"]["backbone_delay"] == 0.0
    err = load_error(V2XVIT, overrides={"train_params.batch_size": "two"})
    assert "with overrides of train_params.batch_size" in str(err)
    assert "train_params.batch_size: got 'two' (string)" in str(err)


def test_parse_overrides():
    got = parse_overrides(["train_params.batch_size=4", "optimizer.lr=1e-3", "a.b=[1, 2]", "c=null", "d=x=y"])
    assert got == {"train_params.batch_size": 4, "optimizer.lr": 0.001, "a.b": [1, 2], "c": None, "d": "x=y"}
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        parse_overrides(["novalue"])


@pytest.mark.parametrize("source", [V2XVIT, EXEMPLAR])
def test_save_load_round_trip(tmp_path, source):
    cfg = load_config(source)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    out = save_config(cfg, model_dir / "config.yaml")
    assert out == model_dir / "config.yaml"
    assert sorted(p.name for p in model_dir.iterdir()) == ["config.yaml"]  # no temp file left
    text = out.read_text()
    assert "&id" not in text and "*id" not in text  # no YAML aliases in the saved file
    again = load_config(model_dir)  # a model folder loads its config.yaml
    assert again == cfg
    assert derive(again) == again  # deriving is idempotent
    save_config(again, out)  # overwriting works and stays identical
    assert out.read_text() == text


def test_save_refuses_unresolved_or_inconsistent_config(tmp_path):
    raw = read_yaml(V2XVIT)
    with pytest.raises(ConfigError, match="not resolved"):
        save_config(raw, tmp_path / "a.yaml")
    cfg = load_config(V2XVIT)
    cfg["preprocess"]["args"]["voxel_size"] = [0.8, 0.8, 4.0]
    with pytest.raises(ConfigError, match="preprocess.grid_size"):
        save_config(cfg, tmp_path / "a.yaml")
    assert not (tmp_path / "a.yaml").exists()


# ---------------------------------------------------------------------------------------------
# OpenCOOD / V2X-ViT style files
# ---------------------------------------------------------------------------------------------


def test_opencood_early_fusion_style(tmp_path):
    """OpenCOOD's point_pillar_early_fusion.yaml shape: args: [], no shrink header, no feature_stride."""
    path = write_variant(tmp_path, {
        "fusion": {"core_method": "EarlyFusionDataset", "args": []},
        "wild_setting": None,
        "model": {"core_method": "point_pillar", "args": {
            "transformer": None, "shrink_header": None, "max_cav": None, "compression": None,
            "backbone_fix": None, "anchor_num": 2}},
        "postprocess": {"anchor_args": {"feature_stride": None}},
    }, text_from=(V2XVIT_RANGE, "[-140.8, -40, -3, 140.8, 40, 1]"))
    cfg = load_config(path)
    assert cfg["fusion"]["strategy"] == "early"
    assert cfg["fusion"]["args"] == {"cur_ego_pose_flag": True, "proj_first": False, "ego_choice": "first"}
    assert cfg["wild_setting"]["async"] is False and cfg["wild_setting"]["loc_err"] is False
    anchor = cfg["postprocess"]["anchor_args"]
    assert anchor["feature_stride"] == 2  # OpenCOOD's default, and the backbone's stride
    assert (anchor["W"], anchor["H"]) == (704, 200) and anchor["anchor_grid"] == [352, 100]
    assert cfg["model"]["args"]["cls_head_dim"] == 384


def test_v2xvit_fcooper_style_flag_and_kernel_size_alias(tmp_path):
    path = write_variant(tmp_path, {
        "fusion": {"args": None, "cur_ego_pose_flag": True},
        "model": {"core_method": "point_pillar_fcooper", "args": {
            "transformer": None, "shrink_header": {"kernal_size": None, "kernel_size": [3]}}},
    })
    cfg = load_config(path)
    assert "cur_ego_pose_flag" not in cfg["fusion"] and cfg["fusion"]["args"]["cur_ego_pose_flag"] is True
    assert cfg["model"]["args"]["shrink_header"]["kernal_size"] == [3]
    assert "kernel_size" not in cfg["model"]["args"]["shrink_header"]
    path = write_variant(tmp_path, {"fusion": {"cur_ego_pose_flag": True}})  # args say False
    assert "fusion.args.cur_ego_pose_flag: got False (bool); expected True (bool)" in str(load_error(path))
    path = write_variant(tmp_path, {"model": {"args": {"shrink_header": {"kernel_size": [3]}}}})
    assert "model.args.shrink_header.kernel_size: duplicate key" in str(load_error(path))


def test_model_alias_is_canonicalised(tmp_path):
    patch = {"model": {"core_method": "point_pillar_attfuse", "args": {"transformer": None}}}
    path = write_variant(tmp_path, patch)
    assert load_config(path)["model"]["core_method"] == "point_pillar_opv2v"


# ---------------------------------------------------------------------------------------------
# The exemplar
# ---------------------------------------------------------------------------------------------


def test_exemplar_and_all_its_variants_load():
    text = EXEMPLAR.read_text()
    base = read_yaml(EXEMPLAR)
    cfg = load_config(EXEMPLAR)
    deform = cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["deform"]
    assert deform["enabled"] is True and deform["sample_from"] == "all"
    blocks = variant_blocks(text)
    assert len(blocks) >= 5
    models = {cfg["model"]["core_method"]}
    for title, patch in blocks:
        variant = resolve(merge(base, patch), f"exemplar variant {title!r}")
        models.add(variant["model"]["core_method"])
    assert models == set(cs.MODELS)


def test_deformable_branch_defaults_are_the_cheap_setting(tmp_path):
    """Unset, the branch gets 2 heads x 64 at stride 8 (measured +22% over an MSwin block at 5 agents;
    4 x 32: +39%, stride 4: +135%)."""
    unset = {"model": {"args": {"transformer": {"encoder": {"pwindow_att_config": {"deform": {
        "heads": None, "dim_head": None, "stride": None}}}}}}}
    cfg = load_config(write_variant(tmp_path, unset, base=EXEMPLAR))
    deform = cfg["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["deform"]
    assert (deform["heads"], deform["dim_head"], deform["stride"]) == (2, 64, 8)
    shown = load_config(EXEMPLAR)["model"]["args"]["transformer"]["encoder"]["pwindow_att_config"]["deform"]
    assert (shown["heads"], shown["dim_head"], shown["stride"]) == (2, 64, 8)


def test_exemplar_shows_every_schema_key():
    text = EXEMPLAR.read_text()
    base = read_yaml(EXEMPLAR)
    present = cs.present_paths(cs.CONFIG_SCHEMA, base)
    for _, patch in variant_blocks(text):
        present |= cs.present_paths(cs.CONFIG_SCHEMA, merge(base, patch))
        present |= cs.present_paths(cs.CONFIG_SCHEMA, patch)  # keys that a later null removes
    keys = [k for k in cs.walk_schema(cs.CONFIG_SCHEMA) if not k.derived]
    assert len(keys) > 300  # every model variant's arguments are walked
    assert "model<point_pillar_mswin_deform>.args.transformer.encoder.pwindow_att_config.deform.sample_from" \
        in {k.path for k in keys}
    missing = sorted(k.path for k in keys if k.path not in present)
    assert not missing, f"keys the exemplar does not show: {missing}"


def test_exemplar_documents_derived_keys_and_every_allowed_name():
    text = EXEMPLAR.read_text()
    derived = {strip_tags(k.path) for k in cs.walk_schema(cs.CONFIG_SCHEMA) if k.derived}
    assert "postprocess.anchor_args.anchor_grid" in derived
    assert not [p for p in derived if p not in text]
    names = set(cs.YAML_PARSERS) | set(cs.FUSION_STRATEGIES) | set(cs.MODEL_ALIASES)
    for key in cs.walk_schema(cs.CONFIG_SCHEMA):
        if isinstance(key.spec, cs.Str) and key.spec.choices:
            names |= set(key.spec.choices)
        if isinstance(key.spec, cs.Dict):
            names |= set(key.spec.aliases)
    assert not sorted(n for n in names if not re.search(rf"\b{re.escape(n)}\b", text))


def test_exemplar_every_key_line_has_a_comment():
    """Each key has a comment on its line or just above; in variant blocks, each key with a value."""
    raw_lines = EXEMPLAR.read_text().splitlines()
    lines = [line[3:] if line.startswith("#> ") else line for line in raw_lines]
    undocumented, n_keys = [], 0
    for i, (raw, line) in enumerate(zip(raw_lines, lines, strict=True)):
        key = re.match(r"^\s*(?:-\s+)?[A-Za-z_]\w*\s*:(.*)$", line)
        if not key or (raw.startswith("#>") and not key.group(1).split("#")[0].strip()):
            continue
        n_keys += 1
        above = next((p for p in reversed(lines[:i]) if p.strip()), "")
        if "#" not in line and not above.lstrip().startswith("#"):
            undocumented.append(line.strip())
    assert n_keys > 150
    assert not undocumented


# ---------------------------------------------------------------------------------------------
# The spec language itself
# ---------------------------------------------------------------------------------------------


def check(spec: cs.Spec, value):
    return cs.validate(value, spec, "k", "t.yaml")


def test_spec_scalars():
    assert check(cs.Num(0, 1), 1) == 1.0 and type(check(cs.Num(), 3)) is float
    for bad, spec in [(True, cs.Num()), (float("nan"), cs.Num()), (0, cs.Num(0, min_open=True)),
                      (2, cs.Num(max=1)), ("1", cs.Num()), (2.0, cs.Int()), (False, cs.Int()),
                      (0, cs.Int(1)), (1, cs.Bool()), ("c", cs.Str(["a", "b"])), (3, cs.Str())]:
        with pytest.raises(ConfigError) as info:
            check(spec, bad)
        assert info.value.issues[0].path == "k" and info.value.issues[0].expected == spec.describe()
    assert cs.Num(0, min_open=True).describe() == "a number > 0"
    assert cs.Str(["a", "b"]).describe() == "one of: a, b"


def test_spec_list_dict_optional_defaults():
    spec = cs.Dict({"a": cs.List(cs.Int(), 2), "b": cs.Optional(cs.List(cs.Int()), [1]),
                    "c": cs.Optional(cs.Int())}, aliases={"A": "a"})
    out = check(spec, {"A": [1, 2]})
    assert out == {"a": [1, 2], "b": [1]}
    out["b"].append(5)
    assert check(spec, {"a": [1, 2]})["b"] == [1]  # defaults are copied, not shared
    with pytest.raises(ConfigError) as info:
        check(spec, {"a": [1, 2, 3], "zz": 1, "c": 1.5})
    assert sorted(i.path for i in info.value.issues) == ["k.a", "k.c", "k.zz"]
    assert "3 items" in str(info.value)
    assert check(cs.Dict({"x": cs.Optional(cs.Int(), 7)}, allow_empty_list=True), []) == {"x": 7}
    with pytest.raises(ConfigError):
        check(cs.Dict({"x": cs.Optional(cs.Int(), 7)}), [])


def test_spec_one_of():
    variants = {"p": cs.Dict({"v": cs.Int()}), "q": cs.Dict({"w": cs.Bool()})}
    spec = cs.OneOf("NAME", variants, aliases={"pp": "p"})
    assert check(spec, {"NAME": "pp", "v": 1}) == {"NAME": "p", "v": 1}
    with pytest.raises(ConfigError) as info:
        check(spec, {"NAME": "q", "v": 1})
    assert [i.path for i in info.value.issues] == ["k.v", "k.w"]
    assert "one of the known keys: NAME, w" in str(info.value)
    with pytest.raises(ConfigError, match=r"k.NAME: got 'r' \(string\); expected one of: p \(alias pp\), q"):
        check(spec, {"NAME": "r"})
    with pytest.raises(ConfigError, match="k.NAME: missing"):
        check(spec, {"v": 1})
    with pytest.raises(ConfigError, match=r"k.NAME: got \[1\] \(list\)"):
        check(spec, {"NAME": [1]})
