"""remember/forget as in the Element-Research tutorial; acceptor and transducer heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import rnnsuite
from rnnsuite import Acceptor, Stateful, Transducer

T, B, I, H = 5, 3, 6, 6


@pytest.fixture(params=[("lstm", "scratch"), ("lstm", "builtin"), ("lstm_peephole", "scratch")])
def seq(request):
    arch, impl = request.param
    torch.manual_seed(0)
    return Stateful(rnnsuite.build(arch, impl, input_size=I, hidden_size=H).double())


@pytest.fixture
def song():
    torch.manual_seed(1)
    return torch.randn(T, B, I, dtype=torch.float64)


def last(seq, x):
    return seq(x)[0][-1].detach()


def test_remember_both_carries_state_and_forget_restores(seq, song):
    seq.remember("both")
    first = last(seq, song)
    second = last(seq, song)
    assert not torch.allclose(first, second), "same input twice must differ when remembering"
    seq.forget()
    torch.testing.assert_close(last(seq, song), first, rtol=0, atol=0)


def test_remember_neither_always_starts_from_zero(seq, song):
    seq.remember("neither")
    outs = [last(seq, song) for _ in range(3)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    ("mode", "training", "carries"),
    [
        ("train", True, True),
        ("train", False, False),
        ("eval", True, False),
        ("eval", False, True),
        ("both", False, True),
        ("neither", True, False),
    ],
)
def test_remember_modes_by_train_or_eval(seq, song, mode, training, carries):
    seq.train(training).remember(mode)
    a, b = last(seq, song), last(seq, song)
    assert (not torch.allclose(a, b)) == carries


def test_carried_state_is_detached_for_truncated_bptt(seq, song):
    seq.remember("both")
    seq(song)[0].sum().backward()
    h = seq.state[0]
    assert not h.requires_grad and h.grad_fn is None
    out, _ = seq(song)  # second chunk back-propagates only into itself
    out.sum().backward()


def test_switching_train_eval_forgets(seq, song):
    seq.remember("both")
    first = last(seq, song)
    seq.eval()
    assert seq.state is None
    torch.testing.assert_close(last(seq, song), first, rtol=0, atol=0)


def test_batch_change_with_carried_state_names_the_fix(seq, song):
    seq(song)
    with pytest.raises(ValueError, match=r"forget"):
        seq(song[:, :2])


def test_bad_remember_mode():
    with pytest.raises(ValueError, match=r"both, train, eval, neither"):
        Stateful(rnnsuite.build("rnn", input_size=2, hidden_size=2), remember="always")


@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_acceptor_reads_each_sequences_last_valid_step(impl):
    torch.manual_seed(0)
    rnn = rnnsuite.build("gru", impl, input_size=I, hidden_size=H).double()
    acc = Acceptor(rnn, nn.Linear(H, 1).double())
    x = torch.randn(T, B, I, dtype=torch.float64)
    lengths = [2, 5, 3]
    got, _ = acc(rnnsuite.pack_padded(x, lengths))
    for b, n in enumerate(lengths):
        want = acc.head(rnn(x[:n, b : b + 1])[0][-1])
        torch.testing.assert_close(got[b], want[0], rtol=1e-12, atol=1e-12)
    full, _ = acc(x)
    torch.testing.assert_close(full, acc.head(rnn(x)[0][-1]))


@pytest.mark.parametrize("batch_first", [False, True])
def test_transducer_reads_every_step(batch_first):
    torch.manual_seed(0)
    rnn = rnnsuite.build("lstm", input_size=I, hidden_size=H, batch_first=batch_first).double()
    head = nn.Linear(H, 7).double()
    tr = Transducer(rnn, head)
    x = torch.randn((B, T, I) if batch_first else (T, B, I), dtype=torch.float64)
    y, _ = tr(x)
    assert y.shape == ((B, T, 7) if batch_first else (T, B, 7))
    torch.testing.assert_close(y, head(rnn(x)[0]))
    packed, _ = tr(rnnsuite.pack_padded(x, [5, 1, 4], batch_first=batch_first))
    assert packed.data.shape == (10, 7)
