"""Measuring helpers shared by the benchmark scripts of tools/ (bench_fusion.py, bench_model.py).

``timed`` / ``best_time``: best-of-N wall time with CPU time, system time and page faults per run;
``best_alternating``: best-of-N wall times of several calls run in turn (a drift hits all alike);
``matmul_rate``: this machine's (or its GPU's) fp32 GEMM rate (the arithmetic floor's denominator);
``synchronized``: a call that waits for the GPU's queued kernels, so that it can be timed;
``rates_around``: run a benchmark between two rate measurements and keep the best rate;
``paired_floor_ratios``: latency / floor per run, each run against the rate measured just before it;
``count_flops``: FLOPs of a call (``torch.utils.flop_counter`` with the CPU kernels it misses);
``time_by_kind``: the fastest profiled call's time and FLOPs per kind of kernel (GEMMs, small batched
products, attention kernels, the rest), which says where the time above the floor goes;
``add_allocator_option``: ``--no_tune_allocator``, which the scripts pass to
``v2xdet.engine.allocator.configure_allocator`` at start-up (tuning is the default).
"""
from __future__ import annotations

import argparse
import math
import resource
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

T = TypeVar("T")


def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _addmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


def _baddbmm_flops(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * a_shape[0] * a_shape[1] * a_shape[2] * b_shape[2]


# FlopCounterMode knows sdpa's CUDA kernels and out-of-place addmm/baddbmm only: add the CPU flash
# kernel and the in-place GEMMs the fusion modules accumulate residuals with.
FLOP_MAPPING = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops,
    torch.ops.aten.addmm_: _addmm_flops,
    torch.ops.aten.baddbmm_: _baddbmm_flops,
}


def timed(fn: Callable[[], object], repeat: int) -> dict:
    """Best wall time of ``repeat`` runs (after one warm-up) and the mean CPU time, system time and
    minor page faults per run (CPU time is less disturbed than wall time on a shared machine)."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    fn()
    best = math.inf
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": best,
            "cpu": (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / repeat,
            "sys": (r1.ru_stime - r0.ru_stime) / repeat,
            "faults": (r1.ru_minflt - r0.ru_minflt) / repeat}


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time in seconds of ``repeat`` runs of ``fn`` (after one warm-up)."""
    return timed(fn, repeat)["seconds"]


def best_alternating(calls: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best wall time of each call over ``repeat`` rounds; every call is warmed up once, then the
    calls run in turn each round, so a change in the machine's load affects them alike."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    best = dict.fromkeys(calls, math.inf)
    for call in calls.values():
        call()
    for _ in range(repeat):
        for key, call in calls.items():
            start = time.perf_counter()
            call()
            best[key] = min(best[key], time.perf_counter() - start)
    return best


def matmul_rate(repeat: int = 5, n: int = 2048, iters: int = 4, device: str = "cpu") -> tuple[float, float]:
    """Best fp32 GEMM rate of ``device`` (on the CPU with the current thread count): FLOP per wall
    second and FLOP per CPU second (the latter is what a process gets done when the CPU is shared)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    t = timed(synchronized(lambda: _gemms(a, b, iters), device), repeat)
    flops = 2 * n**3 * iters
    return flops / t["seconds"], flops / max(t["cpu"], 1e-9)


def synchronized(fn: Callable[[], T], device: str | torch.device) -> Callable[[], T]:
    """``fn`` that returns only once ``device``'s queued kernels have finished (CUDA runs them
    asynchronously); ``fn`` itself on the CPU."""
    if torch.device(device).type != "cuda":
        return fn

    def call() -> T:
        out = fn()
        torch.cuda.synchronize(device)
        return out
    return call


def _gemms(a: torch.Tensor, b: torch.Tensor, iters: int) -> None:
    """The rate measurement's workload: ``iters`` products ``a @ b``."""
    for _ in range(iters):
        torch.mm(a, b)


def paired_floor_ratios(fn: Callable[[], object], flops: float, repeat: int, n: int = 2048,
                        iters: int = 4) -> list[float]:
    """``repeat`` runs of ``fn`` (after one warm-up), each right after its own fp32 GEMM rate
    measurement; returns each run's wall time / (``flops`` / that rate). This machine's speed drifts
    over minutes, so a rate taken seconds before a run describes it better than the best rate of
    the whole benchmark does."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    a, b = torch.randn(n, n), torch.randn(n, n)
    fn()
    ratios = []
    for _ in range(repeat):
        start = time.perf_counter()
        _gemms(a, b, iters)
        rate = 2 * n**3 * iters / (time.perf_counter() - start)
        start = time.perf_counter()
        fn()
        ratios.append((time.perf_counter() - start) * rate / flops)
    return ratios


def rates_around(run: Callable[[], T], device: str = "cpu", n: int = 2048) -> tuple[T, float, float]:
    """``run()`` between two ``matmul_rate`` measurements on ``device`` (the machine may be shared);
    returns its result and the better of the two wall and CPU rates."""
    before = matmul_rate(n=n, device=device)
    result = run()
    after = matmul_rate(n=n, device=device)
    return result, max(before[0], after[0]), max(before[1], after[1])


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` (multiply-add = 2), GEMMs, convolutions and attention."""
    with FlopCounterMode(display=False, custom_mapping=FLOP_MAPPING) as counter:
        fn()
    return counter.get_total_flops()


GEMM_OPS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::baddbmm", "aten::baddbmm_", "aten::bmm"}
KINDS = ("GEMM", "small batched products", "attention kernel", "other")


def _gemm_shape(name: str, shapes: list) -> tuple[int, int, int, int]:
    """(batch, m, k, n) of a GEMM event from its input shapes (the bias comes first in addmm/baddbmm)."""
    a, b = (shapes[0], shapes[1]) if name in ("aten::mm", "aten::bmm") else (shapes[1], shapes[2])
    batch = a[0] if len(a) == 3 else 1
    return batch, a[-2], a[-1], b[-1]


def classify(name: str, shapes: list, small: int = 1 << 16) -> tuple[str, int]:
    """Kind and FLOPs of one profiled op: GEMMs whose single product has fewer than ``small``
    multiply-adds are "small batched products" (per-pixel attention across agents)."""
    if name in GEMM_OPS:
        batch, m, k, n = _gemm_shape(name, shapes)
        return ("GEMM" if m * k * n >= small else "small batched products"), 2 * batch * m * k * n
    if name == "aten::_scaled_dot_product_flash_attention_for_cpu":  # not its wrapper's event
        q, k = shapes[0], shapes[1]
        return "attention kernel", 4 * math.prod(q[:-2]) * q[-2] * k[-2] * q[-1]
    return "other", 0


def total_seconds(kinds: dict[str, dict[str, float]]) -> float:
    """Seconds of a ``time_by_kind`` result, all kinds together."""
    return sum(k["seconds"] for k in kinds.values())


def time_by_kind(fn: Callable[[], object], repeat: int = 1) -> dict[str, dict[str, float]]:
    """Profile ``repeat`` calls of ``fn`` and keep the fastest; per kind (``KINDS``): ``seconds``
    (the ops' own time on the calling thread, which waits for the intra-op threads) and ``flops``."""
    from torch.profiler import ProfilerActivity, profile

    best = None
    for _ in range(repeat):
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            fn()
        totals = {kind: {"seconds": 0.0, "flops": 0.0} for kind in KINDS}
        for event in prof.key_averages(group_by_input_shape=True):
            kind, flops = classify(event.key, event.input_shapes)
            totals[kind]["seconds"] += event.self_cpu_time_total / 1e6
            totals[kind]["flops"] += flops * event.count
        if best is None or total_seconds(totals) < total_seconds(best):
            best = totals
    return best


def add_allocator_option(parser: argparse.ArgumentParser) -> None:
    """``--no_tune_allocator``: keep glibc's defaults instead of ``configure_allocator``'s tuning."""
    parser.add_argument("--no_tune_allocator", action="store_true",
                        help="keep glibc's allocator defaults (default: v2xdet.engine.allocator."
                             "tune_allocator at start-up)")

