import numpy as np
import pytest
import torch

from v2xdet.models.encoders import PillarVFE, PointPillarScatter

VOXEL = [0.5, 0.5, 4.0]
RANGE = [-2.0, -2.0, -3.0, 2.0, 2.0, 1.0]


def two_pillars():
    feats = torch.zeros(2, 3, 4)
    feats[0, :2] = torch.tensor([[0.1, 0.2, -1.0, 0.5], [0.3, 0.4, 0.0, 0.7]])
    feats[1, :1] = torch.tensor([[-1.9, 1.8, -2.0, 0.1]])
    coords = torch.tensor([[0, 0, 4, 4], [1, 0, 7, 0]])  # (entry, z, y, x)
    return feats, torch.tensor([2, 1]), coords


def test_decorated_features_match_hand_computation():
    vfe = PillarVFE({"use_norm": True, "with_distance": True, "use_absolute_xyz": True, "num_filters": [8]},
                    4, VOXEL, RANGE)
    feats, num, coords = two_pillars()
    d, pillar = vfe.decorate(feats, num, coords)
    assert d.shape == (3, 4 + 3 + 3 + 1) and pillar.tolist() == [0, 0, 1]   # the real points only
    p = feats[0, 0].numpy()
    mean = feats[0, :2, :3].mean(0).numpy()
    centre = np.array([-2 + 4 * 0.5 + 0.25, -2 + 4 * 0.5 + 0.25, -3 + 2.0])
    expected = np.concatenate([p, p[:3] - mean, p[:3] - centre, [np.linalg.norm(p[:3])]])
    np.testing.assert_allclose(d[0].numpy(), expected, rtol=1e-6, atol=1e-6)
    centre = [-1.75, 1.75, -1.0]
    np.testing.assert_allclose(d[2, 7:10].numpy(), feats[1, 0, :3].numpy() - centre, atol=1e-6)
    np.testing.assert_allclose(d[2, 4:7].numpy(), 0.0, atol=1e-7)   # a lone point is its pillar's mean


def test_pfn_matches_padded_reference_without_norm():
    """Without BatchNorm, the packed layers equal OpenPCDet's padded computation on real rows."""
    torch.manual_seed(0)
    vfe = PillarVFE({"use_norm": False, "with_distance": False, "use_absolute_xyz": True,
                     "num_filters": [8, 6]}, 4, VOXEL, RANGE)
    feats, num, coords = two_pillars()
    d, pillar = vfe.decorate(feats, num, coords)
    padded = torch.zeros(2, 3, d.shape[1])
    padded[pillar, torch.tensor([0, 1, 0])] = d
    real = (torch.arange(3)[None] < num[:, None])[..., None]
    x = padded
    for layer in vfe.layers:
        y = torch.relu(layer.linear(x))
        pooled = y.masked_fill(~real, float("-inf")).max(dim=1, keepdim=True).values
        x = pooled.squeeze(1) if layer.last_layer else torch.cat([y, pooled.expand_as(y)], dim=2)
    torch.testing.assert_close(vfe(feats, num, coords), x)


def test_vfe_channels_and_layers():
    vfe = PillarVFE({"use_norm": False, "with_distance": False, "use_absolute_xyz": False,
                     "num_filters": [16, 32]}, 4, VOXEL, RANGE)
    assert vfe.layers[0].linear.in_features == 1 + 6 and vfe.out_channels == 32
    feats, num, coords = two_pillars()
    out = vfe(feats, num, coords)
    assert out.shape == (2, 32)
    # a pillar's feature is a max over its real points only: padding does not change it
    feats2 = feats.clone()
    feats2[0, 2] = torch.tensor([5.0, 5.0, 5.0, 5.0])
    torch.testing.assert_close(vfe(feats2, num, coords), out)
    assert vfe(feats[:0], num[:0], coords[:0]).shape == (0, 32)
    with pytest.raises(ValueError, match="even"):
        PillarVFE({"use_norm": True, "with_distance": False, "use_absolute_xyz": True,
                   "num_filters": [15, 8]}, 4, VOXEL, RANGE)


def test_scatter_matches_loop_reference_and_passes_gradients():
    scatter = PointPillarScatter({"num_features": 3}, 3, [5, 4, 1])
    coords = torch.tensor([[0, 0, 1, 2], [1, 0, 3, 4], [0, 0, 0, 0], [2, 0, 2, 1]])
    feats = torch.randn(4, 3, requires_grad=True)
    canvas = scatter(feats, coords, 4)
    assert canvas.shape == (4, 3, 4, 5)
    expected = torch.zeros(4, 3, 4, 5)
    for f, (b, _, y, x) in zip(feats.detach(), coords.tolist(), strict=True):
        expected[b, :, y, x] = f
    torch.testing.assert_close(canvas.detach(), expected)
    canvas.sum().backward()
    torch.testing.assert_close(feats.grad, torch.ones(4, 3))
    with pytest.raises(ValueError, match="one voxel high"):
        PointPillarScatter({"num_features": 3}, 3, [5, 4, 2])
    with pytest.raises(ValueError, match="num_features"):
        PointPillarScatter({"num_features": 4}, 3, [5, 4, 1])
