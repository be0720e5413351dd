"""The oneDNN route of the scratch cells' matrix multiplies must be F.linear, values and
gradients, and must step aside where it cannot serve (float64, Dynamo)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rnnsuite.cells import gemm

needs_onednn = pytest.mark.skipif(
    not gemm.usable(torch.zeros(1)), reason="this torch build has no oneDNN linear"
)


@needs_onednn
@pytest.mark.parametrize("shape", [(7, 5, 6), (9, 6)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_f_linear_with_gradients(shape, bias):
    torch.manual_seed(0)
    x = torch.randn(*shape, requires_grad=True)
    w = torch.randn(12, 6, requires_grad=True)
    b = torch.randn(12, requires_grad=True) if bias else None
    leaves = [t for t in (x, w, b) if t is not None]
    g = torch.randn(*shape[:-1], 12)

    ours = gemm.linear(x, w, b)
    ref = F.linear(x, w, b)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(ours, leaves, g)
    want = torch.autograd.grad(ref, leaves, g)
    for a, e in zip(got, want, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4)


@needs_onednn
def test_linear_without_input_gradient_leaves_it_none():
    x = torch.randn(4, 6)
    w = torch.randn(3, 6, requires_grad=True)
    out = gemm.linear(x, w)
    out.sum().backward()
    assert x.grad is None
    torch.testing.assert_close(w.grad, x.sum(0).expand(3, 6), rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("hint", [1, 8, 32])
def test_recurrent_matmul_serves_any_batch(hint):
    """The packed weight is laid out for `hint` rows; a packed sequence's shrinking
    batch still has to get the right product."""
    torch.manual_seed(1)
    w = torch.randn(16, 8)
    step = gemm.recurrent_matmul(w, hint)
    for rows in (8, 5, 1):
        h, add = torch.randn(rows, 8), torch.randn(rows, 16)
        torch.testing.assert_close(step(h, add), add + h @ w.t(), rtol=1e-5, atol=1e-5)


def test_float64_takes_the_ordinary_path():
    x = torch.randn(3, 4, dtype=torch.float64)
    assert not gemm.usable(x)
    w = torch.randn(5, 4, dtype=torch.float64)
    assert torch.equal(gemm.linear(x, w), F.linear(x, w))
    step = gemm.recurrent_matmul(w, 3)
    add = torch.randn(3, 5, dtype=torch.float64)
    assert torch.equal(step(x, add), torch.addmm(add, x, w.t()))


@needs_onednn
@pytest.mark.parametrize("rows", [5, 2])
def test_step_matmul_is_linear(rows):
    torch.manual_seed(2)
    w, b, z = torch.randn(12, 7), torch.randn(12), torch.randn(rows, 7)
    step = gemm.step_matmul(w, b, 5)
    assert step is not None
    torch.testing.assert_close(step(z), F.linear(z, w, b), rtol=1e-5, atol=1e-6)
    assert gemm.step_matmul(w.double(), b.double(), 5) is None


@needs_onednn
def test_input_grad_matmul_and_weight_grad():
    """The backward products of the manual BPTT: grad W (+ add) and gradᵀ inp (dW)."""
    torch.manual_seed(3)
    w, g, add = torch.randn(12, 7), torch.randn(5, 12), torch.randn(5, 7)
    back = gemm.input_grad_matmul(w, 5)
    torch.testing.assert_close(back(g, None), g @ w, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(back(g, add), g @ w + add, rtol=1e-5, atol=1e-5)
    grad, inp = torch.randn(9, 12), torch.randn(9, 7)
    want = grad.t() @ inp
    torch.testing.assert_close(gemm.weight_grad(grad, inp), want, rtol=1e-5, atol=1e-4)
    # a strided gradient (a column block, as GRU's hidden rows are) and the float64 path
    wide = torch.randn(9, 30)
    torch.testing.assert_close(
        gemm.weight_grad(wide[:, 3:15], inp), wide[:, 3:15].t() @ inp, rtol=1e-5, atol=1e-4
    )
    torch.testing.assert_close(
        gemm.weight_grad(grad.double(), inp.double()), want.double(), rtol=1e-5, atol=1e-4
    )
    assert gemm.weight_grad(grad[:0], inp[:0]).shape == (12, 7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [0, 7, 300])
def test_weight_grads_are_each_weights_product_in_one(rows, dtype):
    """gradᵀ [x | h] split: each block is its own gradᵀ input, contiguous, the right shape;
    float64 (no oneDNN) and an empty batch take the separate products."""
    g = torch.Generator().manual_seed(rows)
    grad = torch.randn(rows, 12, generator=g, dtype=dtype)
    x, h = (
        torch.randn(rows, 5, generator=g, dtype=dtype),
        torch.randn(rows, 3, generator=g, dtype=dtype),
    )
    gx, gh = gemm.weight_grads(grad, [x, h])
    tol = {"atol": 1e-4, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(gx, grad.t() @ x, **tol)
    torch.testing.assert_close(gh, grad.t() @ h, **tol)
    assert gx.shape == (12, 5) and gh.shape == (12, 3)
    assert gx.is_contiguous() and gh.is_contiguous()
