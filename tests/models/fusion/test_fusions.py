"""Every fusion method: the contract with the detector, invariances, gradients, and V2X-ViT's
encoder against a literal (slow) re-implementation of the reference code."""
from __future__ import annotations

import math

import pytest
import torch
from fusion_configs import DIM, v2xvit_args
from fusion_reference import reference_v2xvit

from v2xdet.models.fusion import FUSIONS
from v2xdet.models.fusion.agents import AgentLayout
from v2xdet.models.fusion.v2xvit import DelayEncoding

H, W = 8, 12

# (fusion name, args): every FUSIONS entry, and the deformable branch's switches.
CASES = {
    "max": ("max", {}),
    "att": ("att", {}),
    "v2xvit": ("v2xvit", v2xvit_args()),
    "v2xvit_plain_cav": ("v2xvit", v2xvit_args()),
    "mswin_deform_all": ("mswin_deform", v2xvit_args(enabled=True)),
    "mswin_deform_own": ("mswin_deform", v2xvit_args(sample_from="own")),
    "mswin_deform_nope": ("mswin_deform", v2xvit_args(use_pe=False, stride=3)),
    "mswin_deform_off": ("mswin_deform", v2xvit_args(enabled=False)),
}
CASES["v2xvit_plain_cav"][1]["encoder"]["cav_att_config"]["use_hetero"] = False
CASES["v2xvit_plain_cav"][1]["encoder"]["pwindow_att_config"]["fusion_method"] = "naive"
CASES["v2xvit_no_roi_rte_abs_pos"] = ("v2xvit", v2xvit_args())
CASES["v2xvit_no_roi_rte_abs_pos"][1]["encoder"].update(use_roi_mask=False, num_blocks=2, depth=1)
CASES["v2xvit_no_roi_rte_abs_pos"][1]["encoder"]["cav_att_config"]["use_RTE"] = False
CASES["v2xvit_no_roi_rte_abs_pos"][1]["encoder"]["pwindow_att_config"]["relative_pos_embedding"] = False


def build(case: str, seed: int = 0):
    name, args = CASES[case]
    torch.manual_seed(seed)
    return FUSIONS[name](args, DIM).eval()


def rotation(deg: float, tx: float, ty: float) -> torch.Tensor:
    a = math.radians(deg)
    t = torch.eye(4)
    t[:2, :2] = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    t[:2, 3] = torch.tensor([tx, ty])
    return t


def make_batch(b=2, n=4, seed=0, mask=None):
    """Maps, mask, and meta with delays, one RSU per sample and a spatial correction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, n, DIM, H, W, generator=g)
    if mask is None:
        mask = torch.ones(b, n, dtype=torch.bool)
    prior = torch.zeros(b, n, 3)
    prior[..., 0] = torch.rand(b, n, generator=g) * 10
    prior[..., 1] = torch.randint(0, 3, (b, n), generator=g).float()
    prior[:, -1, 2] = 1.0  # the last slot is an RSU
    corr = torch.eye(4).repeat(b, n, 1, 1)
    for bi in range(b):
        for i in range(1, n):
            corr[bi, i] = rotation(4.0 * (i + bi), 0.3 * i, -0.5 * bi)
    return x, mask, {"prior_encoding": prior, "spatial_correction": corr}


def select(x, mask, meta, order):
    """The batch with its agent slots reordered (``order`` per sample)."""
    idx = torch.as_tensor(order)
    return x[:, idx], mask[:, idx], {key: value[:, idx] for key, value in meta.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_forward_backward_reaches_every_parameter(case):
    model = build(case).train()
    for m in model.modules():  # keep dropout from zeroing whole paths in a tiny model
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    x, mask, meta = make_batch(mask=torch.tensor([[True, True, True, True], [True, True, False, True]]))
    x.requires_grad_(True)
    out = model(x, mask, meta)
    assert out.shape == (2, DIM, H, W)
    assert torch.isfinite(out).all()
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad[:, 0].abs().sum() > 0
    assert x.grad[1, 2].abs().sum() == 0  # a padding slot gets no gradient
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("case", list(CASES))
def test_permuting_non_ego_agents_leaves_the_ego_output(case):
    model = build(case)
    x, mask, meta = make_batch()
    with torch.no_grad():
        base = model(x, mask, meta)
        perm = model(*select(x, mask, meta, [0, 3, 1, 2]))
    assert torch.allclose(base, perm, atol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_padding_slots_do_not_matter(case):
    model = build(case)
    x, mask, meta = make_batch(b=2, n=3)
    padded_x = torch.cat([x, torch.full((2, 2, DIM, H, W), float("nan"))], dim=1)
    padded_x[1, 4] = 0.0  # a masked, all-zero neighbour
    padded_mask = torch.cat([mask, torch.zeros(2, 2, dtype=torch.bool)], dim=1)
    padded_meta = {
        "prior_encoding": torch.cat([meta["prior_encoding"], torch.zeros(2, 2, 3)], dim=1),
        "spatial_correction": torch.cat([meta["spatial_correction"], torch.eye(4).repeat(2, 2, 1, 1)], dim=1),
    }
    with torch.no_grad():
        base = model(x, mask, meta)
        padded = model(padded_x, padded_mask, padded_meta)
        # padding between real agents too
        interleaved = model(*select(padded_x, padded_mask, padded_meta, [0, 3, 1, 4, 2]))
    assert torch.allclose(base, padded, atol=1e-5)
    assert torch.allclose(base, interleaved, atol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_single_agent(case):
    model = build(case)
    x, mask, meta = make_batch(b=1, n=1)
    with torch.no_grad():
        out = model(x, mask, meta)
    assert out.shape == (1, DIM, H, W)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("case", list(CASES))
def test_samples_of_a_batch_are_independent(case):
    model = build(case)
    x, mask, meta = make_batch(b=2, n=4, mask=torch.tensor([[True] * 4, [True, True, True, False]]))
    with torch.no_grad():
        both = model(x, mask, meta)
        second = model(x[1:, :3], mask[1:, :3], {k: v[1:, :3] for k, v in meta.items()})
    assert torch.allclose(both[1:], second, atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][0] in ("v2xvit", "mswin_deform")])
def test_encoder_matches_the_literal_reference(case):
    model = build(case, seed=3)
    x, mask, meta = make_batch(b=2, n=4, mask=torch.tensor([[True] * 4, [True, True, False, True]]))
    with torch.no_grad():
        ours = model(x, mask, meta)
        ref = reference_v2xvit(model, x, mask, meta)
    assert torch.allclose(ours, ref, atol=1e-4), (ours - ref).abs().max()


def test_max_and_att_match_explicit_formulas():
    x, mask, meta = make_batch(b=1, n=3, mask=torch.tensor([[True, True, False]]))
    real = x[0, :2]
    out_max = FUSIONS["max"]({}, DIM)(x, mask, meta)
    assert torch.equal(out_max[0], real.max(dim=0).values)
    out_att = FUSIONS["att"]({}, DIM)(x, mask, meta)
    feats = real.flatten(2).permute(2, 0, 1)  # (pixels, agents, C)
    weights = torch.softmax(feats @ feats[:, 0:1].transpose(1, 2) / DIM**0.5, dim=1)  # (pixels, agents, 1)
    expected = (weights * feats).sum(1).t().reshape(DIM, H, W)
    assert torch.allclose(out_att[0], expected, atol=1e-5)


def test_rte_and_rsu_type_change_the_output():
    model = build("v2xvit")
    x, mask, meta = make_batch(b=1, n=3)
    with torch.no_grad():
        base = model(x, mask, meta)
        delayed = dict(meta, prior_encoding=meta["prior_encoding"].clone())
        delayed["prior_encoding"][0, 1, 1] += 1
        rsu = dict(meta, prior_encoding=meta["prior_encoding"].clone())
        rsu["prior_encoding"][0, 1, 2] = 1.0
        assert not torch.allclose(base, model(x, mask, delayed))
        assert not torch.allclose(base, model(x, mask, rsu))


def test_bad_config_and_inputs_are_named():
    args = v2xvit_args()
    del args["encoder"]["cav_att_config"]["heads"]
    with pytest.raises(ValueError, match=r"transformer\.encoder\.cav_att_config\.heads"):
        FUSIONS["v2xvit"](args, DIM)
    with pytest.raises(ValueError, match="mswin_deform"):
        FUSIONS["v2xvit"](v2xvit_args(enabled=True), DIM)
    bad = v2xvit_args(enabled=True)
    bad["encoder"]["pwindow_att_config"]["deform"]["groups"] = 2
    with pytest.raises(ValueError, match="unknown config keys"):
        FUSIONS["mswin_deform"](bad, DIM)
    with pytest.raises(ValueError, match="channels"):
        FUSIONS["v2xvit"](v2xvit_args(), DIM + 1)
    with pytest.raises(ValueError, match="takes no arguments"):
        FUSIONS["max"]({"x": 1}, DIM)
    model = build("v2xvit")
    x, mask, meta = make_batch(b=1, n=2)
    with pytest.raises(ValueError, match="prior_encoding"):
        model(x, mask, {})
    with pytest.raises(ValueError, match="ego"):
        model(x, torch.tensor([[False, True]]), meta)
    with pytest.raises(ValueError, match="RTE_ratio"):
        model(x, mask, dict(meta, prior_encoding=torch.tensor([[[0.0, 60.0, 0.0], [0.0, 0.0, 0.0]]])))
    with pytest.raises(ValueError, match="multiple of the largest window"):
        model(torch.randn(1, 2, DIM, 6, 12), mask, meta)


def test_deform_null_and_disabled_build_the_reference_model():
    args = v2xvit_args()
    args["encoder"]["pwindow_att_config"]["deform"] = None
    a = FUSIONS["v2xvit"](args, DIM)
    b = FUSIONS["mswin_deform"](v2xvit_args(enabled=False), DIM)
    assert all(block.mswin.deform is None for block in a.blocks)
    assert all(block.mswin.deform is None for block in b.blocks)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())


def test_agent_layout_packs_real_agents_in_order():
    mask = torch.tensor([[True, False, True, True], [True, True, False, False]])
    layout = AgentLayout.from_mask(mask)
    assert layout.flat.tolist() == [0, 2, 3, 4, 5]
    assert layout.batch.tolist() == [0, 0, 0, 1, 1]
    assert layout.ego.tolist() == [0, 3]
    assert layout.slot_to_packed.tolist() == [[0, 0, 1, 2], [3, 4, 3, 3]]  # padding -> its ego
    x = torch.arange(8).view(2, 4)
    assert layout.pack(x).tolist() == [0, 2, 3, 4, 5]
    full = AgentLayout.from_mask(torch.ones(2, 3, dtype=torch.bool))
    y = torch.arange(6).view(2, 3)
    assert full.full and full.pack(y).data_ptr() == y.data_ptr()  # no padding: a view


def test_delay_encoding_is_v2xvit_sinusoid():
    enc = DelayEncoding(8, ratio=2)
    pos, i = 6, torch.arange(0, 8, 2).float()
    div = torch.exp(i * -(math.log(10000.0) / 8))
    assert torch.allclose(enc.table[pos, 0::2], torch.sin(pos * div) / math.sqrt(8))
    assert torch.allclose(enc.table[pos, 1::2], torch.cos(pos * div) / math.sqrt(8))
    out = enc(torch.tensor([3.0, 0.0]))  # delay 3 steps * ratio 2 -> row 6
    assert torch.allclose(out[0], enc.lin(enc.table[6]))
    assert not any(p is enc.table for p in enc.parameters())


@pytest.mark.parametrize("case", ["v2xvit", "mswin_deform_all"])
def test_dropout_trains_and_eval_is_deterministic(case):
    name, args = CASES[case]
    torch.manual_seed(0)
    model = FUSIONS[name](args, DIM)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.5
    x, mask, meta = make_batch(b=1, n=3)
    model.train()
    a, b = model(x, mask, meta), model(x, mask, meta)
    assert not torch.allclose(a, b) and torch.isfinite(a).all()
    a.sum().backward()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x, mask, meta), model(x, mask, meta))
