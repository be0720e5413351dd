"""Scratch packed input: equal to padded on valid steps and to each sequence run alone."""

from __future__ import annotations

import pytest
import torch

import rnnsuite
from helpers import as_tuple

T, B, I, H = 7, 5, 3, 4
LENGTHS = [3, 7, 1, 5, 7]


def _model(arch, bidir, layers=2):
    torch.manual_seed(0)
    return rnnsuite.build(
        arch, "scratch", input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidir
    ).double()


@pytest.mark.parametrize("arch", rnnsuite.ARCHITECTURES)
def test_packed_equals_padded_on_valid_steps(arch):
    model = _model(arch, bidir=False)
    x = torch.randn(T, B, I, dtype=torch.float64)
    padded_out, _ = model(x)
    packed_out, packed_state = model(rnnsuite.pack_padded(x, LENGTHS))
    unpacked, lengths = rnnsuite.unpack(packed_out, total_length=T)
    assert lengths.tolist() == LENGTHS
    for b, n in enumerate(LENGTHS):
        torch.testing.assert_close(unpacked[:n, b], padded_out[:n, b], rtol=0, atol=1e-12)
        assert torch.count_nonzero(unpacked[n:, b]) == 0
        # final h of the top layer is the output at the sequence's own last step
        torch.testing.assert_close(as_tuple(packed_state)[0][-1, b], padded_out[n - 1, b])


@pytest.mark.parametrize("arch", rnnsuite.ARCHITECTURES)
@pytest.mark.parametrize("bidir", [False, True])
def test_packed_equals_each_sequence_alone(arch, bidir):
    """Every output and every layer's final state equal running that sequence unpadded."""
    model = _model(arch, bidir)
    x = torch.randn(T, B, I, dtype=torch.float64)
    state = tuple(
        torch.randn(2 * (2 if bidir else 1), B, H, dtype=torch.float64)
        for _ in range(rnnsuite.architecture(arch).cell.state_size)
    )
    state_arg = state[0] if len(state) == 1 else state
    packed_out, packed_state = model(rnnsuite.pack_padded(x, LENGTHS), state_arg)
    unpacked, _ = rnnsuite.unpack(packed_out, total_length=T)
    for b, n in enumerate(LENGTHS):
        alone_state = tuple(s[:, b : b + 1] for s in state)
        out_b, state_b = model(x[:n, b : b + 1], alone_state[0] if len(state) == 1 else alone_state)
        torch.testing.assert_close(unpacked[:n, b], out_b[:, 0], rtol=0, atol=1e-12)
        for got, want in zip(as_tuple(packed_state), as_tuple(state_b), strict=True):
            torch.testing.assert_close(got[:, b], want[:, 0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("path", ["manual", "autograd", "no_grad"])
def test_packed_skips_finished_sequences_rather_than_masking(path):
    """The loop computes only active rows: the cell sees shrinking batches, on each of the
    three paths (hand-written BPTT, autograd's per-step graph, inference)."""
    model = _model("lstm", bidir=False, layers=1)
    cell = model.layers[0].cell
    seen: list[int] = []
    if path == "manual":
        make = cell.manual_step

        def spy(*args):
            inner = make(*args)
            forward = inner.forward

            def counted(xp, state, out):
                seen.append(xp.shape[0])
                return forward(xp, state, out)

            inner.forward = counted
            return inner

        cell.manual_step = spy
    else:
        step = cell.step_fn

        def spy(*args):
            inner = step(*args)

            def wrapped(xp, state):
                seen.append(xp.shape[0])
                return inner(xp, state)

            return wrapped

        cell.step_fn = spy
    x = rnnsuite.pack_padded(torch.randn(T, B, I, dtype=torch.float64), LENGTHS)
    if path == "autograd":
        with rnnsuite.bptt.autograd_steps():
            model(x)
    elif path == "no_grad":
        with torch.no_grad():
            model(x)
    else:
        out, _ = model(x)
        out.data.sum().backward()
    assert seen == [sum(n > t for n in LENGTHS) for t in range(T)]
