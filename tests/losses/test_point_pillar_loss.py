import math

import numpy as np
import pytest
import torch

from v2xdet.losses import PointPillarLoss, build_loss


def reference_loss(cls, reg, dirs, labels, reg_t, dir_t, cls_w, reg_w, dir_w):
    """OpenCOOD's formulas restated in numpy (sigma 3 smooth-L1, focal 0.25/2)."""
    b = cls.shape[0]
    logits = cls.transpose(0, 2, 3, 1).reshape(b, -1)
    lab = labels.reshape(b, -1)
    pos, neg = lab == 1, lab == 0
    norm = np.maximum(pos.sum(1, keepdims=True), 1)
    p = 1 / (1 + np.exp(-logits))
    t = pos.astype(float)
    ce = np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
    pt = t * p + (1 - t) * (1 - p)
    focal = (t * 0.25 + (1 - t) * 0.75) * (1 - pt) ** 2 * ce
    cls_loss = (focal * (pos | neg) / norm).sum() / b
    rp = reg.transpose(0, 2, 3, 1).reshape(b, -1, 7).copy()
    rt = reg_t.reshape(b, -1, 7).copy()
    rp[..., 6], rt[..., 6] = np.sin(rp[..., 6]) * np.cos(rt[..., 6]), np.cos(rp[..., 6]) * np.sin(rt[..., 6])
    d = np.abs(rp - rt)
    sl1 = np.where(d < 1 / 9, 0.5 * 9 * d ** 2, d - 0.5 / 9).sum(-1)
    reg_loss = (sl1 * pos / norm).sum() / b
    dl = dirs.transpose(0, 2, 3, 1).reshape(b, -1, 2)
    logz = np.log(np.exp(dl).sum(-1))
    ce_dir = logz - np.take_along_axis(dl, dir_t.reshape(b, -1, 1), -1)[..., 0]
    dir_loss = (ce_dir * pos / norm).sum() / b
    return cls_w * cls_loss + reg_w * reg_loss + dir_w * dir_loss, cls_loss, reg_loss, dir_loss


def random_case(seed=0, b=2, a=2, h=3, w=4):
    rng = np.random.default_rng(seed)
    out = {"cls_preds": rng.normal(size=(b, a, h, w)), "reg_preds": rng.normal(size=(b, 7 * a, h, w)),
           "dir_preds": rng.normal(size=(b, 2 * a, h, w))}
    labels = rng.choice([-1, 0, 1], size=(b, h, w, a), p=[0.2, 0.6, 0.2]).astype(np.int8)
    labels[1] = np.where(labels[1] == 1, 0, labels[1])   # second entry: no positives at all
    targets = {"labels": labels, "reg_targets": rng.normal(size=(b, h, w, a, 7)),
               "dir_targets": rng.integers(0, 2, size=(b, h, w, a))}
    return out, targets


def as_torch(d):
    return {k: torch.from_numpy(np.asarray(v)) for k, v in d.items()}


def test_matches_numpy_restatement_of_opencood():
    out, targets = random_case()
    args = {"cls_weight": 1.5, "reg": 2.0, "dir_weight": 0.2}
    loss = build_loss({"core_method": "point_pillar_loss", "args": args})
    total, terms = loss(as_torch(out), as_torch(targets))
    ref = reference_loss(out["cls_preds"], out["reg_preds"], out["dir_preds"], targets["labels"],
                         targets["reg_targets"], targets["dir_targets"], 1.5, 2.0, 0.2)
    np.testing.assert_allclose(total.item(), ref[0], rtol=1e-6)
    for key, value in zip(["cls", "reg", "dir"], ref[1:], strict=True):
        np.testing.assert_allclose(terms[key].item(), value, rtol=1e-6)
        assert not terms[key].requires_grad


def test_ignored_anchors_cost_nothing_and_heading_pi_apart_is_free():
    out, targets = random_case(1)
    loss = PointPillarLoss({"cls_weight": 1.0, "reg": 2.0})
    base = loss(as_torch(out), as_torch(targets))[0]
    ignored = targets["labels"] == -1
    changed = {**out, "cls_preds": out["cls_preds"] + 5 * ignored.transpose(0, 3, 1, 2)}
    torch.testing.assert_close(loss(as_torch(changed), as_torch(targets))[0], base)
    # perfect residuals except a yaw off by exactly pi: the sine trick gives zero regression loss
    b, a, h, w = out["cls_preds"].shape
    perfect = targets["reg_targets"].copy()
    perfect[..., 6] += math.pi
    out_reg = {**out, "reg_preds": perfect.reshape(b, h, w, a * 7).transpose(0, 3, 1, 2)}
    assert loss(as_torch(out_reg), as_torch(targets))[1]["reg"].item() < 1e-10


def test_no_dir_preds_and_anchor_mismatch():
    out, targets = random_case(2)
    del out["dir_preds"]
    total, terms = PointPillarLoss({"cls_weight": 1.0, "reg": 2.0})(as_torch(out), as_torch(targets))
    assert set(terms) == {"cls", "reg"}
    np.testing.assert_allclose(total.item(), terms["cls"].item() + 2 * terms["reg"].item(), rtol=1e-6)
    bad = {**targets, "labels": targets["labels"][:, :2]}
    with pytest.raises(ValueError, match="anchors per entry"):
        PointPillarLoss({})(as_torch(out), as_torch(bad))
    with pytest.raises(ValueError, match="core_method"):
        build_loss({"core_method": "focal", "args": {}})
