"""PyTorch's own RNN tests, ported to run against the drop-in twins (helpers.twin_class).

Written from what each of torch's tests checks (test/test_nn.py: TestNN and TestNNDeviceType,
where test_LSTM_grad_and_gradgrad and test_GRU_grad_and_gradgrad now live too; they began in
test/test_autograd.py), keeping its inputs, sizes and assertions; the code is this project's.
torch's assertEqual / assertNotEqual become assert_equal / assert_not_equal below: the same
comparison (torch.testing.assert_close's per-dtype tolerances unless a test names its own).

Where torch runs a test only with CUDA or cuDNN, its CPU-meaningful part is ported and the
test's docstring says so. RNNSUITE_TWIN_SELFCHECK=torch runs every port on torch's own classes
(it must pass: that proves the port); the tests at the end run ports on twins broken on
purpose and demand that they fail.
"""

from __future__ import annotations

import io
import itertools
import re
import sys
from copy import deepcopy

import pytest
import torch
from torch import nn
from torch.autograd import gradcheck, gradgradcheck
from torch.autograd.gradcheck import GradcheckError
from torch.nn.utils import rnn as rnn_utils

from helpers import as_tuple, assert_raises, broken_twin, twin_class

MODES = (nn.RNN, nn.GRU, nn.LSTM)


def assert_equal(actual, expected, **tol) -> None:
    """torch's TestCase.assertEqual for what these tests compare: tensors, tuples or lists of
    them, or a tensor and a number."""
    if isinstance(actual, torch.Tensor) and not isinstance(expected, torch.Tensor | tuple | list):
        expected = torch.full_like(actual, expected)
    torch.testing.assert_close(actual, expected, check_dtype=False, **tol)


def assert_not_equal(actual, expected) -> None:
    try:
        assert_equal(actual, expected)
    except AssertionError:
        return
    raise AssertionError(f"expected a difference, got equal values {actual}")


# --- test_RNN_cpu_vs_cudnn_no_dropout ------------------------------------------------------

SIZES = {"input_size": 10, "hidden_size": 6, "num_layers": 2}
SEQ, BATCH, PROJ = 7, 6, 3
LENGTHS = [7, 5, 5, 2, 1, 1]


def _noncontig(t: torch.Tensor) -> torch.Tensor:
    """Same values, not contiguous (every other element of a stacked pair)."""
    return torch.stack([torch.zeros_like(t), t], t.dim()).select(t.dim(), 1)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    """A fresh leaf with t's values and t's strides (clone would make it contiguous)."""
    copy = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype)
    return copy.copy_(t).requires_grad_(True)


def _forward_backward(rnn, weights, data: dict) -> dict:
    """torch's forward_backward: copy the weights in through all_weights, run with an initial
    state, backward given gradients; what came out and every gradient."""
    with torch.no_grad():
        for mine, theirs in zip(rnn.all_weights, weights, strict=True):
            for x, y in zip(mine, theirs, strict=True):
                x.copy_(y)
    x = data["input"]
    if isinstance(x, rnn_utils.PackedSequence):
        leaf = _leaf(x.data)
        x = rnn_utils.PackedSequence(leaf, x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    else:
        x = leaf = _leaf(x)
    hx = tuple(_leaf(h) for h in data["hx"])
    output, hy = rnn(x, hx if len(hx) == 2 else hx[0])
    output = output.data if isinstance(output, rnn_utils.PackedSequence) else output
    hy = as_tuple(hy)
    torch.autograd.backward([output, *hy], [data["grad_output"], *data["grad_hy"]])
    return {
        "output": output.detach(),
        "hy": tuple(h.detach() for h in hy),
        "grad_input": leaf.grad,
        "grad_hx": tuple(h.grad for h in hx),
        "grad_weights": [p.grad for layer in rnn.all_weights for p in layer],
    }


def _cudnn_case(
    module, bias, bidirectional, batch_first, contig, variable_len, lens_as_tensor, proj
):
    """One of torch's cases: constructor kwargs, and inputs, states and output gradients."""
    dirs = 2 if bidirectional else 1
    out_h = proj or SIZES["hidden_size"]
    shape = (BATCH, SEQ) if batch_first else (SEQ, BATCH)
    x = torch.randn(*shape, SIZES["input_size"], dtype=torch.double)
    grad_output = torch.randn(*shape, out_h * dirs, dtype=torch.double)
    state_shape = (SIZES["num_layers"] * dirs, BATCH)
    hx = [torch.randn(*state_shape, out_h, dtype=torch.double)]
    grad_hy = [torch.randn(*state_shape, out_h, dtype=torch.double)]
    if module is nn.LSTM:  # torch: cx = hx + 1 and grad_cy = grad_hy + 1 without projections
        c = torch.randn(*state_shape, SIZES["hidden_size"], dtype=torch.double)
        hx.append(c if proj else hx[0] + 1)
        gc = torch.randn(*state_shape, SIZES["hidden_size"], dtype=torch.double)
        grad_hy.append(gc + 1 if proj else grad_hy[0] + 1)
    # Non-contiguous input and state reach the module as such here; in torch's test the input's
    # make_noncontig result goes unused and its clone() of hx is contiguous again.
    if not contig:
        x, grad_output = _noncontig(x), _noncontig(grad_output)
        hx, grad_hy = [_noncontig(h) for h in hx], [_noncontig(g) for g in grad_hy]
    if variable_len:
        lengths = torch.tensor(LENGTHS) if lens_as_tensor else LENGTHS
        x = rnn_utils.pack_padded_sequence(x, lengths, batch_first=batch_first)
        grad_output = rnn_utils.pack_padded_sequence(grad_output, lengths, batch_first=batch_first)
        grad_output = grad_output.data
    kwargs = dict(SIZES, bias=bias, bidirectional=bidirectional, batch_first=batch_first)
    kwargs.update({"proj_size": proj} if proj else {})
    data = {"input": x, "hx": hx, "grad_output": grad_output, "grad_hy": grad_hy}
    return kwargs, data


def _cudnn_cases():
    flags = itertools.product((True, False), repeat=6)
    # lens_as_tensor matters only with variable lengths: its other half repeats cases
    flags = [f for f in flags if f[4] or not f[5]]
    for module in MODES:
        yield from ((module, *f, 0) for f in flags)
    yield from ((nn.LSTM, *f, PROJ) for f in flags)


def _compare_cpu_and_twin(module, kwargs: dict, data: dict, extra: dict) -> None:
    rnn = module(**kwargs, **extra).double()
    twin = twin_class(module)(**kwargs, **extra).double()
    want = _forward_backward(rnn, rnn.all_weights, data)
    got = _forward_backward(twin, rnn.all_weights, data)
    assert list(got) == list(want)
    for key in want:
        assert_equal(got[key], want[key], atol=5e-5, rtol=0)


def _cpu_vs_twin(dropout: float) -> None:
    torch.manual_seed(0)
    for module, *flags, proj in _cudnn_cases():
        _compare_cpu_and_twin(module, *_cudnn_case(module, *flags, proj), {"dropout": dropout})
    for nonlinearity, bias in itertools.product(("tanh", "relu"), (True, False)):
        kwargs, data = _cudnn_case(nn.RNN, bias, False, False, True, False, False, 0)
        _compare_cpu_and_twin(nn.RNN, kwargs, data, {"nonlinearity": nonlinearity})


def test_RNN_cpu_vs_cudnn_no_dropout():
    """CUDA-only in torch (built-in on CPU vs cuDNN); here the built-in on CPU vs the scratch
    twin, every case of torch's grid (bias, bidirectional, batch_first, contiguous or not,
    padded or packed with lengths as a list or a tensor; LSTM also with projections; RNN also
    relu and tanh), float64, torch's tolerance (atol 5e-5): outputs, final states, and the
    gradients of input, initial states and every weight."""
    _cpu_vs_twin(0)


def test_RNN_cpu_vs_cudnn_with_dropout():
    """As above with dropout=1 in train mode, the one dropout besides 0 whose result is fixed
    (every unit between the layers dropped), so torch compares it too."""
    _cpu_vs_twin(1)


# --- dropout -------------------------------------------------------------------------------


def test_RNN_dropout():
    """torch checks, on CPU and with cuDNN, that dropout sits between the layers: with unit
    weights and relu every unit of layer 2 sums the kept units of layer 1 (scaled by 1/(1-p)).
    Ported: the CPU half, float64 as in torch."""
    for p, train in itertools.product((0, 0.276, 0.731, 1), (True, False)):
        rnn = twin_class(nn.RNN)(10, 1000, 2, bias=False, dropout=p, nonlinearity="relu")
        rnn = rnn.double().train(train)
        with torch.no_grad():
            for name in ("weight_ih_l0", "weight_hh_l0", "weight_ih_l1", "weight_hh_l1"):
                getattr(rnn, name).fill_(1)
        x = torch.ones(1, 1, 10, dtype=torch.double)
        hx = torch.zeros(2, 1, 1000, dtype=torch.double)
        output, hy = rnn(x, hx)
        assert_equal(output.min(), output.max())
        value = output[0][0][0]
        if p == 0 or not train:
            assert_equal(value, 10000)
        elif p == 1:
            assert_equal(value, 0)
        else:
            assert 8000 < value < 12000
            denorm_mod = (value * (1 - p)) % 10
            assert min(denorm_mod, 10 - denorm_mod) < 1e-2
        assert_equal(hy[0].min(), hy[0].max())
        assert_equal(hy[1].min(), hy[1].max())
        assert_equal(hy[0][0][0], 10)
        assert_equal(hy[1][0][0], value)


def test_RNN_dropout_state():
    """torch (CPU and cuDNN): two calls and a torch.save / torch.load copy agree without
    dropout or in eval mode, and differ with dropout in train mode. Ported: the CPU half."""
    for p, train in itertools.product((0, 0.1234), (True, False)):
        rnn = twin_class(nn.RNN)(100, 100, 2, bias=False, dropout=p, nonlinearity="relu")
        rnn.train(train)
        x, hx = torch.rand(1, 1, 100), torch.rand(2, 1, 100)
        output1, hy1 = rnn(x, hx)
        output2, hy2 = rnn(x, hx)
        buf = io.BytesIO()
        torch.save(rnn, buf)
        buf.seek(0)
        rnn2 = torch.load(buf, weights_only=False)
        rnn2.flatten_parameters()
        output3, hy3 = rnn2(x, hx)
        check = assert_equal if p == 0 or not train else assert_not_equal
        for a, b in ((output1, output2), (output1, output3), (hy1, hy2), (hy1, hy3)):
            check(a, b)


def test_RNN_change_dropout():
    """torch (CPU and cuDNN): setting .dropout on a built module takes effect at the next call.
    Ported: the CPU half, float64 as in torch."""
    for train in (True, False):
        rnn = twin_class(nn.RNN)(100, 100, 2, dropout=0, nonlinearity="relu").double()
        rnn.train(train)
        x = torch.rand(3, 2, 100, dtype=torch.double)
        prev_output = None
        for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
            rnn.dropout = p
            output1, hy1 = rnn(x)
            output2, hy2 = rnn(x)
            same = p in (0, 1) or not train
            (assert_equal if same else assert_not_equal)(output1, output2)
            (assert_equal if same else assert_not_equal)(hy1, hy2)
            if prev_output is not None:
                check = assert_not_equal if train else assert_equal
                check(output1, prev_output)
                check(output2, prev_output)
            prev_output = output1.detach()


# --- states, packed sequences, gradients ---------------------------------------------------


def test_rnn_initial_hidden_state():
    for mode in MODES:
        rnn = twin_class(mode)(30, 20, 2)
        x = torch.randn(10, 32, 30)
        hidden = torch.zeros(2, 32, 20)
        output1, hidden1 = rnn(x, (hidden, hidden) if mode is nn.LSTM else hidden)
        output2, hidden2 = rnn(x)
        assert_equal(output1, output2)
        assert_equal(hidden1, hidden2)


def test_projections_lstm_initial_hidden_state():
    for bidir in (False, True):
        rnn = twin_class(nn.LSTM)(30, 20, 2, bidirectional=bidir, proj_size=10)
        dirs = 2 if bidir else 1
        x = torch.randn(10, 32, 30)
        hidden = (torch.zeros(2 * dirs, 32, 10), torch.zeros(2 * dirs, 32, 20))
        output1, hidden1 = rnn(x, hidden)
        output2, hidden2 = rnn(x)
        assert_equal(output1, output2)
        assert_equal(hidden1, hidden2)


def _pad(t: torch.Tensor, length: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(length - t.size(0), *t.shape[1:])])


def _check_lengths(lengths, enforce_sorted: bool, default_hiddens: bool, proj_size: int):
    """A packed batch equals its sequences run one by one: outputs, states, gradients."""
    sizes = {"input_size": 3, "hidden_size": 4, "num_layers": 2, "bidirectional": True}
    x = torch.randn(max(lengths), len(lengths), 3, requires_grad=True)
    lstm = twin_class(nn.LSTM)(**sizes, proj_size=proj_size)
    lstm2 = deepcopy(lstm)
    hidden0 = None
    if not default_hiddens:
        h = torch.randn(4, len(lengths), proj_size or 4)
        hidden0 = (h, torch.randn(4, len(lengths), 4))
    outs, hiddens = [], []
    for i, length in enumerate(lengths):
        hidden_i = None if hidden0 is None else tuple(t[:, i : i + 1].contiguous() for t in hidden0)
        out, hid = lstm2(x[:length, i : i + 1], hidden_i)
        outs.append(_pad(out, max(lengths)))
        hiddens.append(hid)
    seq_out = torch.cat(outs, 1)
    seq_hidden = tuple(torch.cat(parts, 1) for parts in zip(*hiddens, strict=True))

    packed = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    packed_out, packed_hidden = lstm(packed, hidden0)
    unpacked, unpacked_len = rnn_utils.pad_packed_sequence(packed_out)
    prec = 1e-5  # torch's dtype2prec_DONTUSE[torch.float]
    assert_equal(packed_hidden, seq_hidden, atol=prec, rtol=0)
    assert_equal(unpacked, seq_out, atol=prec, rtol=0)
    assert_equal(unpacked_len, torch.tensor(lengths), atol=prec, rtol=0)

    seq_out.sum().backward()
    grad_x = x.grad.clone()
    x.grad.zero_()
    unpacked.sum().backward()
    assert_equal(x.grad, grad_x, atol=prec, rtol=0)
    for p1, p2 in zip(lstm.parameters(), lstm2.parameters(), strict=True):
        assert_equal(p1.grad, p2.grad, atol=2e-4, rtol=0)  # torch's float32 bound


def test_variable_sequence():
    """float32 on CPU, as torch runs it there (fp16/fp64 are CUDA-only in torch)."""
    torch.manual_seed(0)
    cases = [
        (True, [5]),
        (False, [5]),
        (True, [10, 10, 6, 2, 2, 1, 1]),
        (False, [10, 10, 6, 2, 2, 1, 1]),
        (False, [2, 1, 3, 2, 10, 5, 3]),
    ]
    for (enforce_sorted, lengths), default_hiddens, proj_size in itertools.product(
        cases, (True, False), (0, 2)
    ):
        _check_lengths(lengths, enforce_sorted, default_hiddens, proj_size)


def test_rnn_retain_variables():
    """float64 on CPU, as torch runs it there: backward through a retained graph, five times,
    gives the same gradients each time."""
    for mode in (nn.LSTM, nn.GRU, nn.RNN):
        rnn = twin_class(mode)(10, 20, num_layers=2).double()
        x = torch.randn(5, 6, 10, dtype=torch.double, requires_grad=True)
        output = rnn(x)
        output[0].sum().backward(retain_graph=True)
        grads = [x.grad.clone()] + [p.grad.clone() for p in rnn.parameters()]
        for _ in range(4):
            rnn.zero_grad()
            x.grad.zero_()
            output[0].sum().backward(retain_graph=True)
            assert_equal([x.grad] + [p.grad for p in rnn.parameters()], grads)


def _gradcheck_rnn(mod, inp) -> None:
    """torch's _test_rnn_mod: gradcheck and gradgradcheck of every output. Its second half
    (cuDNN refuses double backward with a clear message) is CUDA-only and does not apply."""

    def flat_out(x):
        out, state = mod(x)
        return (out, *as_tuple(state))

    gradcheck(flat_out, inp, check_batched_grad=False)
    gradgradcheck(flat_out, inp, check_batched_grad=False)


def _grad_and_gradgrad(mode) -> None:
    inp = torch.rand(1, 3, 4, dtype=torch.float64, requires_grad=True)
    for bias in (True, False):
        _gradcheck_rnn(twin_class(mode)(4, 4, bias=bias).double(), inp)


def test_LSTM_grad_and_gradgrad():
    _grad_and_gradgrad(nn.LSTM)


def test_GRU_grad_and_gradgrad():
    _grad_and_gradgrad(nn.GRU)


# --- empty and wrong inputs ----------------------------------------------------------------


def test_RNN_input_size_zero():
    for mode in MODES:
        rnn = twin_class(mode)(input_size=3, hidden_size=4)
        outs = rnn(torch.zeros((5, 0, 3)))
        assert outs[0].shape == torch.Size([5, 0, 4])
        outs[0].sum().backward()  # no hard error


def test_error_RNN_seq_len_zero():
    """torch runs this only where cuDNN is (its loop covers the CPU too): ported, the CPU."""
    for mode, bidirectional in itertools.product(MODES, (True, False)):
        rnn = twin_class(mode)(5, 6, bidirectional=bidirectional)
        message = "Expected sequence length to be larger than 0 in RNN"
        assert_raises(RuntimeError, rnn, torch.ones(0, 10, 5), match=message)


def _with_size(shape: tuple, dim: int, size: int) -> tuple:
    return (*shape[:dim], size, *shape[dim + 1 :])


BAD = 7  # prime: no size divides it


def _wrong_shapes(good_input: tuple, good_hidden: tuple) -> list[tuple[tuple, tuple]]:
    """torch's cases: wrong input batch, hidden batch, input size, hidden size, num layers."""
    return [
        (_with_size(good_input, 1, BAD), good_hidden),
        (good_input, _with_size(good_hidden, 1, BAD)),
        (_with_size(good_input, 2, BAD), good_hidden),
        (good_input, _with_size(good_hidden, 2, BAD)),
        (good_input, _with_size(good_hidden, 0, BAD)),
    ]


def test_rnn_args_check():
    good_input, good_hidden = (6, 4, 3), (2, 4, 5)
    for mode in MODES:
        for input_shape, hidden_shape in _wrong_shapes(good_input, good_hidden):
            x, hidden = torch.randn(input_shape), torch.randn(hidden_shape)
            if mode is not nn.LSTM:
                states = [hidden]
            elif hidden_shape == good_hidden:
                states = [(hidden, hidden)]
            else:
                good = torch.randn(good_hidden)
                states = [(hidden, good), (good, hidden)]
            for state in states:
                model = twin_class(mode)(3, 5, 2)
                assert_raises(RuntimeError, model, x, state)


def test_projections_lstm_args_check():
    good_input, good_h, good_c = (6, 4, 3), (2, 4, 2), (2, 4, 5)
    cases = [
        (_with_size(good_input, 1, BAD), good_h, good_c),
        (good_input, _with_size(good_h, 1, BAD), _with_size(good_c, 1, BAD)),
        (_with_size(good_input, 2, BAD), good_h, good_c),
        (good_input, _with_size(good_h, 2, BAD), _with_size(good_c, 2, BAD)),
        (good_input, _with_size(good_h, 0, BAD), _with_size(good_c, 0, BAD)),
        (good_input, _with_size(good_h, 0, 5), good_c),  # proj size = hidden size
        (good_input, _with_size(good_h, 0, BAD), good_c),
        (good_input, good_h, _with_size(good_c, 0, BAD)),
    ]
    for input_shape, h_shape, c_shape in cases:
        model = twin_class(nn.LSTM)(3, 5, 2, proj_size=2)
        state = (torch.randn(h_shape), torch.randn(c_shape))
        assert_raises(RuntimeError, model, torch.randn(input_shape), state)


def test_projections_errors_on_gru_and_rnn():
    for mode in (nn.RNN, nn.GRU):
        message = "proj_size argument is only supported for LSTM, not RNN or GRU"
        assert_raises(ValueError, twin_class(mode), 30, 20, 2, match=message, proj_size=10)


def test_cudnn_forward_exception():
    """Runs on the CPU in torch too, whatever its name says."""
    rnns = [
        (nn.LSTM, {}, (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))),
        (nn.LSTM, {"proj_size": 10}, (torch.zeros(1, 2, 19), torch.zeros(1, 2, 19))),
        (nn.GRU, {}, torch.zeros(1, 2, 19)),
        (nn.RNN, {}, torch.zeros(1, 2, 19)),
    ]
    x_wrong, x_right = torch.randn(2, 3, 3), torch.randn(2, 3, 10)
    for mode, kwargs, hidden in rnns:
        rnn = twin_class(mode)(10, 20, batch_first=True, **kwargs)
        assert_raises(RuntimeError, rnn, x_right, hidden, match="Expected hidden.*size.*got")
        message = re.escape("input.size(-1) must be equal to input_size")
        assert_raises(RuntimeError, rnn, x_wrong, match=message)


# --- the ports fail on twins broken on purpose ---------------------------------------------


class NoDropoutRNN(nn.RNN):
    """Broken on purpose: never drops (dropout read as 0 at every call)."""

    def forward(self, input, hx=None):
        p, self.dropout = self.dropout, 0.0
        try:
            return super().forward(input, hx)
        finally:
            self.dropout = p


def _break(monkeypatch, make) -> None:
    """Let twin_class hand out make(torch_cls) in this module's tests."""
    monkeypatch.setattr(sys.modules[__name__], "twin_class", make)


@pytest.mark.parametrize(
    "broken",
    [{"shift": 1e-3}, {"state_shift": 1e-3}, {"grad_scale": 1.01}],
    ids=["output+1e-3", "states+1e-3", "grads*1.01"],
)
def test_cpu_vs_twin_fails_with_a_broken_twin(monkeypatch, broken):
    _break(monkeypatch, lambda cls: broken_twin(cls, **broken))
    with pytest.raises(AssertionError):
        test_RNN_cpu_vs_cudnn_no_dropout()


@pytest.mark.parametrize(
    "port",
    [test_rnn_args_check, test_projections_lstm_args_check, test_error_RNN_seq_len_zero],
)
def test_error_ports_fail_on_another_exception_type(monkeypatch, port):
    _break(monkeypatch, lambda cls: broken_twin(cls, errors_as=ValueError))
    with pytest.raises(AssertionError, match="not RuntimeError"):
        port()


def test_forward_exception_port_fails_on_another_message(monkeypatch):
    class Reworded(nn.LSTM):
        def forward(self, input, hx=None):
            try:
                return super().forward(input, hx)
            except RuntimeError as e:
                raise RuntimeError("bad shapes") from e

    _break(monkeypatch, lambda cls: Reworded if cls is nn.LSTM else cls)
    with pytest.raises(AssertionError, match="!~"):
        test_cudnn_forward_exception()


@pytest.mark.parametrize(
    "port", [test_RNN_dropout, test_RNN_dropout_state, test_RNN_change_dropout]
)
def test_dropout_ports_fail_on_a_twin_that_never_drops(monkeypatch, port):
    _break(monkeypatch, lambda cls: NoDropoutRNN)
    with pytest.raises(AssertionError):
        port()


def test_variable_sequence_fails_when_packed_and_padded_differ(monkeypatch):
    """A twin off by 1e-3 on packed input only (what a packed-path bug looks like)."""

    class PackedOff(nn.LSTM):
        def forward(self, input, hx=None):
            out, state = super().forward(input, hx)
            if isinstance(out, rnn_utils.PackedSequence):
                out = rnn_utils.PackedSequence(
                    out.data + 1e-3, out.batch_sizes, out.sorted_indices, out.unsorted_indices
                )
            return out, state

    _break(monkeypatch, lambda cls: PackedOff)
    with pytest.raises(AssertionError):
        test_variable_sequence()


def test_gradcheck_port_fails_on_a_wrong_gradient(monkeypatch):
    _break(monkeypatch, lambda cls: broken_twin(cls, grad_scale=1.01))
    with pytest.raises(GradcheckError):
        test_LSTM_grad_and_gradgrad()
