"""Window-major token order, window attention and split attention."""
from __future__ import annotations

import pytest
import torch

from v2xdet.models.fusion.split_attention import SplitAttention
from v2xdet.models.fusion.tokens import WindowOrder
from v2xdet.models.fusion.window_attention import WindowBranch


@pytest.mark.parametrize("sizes,h,w", [([4, 8, 16], 16, 48), ([2, 4], 8, 12), ([3], 6, 9), ([2, 6], 12, 6)])
def test_partition_and_reverse_are_inverses(sizes, h, w):
    order = WindowOrder(h, w, sizes)
    x = torch.randn(3, 5, h, w)
    tokens = order.to_tokens(x)
    assert tokens.shape == (3, h * w, 5)
    assert torch.equal(order.to_map(tokens), x)
    channels_last = order.to_map(tokens, channels_last=True)
    assert torch.equal(channels_last, x)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    # token t holds raster pixel order[t]
    assert torch.equal(tokens, x.flatten(2).transpose(1, 2)[:, order.order])
    assert torch.equal(order.order[order.rank], torch.arange(h * w))


@pytest.mark.parametrize("sizes,h,w", [([4, 8, 16], 16, 48), ([2, 4], 8, 12)])
def test_every_window_is_a_contiguous_run_of_tokens(sizes, h, w):
    order = WindowOrder(h, w, sizes)
    for s in sizes:
        n = s * s
        coords = order.coords.view(-1, n, 2)  # windows of s x s consecutive tokens
        top_left = coords.min(dim=1).values
        assert torch.all(top_left % s == 0)
        assert torch.all(coords.max(dim=1).values - top_left == s - 1)
        # the same within-window order in every window
        assert torch.equal(coords - top_left[:, None], (order.window_coords(s))[None].expand_as(coords))
        # all windows distinct and covering the map
        assert len({tuple(t.tolist()) for t in top_left}) == (h // s) * (w // s)


def test_order_rejects_bad_sizes():
    with pytest.raises(ValueError, match="nest"):
        WindowOrder(12, 12, [4, 6])
    with pytest.raises(ValueError, match="multiple of the largest window"):
        WindowOrder(12, 20, [4, 8])


@pytest.mark.parametrize("relative", [True, False])
def test_window_attention_on_one_window_is_plain_attention(relative):
    torch.manual_seed(0)
    s, heads, dh, dim = 4, 2, 3, 5
    branch = WindowBranch(dim, heads, dh, s, relative)
    order = WindowOrder(s, s, [s])
    x = torch.randn(1, s, s, dim)  # one window, raster pixels
    qkv_tokens = order.to_tokens(x.permute(0, 3, 1, 2)) @ branch.qkv_weight.t()
    out = order.to_map(branch.attend(qkv_tokens, order))[0].permute(1, 2, 0).reshape(s * s, heads * dh)

    # explicit computation on raster tokens
    flat = x.reshape(s * s, dim)
    q, k, v = (flat @ w.t() for w in branch.qkv_weight.chunk(3))
    pos = [(i // s, i % s) for i in range(s * s)]
    bias = torch.empty(s * s, s * s)
    for i, (ri, ci) in enumerate(pos):
        for j, (rj, cj) in enumerate(pos):
            if relative:
                bias[i, j] = branch.pos_embedding[rj - ri + s - 1, cj - ci + s - 1]
            else:
                bias[i, j] = branch.pos_embedding[i, j]
    expected = []
    for hh in range(heads):
        sl = slice(hh * dh, (hh + 1) * dh)
        att = torch.softmax(q[:, sl] @ k[:, sl].t() / dh**0.5 + bias, dim=-1)
        expected.append(att @ v[:, sl])
    assert torch.allclose(out, torch.cat(expected, dim=1), atol=1e-5)


def test_windows_do_not_see_each_other():
    torch.manual_seed(1)
    branch = WindowBranch(4, 2, 2, 2, True)
    order = WindowOrder(4, 4, [2])
    x = torch.randn(1, 4, 4, 4)
    qkv = order.to_tokens(x) @ branch.qkv_weight.t()
    base = order.to_map(branch.attend(qkv, order))
    x2 = x.clone()
    x2[0, :, 2:, 2:] += 10.0  # change only the bottom-right window
    changed = order.to_map(branch.attend(order.to_tokens(x2) @ branch.qkv_weight.t(), order))
    diff = (changed - base).abs().sum(1)[0]
    assert diff[2:, 2:].min() > 0
    assert diff[:2].max() == 0 and diff[:, :2].max() == 0


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_split_attention_weights_sum_to_one(k):
    torch.manual_seed(k)
    split = SplitAttention(6, k)
    weights = split(torch.randn(5, 6) * 3)
    assert weights.shape == (5, k, 6)
    assert torch.all(weights > 0)
    assert torch.allclose(weights.sum(dim=1), torch.ones(5, 6))
