"""The hand-written BPTT (rnnsuite.bptt) against autograd's per-step graph of the same
cells, plus the paths around it: gradcheck, WeightDrop, re-entrant backward, and the
inference weight cache seeing parameter changes."""

from __future__ import annotations

import itertools

import pytest
import torch

import rnnsuite
from helpers import as_tuple, assert_results_close, initial_state, make_input, run_and_backprop
from rnnsuite.regularizers import WeightDrop

MANUAL = [a for a in rnnsuite.ARCHITECTURES if rnnsuite.architecture(a).cell.manual]
T, B, I, H = 6, 4, 3, 5
LENGTHS = [4, 6, 1, 3]


def _model(arch, layers=1, bidir=False, dtype=torch.float64, **kw):
    torch.manual_seed(0)
    m = rnnsuite.build(
        arch, "scratch", input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidir, **kw
    )
    return m.to(dtype)


def _manual_matches_autograd(model, x, lengths, state, tol):
    """Outputs, final states and every gradient: hand-written BPTT vs autograd's graph."""
    got = run_and_backprop(model, x, lengths, state, False)
    with rnnsuite.bptt.autograd_steps():
        want = run_and_backprop(model, x, lengths, state, False)
    assert_results_close(got, want, tol)


def test_the_manual_cells_are_the_ones_with_builtins():
    """lstm, gru and rnn write their gradient by hand; the scratch-only variants use autograd."""
    assert set(MANUAL) == {"rnn", "lstm", "gru"}


@pytest.mark.parametrize(
    "arch,layers,bidir,packed,init",
    list(itertools.product(MANUAL, [1, 2], [False, True], [False, True], [False, True])),
)
def test_manual_equals_autograd_steps(arch, layers, bidir, packed, init):
    model = _model(arch, layers, bidir)
    x = make_input(T, B, I, torch.float64, batch_first=False)
    state = initial_state(arch, layers * (2 if bidir else 1), B, H, torch.float64) if init else None
    lengths = LENGTHS if packed else None
    _manual_matches_autograd(model, x, lengths, state, tol=1e-10)


@pytest.mark.parametrize("arch", MANUAL)
@pytest.mark.parametrize("packed", [False, True])
def test_manual_equals_autograd_steps_float32(arch, packed):
    """float32 goes through the oneDNN GEMMs (float64 takes the plain ones)."""
    model = _model(arch, 2, True, dtype=torch.float32)
    x = make_input(T, B, I, torch.float32, batch_first=False)
    state = initial_state(arch, 4, B, H, torch.float32)
    lengths = LENGTHS if packed else None
    _manual_matches_autograd(model, x, lengths, state, tol=1e-5)


def test_the_manual_path_is_taken():
    model = _model("lstm")
    out, _ = model(torch.randn(T, B, I, dtype=torch.float64))
    assert "ManualBPTT" in type(out.grad_fn).__name__
    with rnnsuite.bptt.autograd_steps():
        out, _ = model(torch.randn(T, B, I, dtype=torch.float64))
    assert "ManualBPTT" not in type(out.grad_fn).__name__


@pytest.mark.parametrize("arch", MANUAL)
@pytest.mark.parametrize("packed", [False, True])
def test_gradcheck(arch, packed):
    """Finite differences agree with the hand-written gradient (inputs, state, weights)."""
    model = _model(arch, layers=1, bidir=True)
    params = list(model.parameters())
    x = torch.randn(4, 3, I, dtype=torch.float64, requires_grad=True)
    h0 = initial_state(arch, 2, 3, H, torch.float64)

    def f(x, *state_and_params):
        n = len(as_tuple(h0))
        state = state_and_params[:n]
        inp = rnnsuite.pack_padded(x, [4, 2, 3]) if packed else x
        out, final = model(inp, state[0] if n == 1 else tuple(state))
        data = out.data if packed else out
        return (data, *as_tuple(final))

    assert torch.autograd.gradcheck(f, (x, *as_tuple(h0), *params), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("arch", MANUAL)
def test_weight_drop_gradients_match_autograd(arch):
    model = _model(arch, layers=2)
    wd = WeightDrop(model, 0.5).train()
    x = torch.randn(T, B, I, dtype=torch.float64)

    def grads():
        torch.manual_seed(7)  # the same DropConnect mask both times
        wd.zero_grad()
        out, _ = wd(x)
        out.pow(2).sum().backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    got = grads()
    with rnnsuite.bptt.autograd_steps():
        want = grads()
    for k in got:
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-10, msg=k)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_two_graphs_alive_at_once(dtype):
    """The backward keeps scratch buffers between calls: two forwards whose backward runs
    after both (gradient accumulation) must give the sum of the separate gradients."""
    model = _model("lstm", layers=2, dtype=dtype)
    xa = torch.randn(T, B, I, dtype=dtype)
    xb = torch.randn(T + 2, B, I, dtype=dtype)

    def grads(*xs):
        model.zero_grad()
        loss = sum(model(x)[0].pow(2).sum() for x in xs)
        loss.backward()
        return {k: p.grad.clone() for k, p in model.named_parameters()}

    together = grads(xa, xb)
    apart_a, apart_b = grads(xa), grads(xb)
    for k in together:
        torch.testing.assert_close(together[k], apart_a[k] + apart_b[k], rtol=1e-5, atol=1e-6)


def test_inference_weight_cache_sees_in_place_changes():
    """run_padded keeps the joined, reordered weight between calls; an optimiser step,
    copy_weights or load_state_dict must show up in the next call."""
    torch.manual_seed(0)
    model = rnnsuite.build("lstm", "scratch", input_size=I, hidden_size=H).eval()
    twin = rnnsuite.build("lstm", "builtin", input_size=I, hidden_size=H).eval()
    x = torch.randn(T, B, I)
    for change in range(3):
        if change == 1:
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.1)
        elif change == 2:
            model.load_state_dict({k: torch.randn_like(v) for k, v in model.state_dict().items()})
        rnnsuite.copy_weights(model, twin)
        with torch.no_grad():
            got, want = model(x)[0], twin(x)[0]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_compiled_cells_do_not_take_the_manual_path(monkeypatch):
    model = _model("gru", dtype=torch.float32).compile_steps()
    assert all(cell.steps_only for _, cell in model.cells())
    # the layers must not even ask the hand-written or native paths
    for name in ("run", "infer"):
        monkeypatch.setattr(rnnsuite.bptt, name, lambda *a, **k: pytest.fail("took bptt"))
    for _, cell in model.cells():  # nor run the real step: only that the layer calls it
        cell.step_fn = type(cell).step_fn.__get__(cell)
    model(torch.randn(4, 2, model.input_size))[0].sum().backward()


def test_workspace_release_keeps_results():
    model = _model("gru", layers=2, dtype=torch.float32)
    x = torch.randn(T, B, I)
    model(x)[0].sum().backward()
    first = {k: p.grad.clone() for k, p in model.named_parameters()}
    rnnsuite.bptt.release_workspace()
    model.zero_grad()
    model(x)[0].sum().backward()
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, first[k])
