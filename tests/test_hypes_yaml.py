"""Every config under hypes_yaml/ loads, builds a detector whose map and head fit its anchors, and the
configs of one folder differ only where their method does.

The compact simulated-world configs (``hypes_yaml/synthetic``) also run one forward pass through their
dataset on the tiny world of ``tests/data_utils/tiny_world.py``; the full-size ones (V2XSet, OPV2V) are
only built, a forward at 704 x 192 pillars being too slow for a CPU test.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "data_utils"))

import tiny_world as tw  # noqa: E402

from v2xdet.config import load_config, read_yaml  # noqa: E402
from v2xdet.data_utils.datasets import build_dataset  # noqa: E402
from v2xdet.losses import build_loss  # noqa: E402
from v2xdet.models import MODEL_FUSION, build_detector  # noqa: E402

HYPES = Path(__file__).resolve().parents[1] / "hypes_yaml"
CONFIGS = sorted(HYPES.rglob("*.yaml"))
COMPACT = HYPES / "synthetic"
FULL_SIZE = ("v2xset", "opv2v")
METHODS = ("none", "late", "early", "fcooper", "attfuse", "v2xvit", "mswin_deform")
ABLATIONS = ("mswin", "mswin_deform_own")
DEFORM = ("model", "args", "transformer", "encoder", "pwindow_att_config", "deform")


def _name(path: Path) -> str:
    return str(path.relative_to(HYPES))


def _at(cfg: dict, keys: tuple) -> object:
    for key in keys:
        cfg = cfg[key]
    return cfg


def _leaves(node, path=()) -> dict:
    """{key path: value} of every leaf of a nested config."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(_leaves(value, (*path, key)))
        return out
    return {path: node}


def _differences(a: dict, b: dict) -> set:
    la, lb = _leaves(a), _leaves(b)
    return {k for k in la.keys() | lb.keys() if la.get(k, "<absent>") != lb.get(k, "<absent>")}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return tw.write_tiny_world(tmp_path_factory.mktemp("hypes") / "train")


def test_every_method_has_its_configs():
    names = {folder: {p.stem for p in (HYPES / folder).glob("*.yaml")}
             for folder in ("synthetic", *FULL_SIZE)}
    expected = {f"point_pillar_{m}" for m in METHODS}
    assert names["synthetic"] == expected | {f"point_pillar_{m}" for m in ABLATIONS}
    for folder in FULL_SIZE:
        assert names[folder] == expected, folder
    assert len(CONFIGS) == len(expected) * 3 + len(ABLATIONS) + 1  # + exemplar.yaml


@pytest.mark.parametrize("path", CONFIGS, ids=_name)
def test_config_builds_a_detector_that_fits_its_anchors(path, split):
    cfg = load_config(path)
    model, anchor = cfg["model"], cfg["postprocess"]["anchor_args"]
    det = build_detector(model)
    w, h = anchor["anchor_grid"]
    num = anchor["num"]
    assert det.feature_stride == anchor["feature_stride"]
    assert det.feature_size == (h, w)
    assert det.grid_size == cfg["preprocess"]["grid_size"]
    assert det.head.cls_head.out_channels == num and det.head.reg_head.out_channels == 7 * num
    dir_args = model["args"].get("dir_args")
    if dir_args:
        assert det.head.dir_head.out_channels == dir_args["num_bins"] * num
    else:
        assert det.head.dir_head is None
    assert det.head.cls_head.in_channels == det.out_channels == model["args"]["cls_head_dim"]
    assert det.fusion_name == MODEL_FUSION[model["core_method"]]
    assert (det.fusion_name is None) == (cfg["fusion"]["strategy"] != "intermediate")
    if path.parent != COMPACT:
        return

    # compact: one forward through the config's own dataset on the tiny world
    overrides = {key: str(split) for key in ("root_dir", "validate_dir", "test_dir")}
    cfg = load_config(path, overrides)
    data = build_dataset(cfg, "validate", train=False)
    batch = data.collate([data[1]])
    units = len(batch["record_len"])
    assert units == (3 if cfg["fusion"]["strategy"] == "late" else 1)  # the RSU, 641 and 650 (680 too far)
    if cfg["fusion"]["strategy"] == "intermediate":
        assert batch["record_len"].tolist() == [3]
        # projected first: every agent's pillars are in the ego frame (the RSU's own frame is 5 m up,
        # where its points would fall outside the z range), so every agent's map holds pillars
        assert torch.equal(batch["agent_to_ego"], torch.eye(4).expand(1, 3, 4, 4))
        assert torch.bincount(batch["voxel_coords"][:, 0].long(), minlength=3).min() > 0
    torch.manual_seed(0)
    with torch.no_grad():
        out = det.eval()(batch)
    assert out["cls_preds"].shape == (units, num, h, w)
    assert out["reg_preds"].shape == (units, 7 * num, h, w)
    assert batch["targets"]["labels"].shape == (units, h, w, num)
    assert int((batch["targets"]["labels"] == 1).sum()) > 0
    total, terms = build_loss(cfg["loss"])(out, batch["targets"])
    assert torch.isfinite(total) and set(terms) == {"cls", "reg", "dir"}


# ---- what makes the configs of a folder comparable ---------------------------------------------------

SHARED = ("preprocess", "data_augment", "postprocess", "comm_range", "train_params", "loss")


def _encoder(cfg: dict) -> dict:
    return {k: v for k, v in cfg["model"]["args"].items() if k not in ("transformer", "compression")}


def _comparable(cfg: dict) -> dict:
    """What every compact config shares with point_pillar_none.yaml: everything but the run length
    (the no-fusion file is sized for a 30-minute CPU run), the LR (the schedule's shape is shared),
    early fusion's training voxel budget (merged clouds), the shrink header and the anchor stride it
    sets, and the fusion itself."""
    out = copy.deepcopy({key: cfg[key] for key in SHARED})
    for key in ("epoches", "eval_freq"):
        out["train_params"].pop(key)
    out["preprocess"]["args"].pop("max_voxel_train")
    for key in ("feature_stride", "anchor_grid"):   # the grid follows from the stride
        out["postprocess"]["anchor_args"].pop(key)
    out["encoder"] = {k: v for k, v in _encoder(cfg).items() if k not in ("shrink_header", "cls_head_dim")}
    lr, sched = cfg["optimizer"]["lr"], cfg["lr_scheduler"]   # the LR itself is the method's (V2X-ViT: 0.001)
    out["lr_scheduler"] = (sched["core_method"], sched["warmup_epoches"], round(sched["warmup_lr"] / lr, 9),
                           round(sched["lr_min"] / lr, 9))
    return out


@pytest.mark.parametrize("path", sorted(COMPACT.glob("*.yaml")), ids=_name)
def test_compact_configs_share_the_no_fusion_setting(path):
    """Same range, voxels, anchors, targets, encoder, backbone and schedule as point_pillar_none.yaml;
    the head sits at stride 2 unless a shrink header (the transformers') halves the map first."""
    base, cfg = load_config(COMPACT / "point_pillar_none.yaml"), load_config(path)
    assert _comparable(cfg) == _comparable(base)
    assert cfg["model"]["args"]["compression"] == 0
    shrink = cfg["model"]["args"].get("shrink_header")
    assert cfg["postprocess"]["anchor_args"]["feature_stride"] == (4 if shrink else 2)
    assert cfg["lr_scheduler"]["epoches"] == cfg["train_params"]["epoches"]
    early = _name(path).endswith("early.yaml")
    assert cfg["preprocess"]["args"]["max_voxel_train"] == (70000 if early else 32000)


@pytest.mark.parametrize("folder", FULL_SIZE)
def test_full_size_configs_share_v2xvit_setting(folder):
    """Every full-size config has V2X-ViT's range, voxels, anchors, backbone and shrink header."""
    base = load_config(HYPES / "v2xset" / "point_pillar_v2xvit.yaml")
    for path in sorted((HYPES / folder).glob("*.yaml")):
        cfg = load_config(path)
        assert cfg["preprocess"] == base["preprocess"], path.name
        assert cfg["postprocess"]["anchor_args"] == base["postprocess"]["anchor_args"], path.name
        assert cfg["preprocess"]["cav_lidar_range"] == [-140.8, -38.4, -3, 140.8, 38.4, 1]
        assert cfg["data_augment"] == base["data_augment"], path.name
        assert _encoder(cfg) == _encoder(base), path.name
        if "transformer" in cfg["model"]["args"]:
            transformer = cfg["model"]["args"]["transformer"]
            assert transformer["encoder"]["pwindow_att_config"]["window_size"] == [4, 8, 16]
            # V2X-ViT's transformer; ours adds the deformable branch's keys only
            assert {k[:3] for k in _differences(transformer, base["model"]["args"]["transformer"])} <= {
                DEFORM[3:]}


def test_opv2v_configs_mirror_v2xset_ones():
    """The OPV2V files are the V2XSet files with OPV2V's folders and names."""
    for path in sorted((HYPES / "v2xset").glob("*.yaml")):
        v2xset, opv2v = load_config(path), load_config(HYPES / "opv2v" / path.name)
        folders = {"root_dir": "opv2v/train", "validate_dir": "opv2v/validate", "test_dir": "opv2v/test"}
        assert _differences(v2xset, opv2v) <= {(key,) for key in (*folders, "name")}, path.name
        assert {key: opv2v[key] for key in folders} == folders
        assert opv2v["name"] != v2xset["name"]


def test_ablations_differ_from_ours_in_one_key():
    ours = load_config(COMPACT / "point_pillar_mswin_deform.yaml")
    assert _at(ours, DEFORM)["enabled"] is True and _at(ours, DEFORM)["sample_from"] == "all"
    for name, key, value in (("mswin", "enabled", False), ("mswin_deform_own", "sample_from", "own")):
        ablation = load_config(COMPACT / f"point_pillar_{name}.yaml")
        assert _differences(ours, ablation) == {("name",), DEFORM + (key,)}, name
        assert _at(ablation, DEFORM)[key] == value
    # the compact V2X-ViT is the same transformer without the deformable branch
    v2xvit = load_config(COMPACT / "point_pillar_v2xvit.yaml")
    assert _differences(ours["model"]["args"], v2xvit["model"]["args"]) == {
        DEFORM[2:] + (k,) for k in _at(ours, DEFORM)}


def test_the_window_only_ablation_is_v2xvit():
    """``deform.enabled: false`` builds exactly the compact V2X-ViT: the same parameters, in the same
    order, with the same initial values under one seed (so the two train identically)."""
    states = []
    for name in ("v2xvit", "mswin"):
        cfg = load_config(COMPACT / f"point_pillar_{name}.yaml")
        torch.manual_seed(0)
        states.append(build_detector(cfg["model"]).state_dict())
    v2xvit, ablation = states
    assert list(v2xvit) == list(ablation)
    assert all(torch.equal(v2xvit[k], ablation[k]) for k in v2xvit)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.parent != HYPES], ids=_name)
def test_fusion_settings(path):
    """Noise off with its values present; points projected first for intermediate fusion; a model
    without STTF (F-Cooper, AttFuse) places the maps by the ego's current pose."""
    raw, cfg = read_yaml(path), load_config(path)
    strategy = cfg["fusion"]["strategy"]
    if strategy != "none":
        wild = raw["wild_setting"]
        assert wild["async"] is False and wild["loc_err"] is False
        assert {"xyz_std", "ryp_std", "async_overhead", "async_mode", "seed"} <= set(wild)
    assert cfg["train_params"]["max_cav"] == 5 and cfg["comm_range"] == 70
    if strategy == "intermediate":
        assert cfg["fusion"]["args"]["proj_first"] is True
        has_sttf = MODEL_FUSION[cfg["model"]["core_method"]] in ("v2xvit", "mswin_deform")
        assert cfg["fusion"]["args"]["cur_ego_pose_flag"] is not has_sttf
