"""The same parity on a GPU (cuDNN for the built-ins). Skips with a reason on CPU-only hosts."""

from __future__ import annotations

import pytest
import torch

import rnnsuite
from helpers import as_tuple

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]

WITH_BUILTIN = [a for a in rnnsuite.ARCHITECTURES if "builtin" in rnnsuite.implementations_of(a)]


@pytest.mark.parametrize("arch", WITH_BUILTIN)
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_cuda_scratch_equals_builtin(arch, packed, dtype, tol):
    torch.manual_seed(0)
    kw = dict(input_size=7, hidden_size=16, num_layers=2, bidirectional=True)
    builtin = rnnsuite.build(arch, "builtin", **kw).to("cuda", dtype)
    scratch = rnnsuite.copy_weights(
        builtin, rnnsuite.build(arch, "scratch", **kw).to("cuda", dtype)
    )
    x = torch.randn(9, 5, 7, device="cuda", dtype=dtype, requires_grad=True)
    lengths = [9, 2, 5, 1, 7]
    outs, grads = [], []
    for model in (scratch, builtin):
        x.grad = None
        model.zero_grad()
        inp = rnnsuite.pack_padded(x, lengths) if packed else x
        out, state = model(inp)
        data = out.data if packed else out
        (data.square().sum() + sum(s.sum() for s in as_tuple(state))).backward()
        outs.append((data.detach(), *(s.detach() for s in as_tuple(state))))
        grads.append(
            [x.grad.clone(), *(p.grad for p in rnnsuite.canonical_parameters(model).values())]
        )
    for a, b in zip(outs[0] + tuple(grads[0]), outs[1] + tuple(grads[1]), strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_cuda_stateful_and_packed_run_on_device():
    model = rnnsuite.Stateful(rnnsuite.build("lstm_peephole", input_size=3, hidden_size=4).cuda())
    x = torch.randn(5, 2, 3, device="cuda")
    a, b = model(x)[0], model(x)[0]
    assert a.is_cuda and not torch.allclose(a, b)
