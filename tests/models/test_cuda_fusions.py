"""Every cooperative model on CUDA against the CPU: the same outputs and the same gradients.

Skipped where CUDA is not available (CI has no GPU); a GPU machine runs it (README, "GPU check").
TF32 is turned off so that the GPU multiplies in full fp32, as the CPU does.
"""
import copy

import numpy as np
import pytest
import torch
from detector_inputs import fusion_config, two_agent_batch

from v2xdet.models import MODEL_FUSION, build_detector

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")

CASES = [(m, "all") for m, f in MODEL_FUSION.items() if f is not None]
CASES.append(("point_pillar_mswin_deform", "own"))


def run(model: torch.nn.Module, batch: dict, device: str) -> tuple[dict, dict]:
    """Outputs of a training-mode forward pass on ``device`` and the parameters' gradients of a
    loss that weighs every output, both on the CPU."""
    model = model.to(device).train()
    out = model({k: v.to(device) for k, v in batch.items()})
    sum((v.float() ** 2).mean() for v in out.values()).backward()
    return ({k: v.detach().cpu() for k, v in out.items()},
            {n: p.grad.cpu() for n, p in model.named_parameters() if p.grad is not None})


@pytest.mark.parametrize("core_method, sample_from", CASES, ids=lambda c: str(c))
def test_cuda_matches_the_cpu(core_method, sample_from, full_fp32):
    torch.manual_seed(0)
    model = build_detector(fusion_config(core_method, sample_from=sample_from)["model"])
    batch = two_agent_batch(3.2, np.random.default_rng(1))
    want_out, want_grad = run(copy.deepcopy(model), batch, "cpu")
    got_out, got_grad = run(copy.deepcopy(model), batch, "cuda")

    for key, want in want_out.items():
        torch.testing.assert_close(got_out[key], want, rtol=1e-4, atol=1e-4, msg=key)
    assert got_grad.keys() == want_grad.keys() and len(want_grad) == sum(1 for _ in model.parameters())
    for name, want in want_grad.items():
        scale = want.abs().max().item()
        torch.testing.assert_close(got_grad[name], want, rtol=1e-3, atol=1e-4 * scale + 1e-8, msg=name)

    model = model.to("cuda").eval()   # inference: the same outputs again, with no autograd
    with torch.no_grad():
        out = model({k: v.to("cuda") for k, v in batch.items()})
    cpu = copy.deepcopy(model).cpu()
    with torch.no_grad():
        ref = cpu(batch)
    for key, want in ref.items():
        torch.testing.assert_close(out[key].cpu(), want, rtol=1e-4, atol=1e-4, msg=key)
