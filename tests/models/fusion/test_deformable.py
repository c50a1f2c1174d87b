"""The deformable branch: reference points, bounded offsets, sampling, position bias, gradients."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from v2xdet.models.fusion import deformable
from v2xdet.models.fusion.deformable import DeformableBranch
from v2xdet.models.fusion.tokens import WindowOrder

H, W, DIM = 12, 18, 8


def make_branch(stride=3, sample_from="own", use_pe=True, factor=2.0, seed=0) -> DeformableBranch:
    torch.manual_seed(seed)
    return DeformableBranch(DIM, heads=2, dim_head=4, stride=stride, offset_range_factor=factor,
                            offset_kernel=3, sample_from=sample_from, use_pe=use_pe, table_size=(H, W))


@pytest.mark.parametrize("stride", [1, 3])
def test_zero_offsets_sample_exactly_at_reference_points(stride):
    branch = make_branch(stride)
    with torch.no_grad():
        branch.offset_proj.weight.zero_()
    order = WindowOrder(H, W, [3])
    maps = torch.randn(2, DIM, H, W)
    q_map = torch.randn(2, branch.inner, H, W)
    pos = branch.sampling_positions(q_map, torch.arange(2)[:, None])
    hk, wk = (H + stride - 1) // stride, (W + stride - 1) // stride
    assert pos.shape == (2, 1, hk, wk, 2)
    rows = torch.arange(hk) * stride + (stride - 1) // 2
    cols = torch.arange(wk) * stride + (stride - 1) // 2
    assert torch.equal(pos[0, 0, :, 0, 0], rows.float()) and torch.equal(pos[0, 0, 0, :, 1], cols.float())
    src = torch.arange(2)[:, None, None, None].expand(2, 1, hk, wk)
    samples = branch.bilinear_sample(order.to_tokens(maps), order, src, pos)  # (2, 1, hk, wk, C)
    direct = maps[:, :, rows][:, :, :, cols].permute(0, 2, 3, 1)
    assert torch.allclose(samples[:, 0], direct, atol=1e-6)


def test_even_stride_reference_is_the_cell_centre():
    branch = make_branch(stride=2)
    with torch.no_grad():
        branch.offset_proj.weight.zero_()
    order = WindowOrder(H, W, [3])
    maps = torch.randn(1, DIM, H, W)
    pos = branch.sampling_positions(torch.randn(1, branch.inner, H, W), torch.zeros(1, 1, dtype=torch.long))
    src = torch.zeros(pos.shape[:-1], dtype=torch.long)
    samples = branch.bilinear_sample(order.to_tokens(maps), order, src, pos)
    pooled = F.avg_pool2d(maps, 2).permute(0, 2, 3, 1)  # the centre of a 2x2 cell is their mean
    assert torch.allclose(samples[0, 0], pooled[0], atol=1e-6)


def test_bilinear_sample_matches_grid_sample():
    torch.manual_seed(3)
    order = WindowOrder(H, W, [3])
    maps = torch.randn(3, DIM, H, W)
    pos = torch.rand(3, 7, 2) * torch.tensor([H + 2.0, W + 2.0]) - 1.0  # some points outside
    src = torch.tensor([2, 0, 1])[:, None].expand(3, 7)
    ours = DeformableBranch.bilinear_sample(order.to_tokens(maps), order, src, pos)
    grid = torch.stack((pos[..., 1] / (W - 1), pos[..., 0] / (H - 1)), -1) * 2 - 1
    ref = F.grid_sample(maps[[2, 0, 1]], grid[:, None], mode="bilinear", padding_mode="zeros",
                        align_corners=True)[:, :, 0].transpose(1, 2)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 9, 13), (2, 1, 5)])
def test_table_read_matches_grid_sample_values_and_gradients(shape):
    """The deterministic position-bias read (CUDA with deterministic algorithms) is grid_sample's
    bilinear / border / align_corners read, inside, on and beyond the table's edges."""
    g = torch.Generator().manual_seed(0)
    table = torch.randn(shape, generator=g, requires_grad=True)
    grid = (torch.rand(4, 6, 7, 2, generator=g) * 2.6 - 1.3).requires_grad_()
    with torch.no_grad():
        grid[0, 0, :4] = torch.tensor([[-1.0, -1.0], [1.0, 1.0], [1.0, -1.0], [0.0, 1.0]])  # corners, edge
    weights = torch.randn(4, shape[0], 6, 7, generator=g)
    got = deformable.table_read(table, grid)
    (got * weights).sum().backward()
    got_grads = table.grad.clone(), grid.grad.clone()
    table.grad = grid.grad = None
    want = F.grid_sample(table.unsqueeze(0).expand(4, -1, -1, -1), grid, mode="bilinear",
                         padding_mode="border", align_corners=True)
    (want * weights).sum().backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grads[0], table.grad)
    inside = (grid.detach().abs() < 0.999).all(-1, keepdim=True)   # at a clamped edge the two differ
    torch.testing.assert_close(got_grads[1] * inside, grid.grad * inside)


def test_offsets_stay_inside_the_configured_range():
    branch = make_branch(stride=3, factor=1.5)
    with torch.no_grad():
        branch.offset_proj.weight.mul_(1e4)  # saturate tanh
    q_map = torch.randn(2, branch.inner, H, W) * 10
    pos = branch.sampling_positions(q_map, torch.arange(2)[:, None])
    hk, wk = pos.shape[2:4]
    ref = branch.reference_points(H, W, hk, wk, pos.device, pos.dtype)
    bound = torch.tensor(branch.offset_bound(H, W, hk, wk))
    off = (pos - ref).abs()
    assert torch.all(off <= bound + 1e-5)
    assert torch.all(off.amax(dim=(0, 1, 2, 3)) > 0.99 * bound)  # the bound is reached, not undershot
    # DAT's bound: factor / (grid - 1) in [-1, 1] coordinates
    assert bound[0].item() == pytest.approx(1.5 / (hk - 1) * (H - 1) / 2)


def test_position_bias_reads_the_table_bilinearly():
    branch = make_branch(stride=3)
    q_coords = torch.tensor([[0, 0], [5, 7], [11, 17]])
    pos = torch.tensor([[[2.5, 3.25], [11.0, 0.0], [0.0, 17.0]]])
    bias = branch.position_bias(q_coords, pos, H, W)  # (1, heads, 3, 3)
    table = branch.rpe_table
    for i, (qy, qx) in enumerate(q_coords.tolist()):
        for j, (py, px) in enumerate(pos[0].tolist()):
            ty, tx = qy - py + H - 1, qx - px + W - 1  # table index of the displacement (table = map size)
            y0, x0 = int(ty // 1), int(tx // 1)
            fy, fx = ty - y0, tx - x0
            y1, x1 = min(y0 + 1, 2 * H - 2), min(x0 + 1, 2 * W - 2)
            expected = ((1 - fy) * (1 - fx) * table[:, y0, x0] + (1 - fy) * fx * table[:, y0, x1]
                        + fy * (1 - fx) * table[:, y1, x0] + fy * fx * table[:, y1, x1])
            assert torch.allclose(bias[0, :, i, j], expected, atol=1e-5)


def run_branch(branch, n_agents=3, chunk_bytes=None, monkeypatch=None):
    torch.manual_seed(7)
    order = WindowOrder(H, W, [3])
    maps = torch.randn(n_agents, H * W, DIM, requires_grad=True)
    q = torch.randn(n_agents, H * W, branch.inner)
    if branch.sample_from == "own":
        src_of_query = torch.arange(n_agents)[:, None]
    else:
        src_of_query = torch.arange(n_agents).repeat(n_agents, 1)
    if chunk_bytes is not None:
        monkeypatch.setattr(deformable, "PE_CHUNK_BYTES", chunk_bytes)
    return branch(q, maps, src_of_query, order), maps


@pytest.mark.parametrize("sample_from", ["own", "all"])
def test_offsets_and_every_parameter_receive_gradients(sample_from):
    branch = make_branch(stride=2, sample_from=sample_from)
    out, maps = run_branch(branch)
    assert out.shape == (3, H * W, branch.inner)
    (out * torch.randn_like(out)).sum().backward()
    for name, p in branch.named_parameters():
        if name.startswith(("q_", "out.")):
            continue  # the block's fused projection and output fold use these, not forward()
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # 'all' reads every agent's map, 'own' only the agent's own
    grad_per_agent = maps.grad.abs().sum(dim=(1, 2))
    assert torch.all(grad_per_agent > 0)


def test_own_mode_ignores_other_agents_and_all_mode_reads_them():
    for sample_from, expect_cross in (("own", False), ("all", True)):
        branch = make_branch(stride=2, sample_from=sample_from)
        out, maps = run_branch(branch)
        out[0].sum().backward()  # agent 0's queries only
        cross = maps.grad[1:].abs().sum().item()
        assert (cross > 0) == expect_cross, sample_from


def test_chunked_position_bias_equals_one_chunk(monkeypatch):
    branch = make_branch(stride=2, sample_from="all")
    whole, _ = run_branch(branch)
    chunked, _ = run_branch(branch, chunk_bytes=4 * 3 * 2 * 50, monkeypatch=monkeypatch)  # 50 queries a chunk
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="sample_from"):
        make_branch(sample_from="neighbours")
    with pytest.raises(ValueError, match="offset_range_factor"):
        make_branch(factor=0.0)
    with pytest.raises(ValueError, match="offset_kernel odd"):
        DeformableBranch(DIM, 2, 4, 2, 2.0, 4, "own", True, (H, W))


@pytest.mark.parametrize("stride,chunk_bytes", [(1, None), (5, None), (5, 4 * 3 * 2 * 7)])
def test_attention_with_bias_matches_an_explicit_computation(stride, chunk_bytes, monkeypatch):
    """Keys from grid_sample, logits q.k / sqrt(d) + the table read at (cell centre - sample); r = 5
    leaves partial cells at the border of the 12 x 18 map; tiny chunks split cells mid-group."""
    branch = make_branch(stride=stride, sample_from="all")
    if chunk_bytes is not None:
        monkeypatch.setattr(deformable, "PE_CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(11)
    order = WindowOrder(H, W, [3])
    n = 3
    maps = torch.randn(n, DIM, H, W)
    q_raster = torch.randn(n, branch.inner, H, W)
    src_of_query = torch.arange(n).repeat(n, 1)
    with torch.no_grad():
        ours = branch(order.to_tokens(q_raster), order.to_tokens(maps), src_of_query, order)
        pos = branch.sampling_positions(q_raster, src_of_query)  # (n, n, Hk, Wk, 2)
        heads, d = branch.heads, branch.dim_head
        rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        centre = torch.stack([((rows // stride) * stride + (stride - 1) / 2).clamp(max=H - 1),
                              ((cols // stride) * stride + (stride - 1) / 2).clamp(max=W - 1)], -1)
        for i in range(n):
            grid = torch.stack((pos[i, ..., 1] / (W - 1), pos[i, ..., 0] / (H - 1)), -1) * 2 - 1
            sampled = [F.grid_sample(maps[j:j + 1], grid[j:j + 1], align_corners=True)[0] for j in range(n)]
            samples = torch.cat([m.flatten(1).t() for m in sampled])
            kv = branch.kv(samples)
            k = kv[:, :branch.inner].view(-1, heads, d).transpose(0, 1)
            v = kv[:, branch.inner:].view(-1, heads, d).transpose(0, 1)
            q = q_raster[i].flatten(1).t().view(-1, heads, d).transpose(0, 1)
            bias = branch.position_bias(centre.view(-1, 2).float(), pos[i].reshape(1, -1, 2), H, W)[0]
            expected = torch.softmax(q @ k.transpose(1, 2) / d**0.5 + bias, -1) @ v  # (heads, HW, d)
            expected = expected.transpose(0, 1).reshape(H, W, -1).permute(2, 0, 1)
            assert torch.allclose(order.to_map(ours[i:i + 1])[0], expected, atol=1e-5)


def test_cell_biased_attention_fused_and_differentiable_paths_agree():
    """Inference uses the fused kernel on broadcast keys and bias, training explicit logits: the
    same values, equal to softmax(q k^T / sqrt(d) + the cell's bias) v, and gradients reach the bias."""
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 5, 4, 8), torch.randn(2, 7, 8), torch.randn(2, 7, 8)
    bias = torch.randn(2, 5, 7, requires_grad=True)
    with torch.no_grad():
        fused = deformable.cell_biased_attention(q, k, v, bias)
    explicit = deformable.cell_biased_attention(q, k, v, bias)
    expected = torch.softmax(q @ k[:, None].transpose(2, 3) / 8**0.5 + bias[:, :, None], -1) @ v[:, None]
    assert torch.allclose(fused, expected, atol=1e-5) and torch.allclose(explicit, expected, atol=1e-5)
    explicit.sum().backward()
    assert bias.grad is not None and bias.grad.abs().sum() > 0
