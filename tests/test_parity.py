"""Scratch equals built-in after copy_weights: outputs, final states, every gradient."""

from __future__ import annotations

import itertools

import pytest
import torch

import rnnsuite
from helpers import as_tuple, initial_state, make_input, run_and_backprop

WITH_BUILTIN = [a for a in rnnsuite.ARCHITECTURES if "builtin" in rnnsuite.implementations_of(a)]
T, B, I, H = 6, 4, 3, 5
LENGTHS = [4, 6, 1, 3]  # unsorted, one of length 1 and one full

GRID = list(
    itertools.product(
        WITH_BUILTIN,
        [1, 2, 3],  # layers
        [False, True],  # bidirectional
        [False, True],  # batch_first
        [False, True],  # packed
        [False, True],  # initial state given
    )
)


def _ids(case: tuple) -> str:
    arch, layers, bidir, bf, packed, init = case
    return (
        f"{arch}-L{layers}-{'bi' if bidir else 'uni'}-{'bf' if bf else 'tf'}-"
        f"{'packed' if packed else 'padded'}-{'h0' if init else 'zero'}"
    )


def _check_pair(arch, layers, bidir, batch_first, packed, init, dtype, tol, **opts):
    torch.manual_seed(0)
    kw = dict(
        input_size=I,
        hidden_size=H,
        num_layers=layers,
        bidirectional=bidir,
        batch_first=batch_first,
        **opts,
    )
    builtin = rnnsuite.build(arch, "builtin", **kw).to(dtype)
    scratch = rnnsuite.build(arch, "scratch", **kw).to(dtype)
    rnnsuite.copy_weights(builtin, scratch)
    x = make_input(T, B, I, dtype, batch_first)
    dirs = 2 if bidir else 1
    state = initial_state(arch, layers * dirs, B, H, dtype) if init else None
    lengths = LENGTHS if packed else None
    ref = run_and_backprop(builtin, x, lengths, state, batch_first)
    got = run_and_backprop(scratch, x, lengths, state, batch_first)
    names = ["output", "final state", "parameter grads", "input grad", "initial-state grads"]
    for name, a, b in zip(names, got, ref, strict=True):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=tol, atol=tol, msg=f"grad of {k}")
        elif isinstance(a, tuple):
            assert len(a) == len(b), name
            for u, v in zip(a, b, strict=True):
                torch.testing.assert_close(u, v, rtol=tol, atol=tol, msg=name)
        else:
            torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("case", GRID, ids=_ids)
def test_scratch_equals_builtin_float64(case):
    _check_pair(*case, dtype=torch.float64, tol=1e-10)


@pytest.mark.parametrize("case", GRID, ids=_ids)
def test_scratch_equals_builtin_float32(case):
    _check_pair(*case, dtype=torch.float32, tol=1e-5)


@pytest.mark.parametrize("bidir", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_relu_rnn_equals_builtin(bidir, packed):
    _check_pair("rnn", 2, bidir, False, packed, True, torch.float64, 1e-10, nonlinearity="relu")


@pytest.mark.parametrize("arch", WITH_BUILTIN)
def test_no_bias_equals_builtin(arch):
    _check_pair(arch, 2, True, False, True, True, torch.float64, 1e-10, bias=False)


@pytest.mark.parametrize("arch", WITH_BUILTIN)
def test_unbatched_input_equals_builtin(arch):
    torch.manual_seed(0)
    kw = dict(input_size=I, hidden_size=H, num_layers=2, bidirectional=True)
    builtin = rnnsuite.build(arch, "builtin", **kw).double()
    scratch = rnnsuite.copy_weights(builtin, rnnsuite.build(arch, "scratch", **kw).double())
    x = torch.randn(T, I, dtype=torch.float64)
    (o1, s1), (o2, s2) = scratch(x), builtin(x)
    torch.testing.assert_close(o1, o2, rtol=1e-10, atol=1e-10)
    for a, b in zip(
        s1 if isinstance(s1, tuple) else (s1,), s2 if isinstance(s2, tuple) else (s2,), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("arch", WITH_BUILTIN)
def test_copy_back_to_builtin_round_trips(arch):
    """copy_weights works in both directions: built-in → scratch → fresh built-in."""
    kw = dict(input_size=I, hidden_size=H, num_layers=2, bidirectional=True)
    a = rnnsuite.build(arch, "builtin", **kw)
    s = rnnsuite.copy_weights(a, rnnsuite.build(arch, "scratch", **kw))
    b = rnnsuite.copy_weights(s, rnnsuite.build(arch, "builtin", **kw))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


@pytest.mark.parametrize("arch", WITH_BUILTIN)
def test_dropout_between_layers_only_in_training(arch):
    kw = dict(input_size=I, hidden_size=H, num_layers=2, dropout=0.5)
    scratch = rnnsuite.build(arch, "scratch", **kw).double()
    builtin = rnnsuite.copy_weights(scratch, rnnsuite.build(arch, "builtin", **kw).double())
    x = torch.randn(T, B, I, dtype=torch.float64)
    scratch.eval()
    builtin.eval()
    torch.testing.assert_close(scratch(x)[0], builtin(x)[0], rtol=1e-10, atol=1e-10)
    scratch.train()
    torch.manual_seed(1)
    a = scratch(x)[0]
    torch.manual_seed(2)
    b = scratch(x)[0]
    assert not torch.allclose(a, b), "dropout between layers had no effect in training"


@pytest.mark.parametrize("arch", WITH_BUILTIN)
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_inference_path_equals_builtin(arch, packed, dtype, tol):
    """Without autograd the cells take shortcuts (in place; LSTM's tanh as 2σ(2x) − 1;
    float32 GEMMs through oneDNN on CPU); results must not change."""
    torch.manual_seed(0)
    kw = dict(input_size=I, hidden_size=H, num_layers=2, bidirectional=True)
    builtin = rnnsuite.build(arch, "builtin", **kw).to(dtype)
    scratch = rnnsuite.copy_weights(builtin, rnnsuite.build(arch, "scratch", **kw).to(dtype))
    x = torch.randn(T, B, I, dtype=dtype)
    inp = rnnsuite.pack_padded(x, LENGTHS) if packed else x
    h0 = initial_state(arch, 4, B, H, dtype)  # non-zero: the fused LSTM path seeds its buffers
    with torch.no_grad():
        (o1, s1), (o2, s2) = scratch(inp, h0), builtin(inp, h0)
    if packed:
        o1, o2 = o1.data, o2.data
    torch.testing.assert_close(o1, o2, rtol=tol, atol=tol)
    for a, b in zip(as_tuple(s1), as_tuple(s2), strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
