"""``add_product_``: the residual accumulated by the GEMM, with and without autocast."""
import pytest
import torch

from v2xdet.models.fusion.products import add_product_


def operands(batched: bool, seed: int):
    """``acc``, ``a``, ``b`` for ``acc += a @ b``: 2-D, or batched over 3."""
    g = torch.Generator().manual_seed(seed)
    shape_a, shape_b = ((3, 5, 4), (3, 4, 6)) if batched else ((5, 4), (4, 6))
    a, b = torch.randn(shape_a, generator=g), torch.randn(shape_b, generator=g)
    return torch.randn(a.shape[:-1] + (6,), generator=g), a, b


@pytest.mark.parametrize("batched", [False, True])
def test_adds_the_product_in_place(batched):
    acc, a, b = operands(batched, seed=0)
    want = acc + a @ b
    got = add_product_(acc, a, b)
    assert got is acc
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("batched", [False, True])
def test_under_autocast_the_accumulator_keeps_its_dtype(batched):
    """Autocast does not cast in-place GEMMs' operands: a bfloat16 operand met a float32 accumulator."""
    acc, a, b = operands(batched, seed=1)
    want = acc + a @ b
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = add_product_(acc, torch.nn.functional.linear(a, torch.eye(4)), b)  # a bfloat16 operand
    assert got is acc and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=0.02, atol=0.05)
