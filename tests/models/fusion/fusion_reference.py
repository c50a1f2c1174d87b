"""A slow, literal V2X-ViT forward pass used as the independent check of the fast encoder.

It follows the reference code's structure -- padded (B, L, H, W, C) maps, Python loops over samples
and agents for the typed projections and relation matrices, raster window partition with
reshapes, explicit softmax(QK^T * scale + bias) V, split attention on the branch outputs -- and
reads the parameters of a ``V2XViTFusion`` so both compute the same function. The deformable
branch is recomputed with ``F.grid_sample`` (sampling and the position-bias table) and an explicit
softmax, from the same parameters.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from v2xdet.models.fusion.warp import centred_lidar_range, warp_to_ego, warp_valid_mask


def window_partition(t: torch.Tensor, s: int) -> torch.Tensor:
    """(B, L, H, W, C) -> (B, L, nW, s*s, C), windows in raster order, tokens raster inside."""
    b, n, h, w, c = t.shape
    t = t.view(b, n, h // s, s, w // s, s, c).permute(0, 1, 2, 4, 3, 5, 6)
    return t.reshape(b, n, (h // s) * (w // s), s * s, c)


def window_reverse(t: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """Inverse of ``window_partition``."""
    b, n, _, _, c = t.shape
    t = t.view(b, n, h // s, w // s, s, s, c).permute(0, 1, 2, 4, 3, 5, 6)
    return t.reshape(b, n, h, w, c)


def raster_relative_bias(branch) -> torch.Tensor:
    s = branch.window_size
    idx = torch.stack(torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij"), -1).view(-1, 2)
    if not branch.relative:
        return branch.pos_embedding
    d = idx[None, :, :] - idx[:, None, :] + s - 1
    return branch.pos_embedding[d[..., 0], d[..., 1]]


def reference_window_branch(branch, y: torch.Tensor) -> torch.Tensor:
    """V2X-ViT's BaseWindowAttention on (B, L, H, W, C) (output projection included)."""
    b, n, h, w, _ = y.shape
    s, m, d = branch.window_size, branch.heads, branch.dim_head
    qkv = y @ branch.qkv_weight.t()
    q, k, v = (window_partition(t, s).unflatten(-1, (m, d)).permute(0, 1, 4, 2, 3, 5)
               for t in qkv.chunk(3, -1))
    dots = q @ k.transpose(-1, -2) * d ** -0.5 + raster_relative_bias(branch)
    out = dots.softmax(-1) @ v  # (B, L, m, nW, N, d)
    out = window_reverse(out.permute(0, 1, 3, 4, 2, 5).flatten(-2), s, h, w)
    return branch.out(out)


def reference_deform_branch(branch, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The deformable branch on padded (B, L, H, W, C) maps with grid_sample, output projected."""
    b, n, h, w, c = y.shape
    m, d, inner = branch.heads, branch.dim_head, branch.inner
    q = y @ branch.q_weight.t() + branch.q_bias  # (B, L, H, W, inner)
    out = torch.zeros(b, n, h, w, c)
    for bi in range(b):
        real = [j for j in range(n) if mask[bi, j]]
        for i in real:
            q_map = q[bi, i].permute(2, 0, 1)[None]
            srcs = [i] if branch.sample_from == "own" else real
            if branch.sample_from == "own":
                pos = branch.sampling_positions(q_map, torch.zeros(1, 1, dtype=torch.long))[0]
            else:
                q_src = q[bi, srcs].permute(0, 3, 1, 2)
                pos = branch.sampling_positions(q_map, torch.arange(len(srcs))[None], q_src)[0]
            keys, all_pos = [], []
            for a, j in enumerate(srcs):
                grid = torch.stack((pos[a, ..., 1] / (w - 1), pos[a, ..., 0] / (h - 1)), -1) * 2 - 1
                sampled = F.grid_sample(y[bi, j].permute(2, 0, 1)[None], grid[None], mode="bilinear",
                                        padding_mode="zeros", align_corners=True)[0]
                keys.append(sampled.flatten(1).t())
                all_pos.append(pos[a].reshape(-1, 2))
            samples, all_pos = torch.cat(keys), torch.cat(all_pos)
            kv = branch.kv(samples)
            k = kv[:, :inner].view(-1, m, d).transpose(0, 1)
            v = kv[:, inner:].view(-1, m, d).transpose(0, 1)
            qq = q[bi, i].reshape(h * w, m, d).transpose(0, 1)
            logits = qq @ k.transpose(-1, -2) * d ** -0.5
            if branch.use_pe:
                # the bias is read from the centre of the query's stride-r cell (its reference point)
                r = branch.stride
                qy, qx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
                cy = ((qy // r) * r + (r - 1) / 2).clamp(max=h - 1)
                cx = ((qx // r) * r + (r - 1) / 2).clamp(max=w - 1)
                qpix = torch.stack((cy, cx), -1).view(-1, 2).float()
                disp = (qpix[:, None, :] - all_pos[None, :, :]) / torch.tensor([h - 1.0, w - 1.0])
                bias = F.grid_sample(branch.rpe_table[None], disp.flip(-1)[None], mode="bilinear",
                                     padding_mode="border", align_corners=True)[0]
                logits = logits + bias
            o = (logits.softmax(-1) @ v).transpose(0, 1).reshape(h, w, inner)
            out[bi, i] = branch.out(o)
    return out


def reference_hmsa(att, y: torch.Tensor, types: torch.Tensor, com_mask: torch.Tensor) -> torch.Tensor:
    """V2X-ViT's HGTCavAttention / CavAttention with per-agent loops; ``com_mask`` (B, H, W, 1, L)."""
    b, n, h, w, _ = y.shape
    m, d, inner = att.heads, att.dim_head, att.inner
    qkv = torch.zeros(b, n, h, w, 3 * inner)
    for bi in range(b):
        for i in range(n):
            t = int(types[bi, i]) if att.hetero else 0
            qkv[bi, i] = y[bi, i] @ att.qkv_weight[t] + (att.qkv_bias[t] if att.qkv_bias is not None else 0)
    q, k, v = (t.view(b, n, h, w, m, d).permute(0, 4, 2, 3, 1, 5) for t in qkv.chunk(3, -1))  # b m h w l d
    if att.hetero:
        w_att = torch.zeros(b, m, n, n, d, d)
        w_msg = torch.zeros(b, m, n, n, d, d)
        for bi in range(b):
            for i in range(n):
                for j in range(n):
                    r = int(types[bi, i]) * 2 + int(types[bi, j])
                    w_att[bi, :, i, j] = att.relation_att[r]
                    w_msg[bi, :, i, j] = att.relation_msg[r]
        scores = torch.einsum("bmhwip,bmijpq,bmhwjq->bmhwij", q, w_att, k) * d ** -0.5
        v_msg = torch.einsum("bmijpc,bmhwjp->bmhwijc", w_msg, v)
    else:
        scores = torch.einsum("bmhwic,bmhwjc->bmhwij", q, k) * d ** -0.5
        v_msg = v[:, :, :, :, None].expand(-1, -1, -1, -1, n, -1, -1)
    scores = scores.masked_fill(com_mask.unsqueeze(1) == 0, float("-inf"))
    out = torch.einsum("bmhwij,bmhwijc->bmhwic", scores.softmax(-1), v_msg)
    out = out.permute(0, 4, 2, 3, 1, 5).reshape(b, n, h, w, inner)
    res = torch.zeros(b, n, h, w, att.out_weight.shape[-1])
    for bi in range(b):
        for i in range(n):
            t = int(types[bi, i]) if att.hetero else 0
            res[bi, i] = out[bi, i] @ att.out_weight[t] + att.out_bias[t]
    return res


def reference_mswin(mswin, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    outs = [reference_window_branch(br, y) for br in mswin.windows]
    if mswin.deform is not None:
        outs.append(reference_deform_branch(mswin.deform, y, mask))
    if mswin.split is None:
        return sum(outs) / len(outs)
    pooled = sum(outs).mean((2, 3))  # (B, L, C)
    sp = mswin.split
    weights = sp.fc2(sp.act(sp.norm(sp.fc1(pooled)))).view(*pooled.shape[:2], len(outs), -1).softmax(2)
    return sum(weights[:, :, k, None, None, :] * o for k, o in enumerate(outs))


def reference_v2xvit(model, x: torch.Tensor, mask: torch.Tensor, meta: dict) -> torch.Tensor:
    """The ego output (B, C, H, W) of ``model`` (a V2XViTFusion in eval mode), computed naively."""
    b, n, c, h, w = x.shape
    prior = meta["prior_encoding"]
    x = x.clone()
    if model.rte is not None:
        for bi in range(b):
            for i in range(n):
                x[bi, i] += model.rte(prior[bi, i, 1].view(1))[0][:, None, None]
    lidar_range = centred_lidar_range(h, w, model.voxel_size, model.downsample_rate)
    corr = meta["spatial_correction"]
    x[:, 1:] = warp_to_ego(x[:, 1:], corr[:, 1:], lidar_range, model.voxel_size, model.downsample_rate)
    roi = torch.ones(b, n, h, w, dtype=torch.bool)
    if model.use_roi_mask:
        roi[:, 1:] = warp_valid_mask(corr[:, 1:], h, w, lidar_range, model.voxel_size, model.downsample_rate)
    com_mask = (roi & mask[:, :, None, None]).permute(0, 2, 3, 1).unsqueeze(3)  # (B, H, W, 1, L)
    types = (prior[..., 2] > 0.5).long()
    t = x.permute(0, 1, 3, 4, 2)
    for i, block in enumerate(model.blocks):
        t = reference_hmsa(block.att, block.att_norm(t), types, com_mask) + t
        t = reference_mswin(block.mswin, block.win_norm(t), mask) + t
        if (i + 1) % model.num_blocks == 0:
            ffn = model.ffns[(i + 1) // model.num_blocks - 1]
            t = ffn.fc2(F.gelu(ffn.fc1(ffn.norm(t)))) + t
    return t[:, 0].permute(0, 3, 1, 2)
