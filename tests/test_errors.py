"""Every bad input gets one clear error naming the fix."""

from __future__ import annotations

import pytest
import torch

import rnnsuite


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown architecture 'lstmm'.*lstm_peephole"):
        rnnsuite.build("lstmm", input_size=2, hidden_size=2)


def test_unknown_implementation():
    with pytest.raises(
        ValueError,
        match=r"unknown implementation 'cudnn'.*scratch, scratch_torch, compiled, builtin",
    ):
        rnnsuite.build("lstm", "cudnn", input_size=2, hidden_size=2)


@pytest.mark.parametrize("arch", ["lstm_peephole", "gru_cho"])
def test_missing_builtin_lists_what_exists(arch):
    with pytest.raises(ValueError, match=r"no torch built-in.*impl='scratch'.*rnn, lstm, gru"):
        rnnsuite.build(arch, "builtin", input_size=2, hidden_size=2)


def test_unknown_option():
    with pytest.raises(TypeError, match=r"does not take option.*nonlinearity"):
        rnnsuite.build("lstm", input_size=2, hidden_size=2, nonlinearity="relu")
    with pytest.raises(ValueError, match=r"nonlinearity 'sigmoid'"):
        rnnsuite.build("rnn", input_size=2, hidden_size=2, nonlinearity="sigmoid")


@pytest.mark.parametrize(
    ("field", "value", "error"), [("hidden_size", 0, ValueError), ("num_layers", 1.5, TypeError)]
)
def test_bad_sizes(field, value, error):
    kw = dict(input_size=2, hidden_size=2, num_layers=1)
    kw[field] = value
    with pytest.raises(error, match=field):  # torch's types: TypeError for a non-integer
        rnnsuite.build("gru", **kw)


def _both(arch="lstm", **kw):
    kw = dict(input_size=3, hidden_size=4, **kw)
    return [rnnsuite.build(arch, impl, **kw) for impl in ("scratch", "builtin")]


@pytest.mark.parametrize("impl_idx", [0, 1])
def test_mismatched_input_size(impl_idx):
    model = _both()[impl_idx]
    with pytest.raises(ValueError, match=r"input_size=3; rebuild it with input_size=5"):
        model(torch.randn(4, 2, 5))


@pytest.mark.parametrize("impl_idx", [0, 1])
def test_state_of_wrong_shape(impl_idx):
    model = _both(num_layers=2)[impl_idx]
    bad = (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4))
    with pytest.raises(ValueError, match=r"expected \(2, 2, 4\)"):
        model(torch.randn(4, 2, 3), bad)


@pytest.mark.parametrize("impl_idx", [0, 1])
def test_lstm_state_must_be_a_pair(impl_idx):
    model = _both()[impl_idx]
    with pytest.raises(TypeError, match=r"tuple \(h, c\)"):
        model(torch.randn(4, 2, 3), torch.zeros(1, 2, 4))


@pytest.mark.parametrize("impl_idx", [0, 1])
def test_gru_state_must_be_a_tensor(impl_idx):
    model = _both("gru")[impl_idx]
    with pytest.raises(TypeError, match=r"one tensor h"):
        model(torch.randn(4, 2, 3), (torch.zeros(1, 2, 4),))


@pytest.mark.parametrize("impl_idx", [0, 1])
def test_input_must_be_tensor_or_packed(impl_idx):
    model = _both()[impl_idx]
    with pytest.raises(TypeError, match=r"torch.Tensor or a PackedSequence"):
        model([[1.0, 2.0, 3.0]])
    with pytest.raises(ValueError, match=r"dimensions"):
        model(torch.randn(2, 3, 4, 3))


def test_packing_lengths_longer_than_t():
    x = torch.randn(4, 2, 3)
    with pytest.raises(ValueError, match=r"lengths must lie in 1..T=4.*got min 2, max 6"):
        rnnsuite.pack_padded(x, [6, 2])
    with pytest.raises(ValueError, match=r"one entry per sequence"):
        rnnsuite.pack_padded(x, [3])
    with pytest.raises(ValueError, match=r"1..T"):
        rnnsuite.pack_padded(x, [0, 2])


def test_packed_sequence_of_wrong_width():
    model = _both()[0]
    packed = rnnsuite.pack_padded(torch.randn(4, 2, 5), [4, 2])
    with pytest.raises(ValueError, match=r"PackedSequence data has shape"):
        model(packed)


def test_copy_weights_mismatches_are_refused_before_writing():
    src = rnnsuite.build("lstm", "builtin", input_size=3, hidden_size=4, num_layers=2)
    dst = rnnsuite.build("lstm", "scratch", input_size=3, hidden_size=4, num_layers=1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ValueError, match=r"only in source.*weight_hh_l1"):
        rnnsuite.copy_weights(src, dst)
    assert all(torch.equal(v, dst.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match=r"shapes differ"):
        rnnsuite.copy_weights(
            src, rnnsuite.build("lstm", input_size=3, hidden_size=5, num_layers=2)
        )
    with pytest.raises(ValueError, match=r"'lstm' module into a 'gru'"):
        rnnsuite.copy_weights(src, rnnsuite.build("gru", input_size=3, hidden_size=4, num_layers=2))
    with pytest.raises(ValueError, match=r"nonlinearity"):
        rnnsuite.copy_weights(
            rnnsuite.build("rnn", input_size=3, hidden_size=4, nonlinearity="relu"),
            rnnsuite.build("rnn", "builtin", input_size=3, hidden_size=4),
        )
    with pytest.raises(TypeError, match=r"not a recurrent module"):
        rnnsuite.copy_weights(torch.nn.Linear(2, 2), dst)


def test_registry_lists_architectures_and_implementations():
    assert rnnsuite.ARCHITECTURES == ("rnn", "lstm", "lstm_peephole", "gru", "gru_cho")
    assert rnnsuite.IMPLEMENTATIONS == ("scratch", "scratch_torch", "compiled", "builtin")
    assert rnnsuite.implementations_of("gru_cho") == ("scratch", "scratch_torch", "compiled")
    assert rnnsuite.implementations_of("lstm") == (
        "scratch", "scratch_torch", "compiled", "builtin"
    )  # fmt: skip
    assert rnnsuite.implementations_of("transformer") == ("builtin",)
    assert rnnsuite.architectures()[-1] == "transformer"
