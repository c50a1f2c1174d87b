"""The fusion encoder's CPU dropout: nn.Dropout's distribution and gradient, a faster mask."""
import pytest
import torch
from torch import nn

from v2xdet.models.fusion.dropout import Dropout


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_keeps_each_element_with_probability_one_minus_p_and_rescales(p):
    torch.manual_seed(0)
    x = torch.full((200, 1000), 2.0)
    y = Dropout(p).train()(x)
    kept = y != 0
    # 200,000 Bernoulli(1 - p) draws: the std of the kept fraction is below 0.0012
    assert abs(kept.float().mean().item() - (1 - p)) < 0.006
    assert torch.allclose(y[kept], torch.full_like(y[kept], 2.0 / (1 - p)))
    # no structure in the mask: rows and columns keep about the same fraction
    assert kept.float().mean(dim=1).std().item() < 0.03
    assert kept.float().mean(dim=0).std().item() < 0.08


def test_gradient_is_the_mask_times_the_scale():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    drop = Dropout(0.25).train()
    y = drop(x)
    (y * 3.0).sum().backward()
    mask = (y != 0).float()
    assert torch.allclose(x.grad, 3.0 * mask / 0.75)
    assert torch.allclose(y, x.detach() * mask / 0.75)


def test_same_seed_same_mask_and_eval_is_identity():
    x = torch.randn(8, 100)
    drop = Dropout(0.4).train()
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    b = drop(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, drop(x))  # the next draw differs
    assert torch.equal(drop.eval()(x), x)


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_edge_probabilities_behave_as_nn_dropout(p):
    x = torch.randn(10, 10)
    assert torch.equal(Dropout(p).train()(x), nn.Dropout(p).train()(x))
