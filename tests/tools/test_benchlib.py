"""tools/benchlib.py (FLOP counting, timing) and tools/bench_model.py's synthetic batch maker."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

import bench_model  # noqa: E402
import bench_train  # noqa: E402
import benchlib  # noqa: E402

M, N, K = 6, 5, 7


def test_count_flops_linear_with_and_without_bias():
    x = torch.randn(M, K)
    for bias in (True, False):  # addmm and mm
        layer = torch.nn.Linear(K, N, bias=bias)
        with torch.no_grad():
            assert benchlib.count_flops(lambda layer=layer: layer(x)) == 2 * M * N * K


def test_synchronized_is_the_call_itself_on_the_cpu():
    def f():
        return 7
    assert benchlib.synchronized(f, "cpu") is f


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
def test_synchronized_waits_for_the_gpu_and_the_gpu_rate_counts_its_flops():
    a = torch.randn(2048, 2048, device="cuda")
    done = torch.cuda.Event()

    def work():
        a @ a
        done.record()
    benchlib.synchronized(work, "cuda")()
    assert done.query()   # recorded after the product and already reached
    wall, _ = benchlib.matmul_rate(repeat=2, n=1024, iters=2, device="cuda")
    assert 1e11 < wall < 1e15   # an fp32 GEMM on any current GPU, far above this check's CPU


def test_count_flops_in_place_gemms_and_cpu_attention():
    a, b = torch.randn(M, K), torch.randn(K, N)
    assert benchlib.count_flops(lambda: torch.matmul(a, b)) == 2 * M * N * K
    assert benchlib.count_flops(lambda: torch.zeros(M, N).addmm_(a, b)) == 2 * M * N * K  # custom mapping
    assert benchlib.count_flops(lambda: torch.zeros(3, M, N).baddbmm_(a.expand(3, M, K), b.expand(3, K, N))) \
        == 3 * 2 * M * N * K
    q, k, v = torch.randn(2, 4, M, 8), torch.randn(2, 4, N, 8), torch.randn(2, 4, N, 8)
    flops = benchlib.count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v))
    assert flops == 2 * (2 * 2 * 4 * M * N * 8)  # q k^T and attn v


def test_timed_and_matmul_rate_positive():
    calls = []
    t = benchlib.timed(lambda: calls.append(sum(range(10000))), repeat=3)
    assert len(calls) == 4  # warm-up + 3
    assert t["seconds"] > 0 and t["cpu"] >= 0 and t["faults"] >= 0
    assert 0 < benchlib.best_time(lambda: torch.randn(64, 64) @ torch.randn(64, 64), 2) < 10
    wall, cpu = benchlib.matmul_rate(repeat=1, n=128, iters=1)
    assert wall > 0 and cpu > 0
    with pytest.raises(ValueError, match="repeat"):
        benchlib.timed(lambda: None, 0)


def test_make_batch_gives_requested_pillars_per_agent():
    cfg = bench_model.method_config("compact", "v2xvit")
    batch = bench_model.make_batch(cfg, n_agents=3, n_pillars=2000, seed=1)
    coords = batch["voxel_coords"]
    per_agent = torch.bincount(coords[:, 0], minlength=3).numpy()
    assert np.all(np.abs(per_agent - 2000) <= 100), per_agent  # within 5% (the sampler is exact)
    nx, ny = cfg["preprocess"]["grid_size"][:2]
    assert coords[:, 2].max() < ny and coords[:, 3].max() < nx and coords.min() >= 0
    nums = batch["voxel_num_points"]
    assert nums.min() >= 1 and nums.max() <= cfg["preprocess"]["args"]["max_points_per_voxel"]
    assert batch["voxel_features"].shape[0] == coords.shape[0] == nums.shape[0]
    assert batch["record_len"].tolist() == [3] and batch["agent_to_ego"].shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="max_voxel_test"):
        bench_model.make_batch(cfg, 1, cfg["preprocess"]["args"]["max_voxel_test"] + 1)


def test_stage_calls_compose_to_the_forward_pass():
    cfg = bench_model.method_config("compact", "fcooper")
    torch.manual_seed(0)
    model = bench_model.build_detector(cfg["model"]).eval()
    batch = bench_model.make_batch(cfg, n_agents=2, n_pillars=500)
    with torch.no_grad():
        calls = bench_model.stage_calls(model, batch)
        assert list(calls) == bench_model.STAGES
        torch.testing.assert_close(calls["backbone"](), model.bev_features(batch))
        out = calls["total"]()
        torch.testing.assert_close(calls["head"]()["cls_preds"], out["cls_preds"])


def test_time_by_kind_sorts_ops_and_counts_their_flops():
    a, b = torch.randn(64, 128), torch.randn(128, 96)
    q = torch.randn(300, 6, 4)  # 300 products of (6 x 4) @ (4 x 6): per-pixel attention sized
    s_q, s_k = torch.randn(2, 3, 16, 8), torch.randn(2, 3, 32, 8)

    def fn():
        torch.mm(a, b)
        torch.bmm(q, q.transpose(1, 2))
        torch.nn.functional.scaled_dot_product_attention(s_q, s_k, s_k)
        torch.relu(a)

    with torch.no_grad():
        kinds = benchlib.time_by_kind(fn)
    assert list(kinds) == list(benchlib.KINDS)
    assert kinds["GEMM"]["flops"] == 2 * 64 * 128 * 96
    assert kinds["small batched products"]["flops"] == 2 * 300 * 6 * 4 * 6
    assert kinds["attention kernel"]["flops"] == 4 * 2 * 3 * 16 * 32 * 8  # q k^T and attn v, once
    assert kinds["other"]["flops"] == 0
    assert all(k["seconds"] > 0 for k in kinds.values())


def test_classify_reads_the_operands_after_the_bias():
    shapes = [[96], [64, 128], [128, 96], [], []]
    assert benchlib.classify("aten::addmm", shapes) == ("GEMM", 2 * 64 * 128 * 96)
    kind, flops = benchlib.classify("aten::baddbmm_", [[5, 40, 8], [5, 40, 300], [5, 300, 8], [], []])
    assert (kind, flops) == ("GEMM", 2 * 5 * 40 * 300 * 8)
    assert benchlib.classify("aten::scaled_dot_product_attention", [[1, 2, 3, 4]] * 3)[1] == 0


def test_paired_floor_ratios_scale_with_the_flops_claimed():
    a = torch.randn(256, 256)
    call = lambda: torch.mm(a, a)  # noqa: E731
    ratios = benchlib.paired_floor_ratios(call, flops=2 * 256**3, repeat=3, n=256, iters=1)
    assert len(ratios) == 3 and all(math.isfinite(r) and r > 0 for r in ratios)
    # the same call claimed to do 1000x the work sits 1000x closer to its floor
    tiny = benchlib.paired_floor_ratios(call, flops=2000 * 256**3, repeat=3, n=256, iters=1)
    assert max(tiny) < min(ratios)
    with pytest.raises(ValueError, match="repeat"):
        benchlib.paired_floor_ratios(call, 1.0, 0)


def test_best_alternating_warms_up_then_runs_the_calls_in_turn():
    order = []
    calls = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    best = benchlib.best_alternating(calls, repeat=3)
    assert order == ["a", "b"] + ["a", "b"] * 3
    assert set(best) == {"a", "b"} and all(0 <= t < 1 for t in best.values())
    with pytest.raises(ValueError, match="repeat"):
        benchlib.best_alternating(calls, 0)


def test_bench_train_collates_samples_and_its_step_trains():
    cfg = bench_model.method_config("compact", "fcooper")
    batch = bench_train.batch_of(cfg, n_agents=2, batch_size=3, pillars=300)
    assert batch["record_len"].tolist() == [2, 2, 2] and batch["agent_to_ego"].shape == (3, 2, 4, 4)
    start = 0
    for s in range(3):   # each sample is make_batch's, its agent indices shifted past the samples before
        coords = bench_model.make_batch(cfg, 2, 300, seed=s)["voxel_coords"]
        got = batch["voxel_coords"][start:start + len(coords)]
        assert torch.equal(got[:, 1:], coords[:, 1:]) and torch.equal(got[:, 0], coords[:, 0] + 2 * s)
        start += len(coords)
    assert start == len(batch["voxel_coords"]) == len(batch["voxel_features"])
    torch.manual_seed(0)
    model = bench_model.build_detector(cfg["model"]).train()
    before = [p.detach().clone() for p in model.parameters()]
    loss = bench_train.train_step(model, batch, amp=False)()
    assert torch.isfinite(loss)
    assert model(batch)["cls_preds"].shape[0] == 3
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
