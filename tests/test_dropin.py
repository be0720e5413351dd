"""The scratch twins as drop-ins for nn.RNN / nn.LSTM / nn.GRU: one test per finding of
issue 14 (each failed on the code before the twins), through ``rnnsuite.build``."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import rnnsuite

TORCH = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _pair(arch="lstm", dtype=torch.float32, **kw):
    """(torch built-in, scratch twin) with the built-in's weights."""
    kw = dict(input_size=3, hidden_size=4, **kw)
    torch.manual_seed(0)
    ref = TORCH[arch](**kw).to(dtype)
    twin = rnnsuite.build(arch, "scratch", **kw).to(dtype)
    return ref, rnnsuite.copy_weights(ref, twin)


def _out(net, *args):
    return net(*args)[0]


# 1. no cache may answer from weights other than the current ones
@pytest.mark.parametrize("arch", list(TORCH))
@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_inference_sees_weights_edited_through_data(arch, mode):
    ref, twin = _pair(arch)
    x = torch.randn(5, 2, 3)
    with mode():
        twin(x)  # whatever a first call keeps
    for net in (ref, twin):
        for p in net.parameters():
            p.data.mul_(0.5)
    with mode():
        torch.testing.assert_close(_out(twin, x), _out(ref, x))


# 2. state_dict keys are torch's: checkpoints load strictly, both ways
@pytest.mark.parametrize("arch", list(TORCH))
def test_state_dict_loads_strictly_both_ways(arch):
    kw = dict(num_layers=2, bidirectional=True)
    ref, twin = _pair(arch, **kw)
    assert list(twin.state_dict()) == list(ref.state_dict())
    fresh = rnnsuite.build(arch, "scratch", input_size=3, hidden_size=4, **kw)
    fresh.load_state_dict(ref.state_dict(), strict=True)
    back = TORCH[arch](3, 4, **kw)
    back.load_state_dict(fresh.state_dict(), strict=True)
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(_out(fresh, x), _out(ref, x))
    torch.testing.assert_close(_out(back, x), _out(ref, x))


# 3. torch's attributes, real parameters under torch's names
def test_torch_attributes_and_named_parameters():
    ref, twin = _pair("lstm", num_layers=2, bidirectional=True)
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert twin._flat_weights_names == ref._flat_weights_names
    assert twin.all_weights[1][0] is twin.weight_ih_l0_reverse
    assert (twin.mode, twin.proj_size, twin.num_layers) == ("LSTM", 0, 2)
    twin.flatten_parameters()
    assert isinstance(twin.bias_hh_l1_reverse, nn.Parameter)


def test_forget_bias_through_the_torch_name_changes_the_output():
    ref, twin = _pair("lstm")
    x = torch.randn(5, 2, 3)
    with torch.no_grad():
        for net in (ref, twin):
            net.bias_ih_l0[4:8] = 3.0
    torch.testing.assert_close(_out(twin, x), _out(ref, x))


def test_weight_norm_by_name_matches_torch():
    ref, twin = _pair("lstm")
    ref, twin = (weight_norm(m, name="weight_hh_l0") for m in (ref, twin))
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(_out(twin, x), _out(ref, x))
    _out(twin, x).sum().backward()
    g = twin.parametrizations.weight_hh_l0.original0.grad
    _out(ref, x).sum().backward()
    torch.testing.assert_close(g, ref.parametrizations.weight_hh_l0.original0.grad)


def test_a_copy_computes_with_its_own_weights():
    """The cells read their module's parameters: a deepcopy's cells read the copy's."""
    ref, twin = _pair("lstm", num_layers=2)
    x = torch.randn(5, 2, 3)
    buf = io.BytesIO()
    torch.save(twin, buf)
    buf.seek(0)
    for other in (copy.deepcopy(twin), torch.load(buf, weights_only=False)):
        with torch.no_grad():
            for p in other.parameters():
                p.mul_(0.5)
        torch.testing.assert_close(_out(twin, x), _out(ref, x))  # the original is untouched
        half = copy.deepcopy(ref)
        with torch.no_grad():
            for p in half.parameters():
                p.mul_(0.5)
        torch.testing.assert_close(_out(other, x), _out(half, x))


# 4. torch.func: functional_call uses the given params; grad and vjp go through
@pytest.mark.parametrize("arch", list(TORCH))
def test_functional_call_grad_and_vjp_use_the_given_params(arch):
    ref, twin = _pair(arch)
    x = torch.randn(5, 2, 3)
    params = {k: torch.randn_like(v) for k, v in ref.named_parameters()}
    call = torch.func.functional_call
    torch.testing.assert_close(_out(twin, x), _out(ref, x))
    torch.testing.assert_close(call(twin, params, (x,))[0], call(ref, params, (x,))[0])

    def loss(p, net):
        return call(net, p, (x,))[0].pow(2).sum()

    got, want = torch.func.grad(loss)(params, twin), torch.func.grad(loss)(params, ref)
    for k in want:
        torch.testing.assert_close(got[k], want[k])
    _, vjp_twin = torch.func.vjp(lambda xx: call(twin, params, (xx,))[0], x)
    _, vjp_ref = torch.func.vjp(lambda xx: call(ref, params, (xx,))[0], x)
    g = torch.randn(5, 2, 4)
    torch.testing.assert_close(vjp_twin(g)[0], vjp_ref(g)[0])


# 5. second derivatives
@pytest.mark.parametrize("arch", list(TORCH))
def test_gradgradcheck_float64(arch):
    _, twin = _pair(arch, dtype=torch.float64, num_layers=2, bidirectional=True)
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    state = (h0, torch.randn_like(h0)) if arch == "lstm" else h0

    def f(x, h0):
        s = (h0, state[1]) if arch == "lstm" else h0
        out, _ = twin(x, s)
        return out

    assert torch.autograd.gradgradcheck(f, (x, h0))


@pytest.mark.parametrize("arch", list(TORCH))
def test_gradient_penalty_matches_torch(arch):
    ref, twin = _pair(arch, dtype=torch.float64)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    grads = []
    for net in (ref, twin):
        (gx,) = torch.autograd.grad(_out(net, x).sum(), x, create_graph=True)
        gx.norm().backward()
        grads.append([p.grad for p in net.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def test_scratch_only_cells_second_derivatives_exact_or_refused():
    """gru_cho's are exact; lstm_peephole's fast path refuses create_graph (it gave wrong
    ones before) and is exact inside rnnsuite.plain_ops()."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    kw = dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    cho = rnnsuite.build("gru_cho", "scratch", **kw).double()
    assert torch.autograd.gradgradcheck(lambda x: cho(x)[0], (x,))
    peep = rnnsuite.build("lstm_peephole", "scratch", **kw).double()
    with pytest.raises(RuntimeError, match=r"rnnsuite\.plain_ops\(\)"):
        torch.autograd.grad(peep(x)[0].sum(), x, create_graph=True)
    with rnnsuite.plain_ops():
        assert torch.autograd.gradgradcheck(lambda x: peep(x)[0], (x,))


# 6. the constructor: torch's arguments and exception types
def test_constructor_takes_proj_size_device_dtype_and_dropout_one():
    m = rnnsuite.build("lstm", "scratch", input_size=3, hidden_size=4, proj_size=0)
    assert m.proj_size == 0
    m = rnnsuite.build(
        "lstm", "scratch", input_size=3, hidden_size=4, device="cpu", dtype=torch.float64
    )
    assert m.weight_ih_l0.dtype == torch.float64
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        m = rnnsuite.build("gru", "scratch", input_size=3, hidden_size=4, dropout=1.0)
    assert m.dropout == 1.0


@pytest.mark.parametrize(
    "bad",
    [
        dict(batch_first="False"),
        dict(bidirectional="False"),
        dict(bias=1),
        dict(hidden_size=4.0),
        dict(input_size="3"),
        dict(dropout=1.5),
        dict(dropout=True),
        dict(hidden_size=0),
    ],
    ids=str,
)
def test_bad_arguments_raise_torchs_exception_type(bad):
    """Whatever torch does with the argument — raise (which type) or take it — the twin
    does too (torch 2.13 takes bidirectional="False" as it is, without a check)."""
    kw = {"input_size": 3, "hidden_size": 4, "num_layers": 2} | bad

    def outcome(make):
        try:
            make(**kw)
        except Exception as err:  # the type is what is compared
            return type(err)
        return None

    want = outcome(nn.LSTM)
    assert outcome(lambda **k: rnnsuite.build("lstm", "scratch", **k)) is want
    assert outcome(rnnsuite.LSTM) is want


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_proj_size_matches_torch(packed):
    ref, twin = _pair("lstm", num_layers=2, bidirectional=True, proj_size=2)
    assert twin.weight_hh_l1_reverse.shape == (16, 2) and twin.weight_hr_l0.shape == (2, 4)
    x = torch.randn(6, 3, 3, requires_grad=True)
    h0, c0 = torch.randn(4, 3, 2), torch.randn(4, 3, 4)
    results = []
    for net in (ref, twin):
        pack = nn.utils.rnn.pack_padded_sequence
        arg = pack(x, [6, 2, 4], enforce_sorted=False) if packed else x
        out, (h, c) = net(arg, (h0, c0))
        data = out.data if packed else out
        (data.sum() + h.pow(2).sum() + c.sum()).backward()
        results.append([data, h, c, x.grad.clone(), *(p.grad for p in net.parameters())])
        x.grad = None
        with torch.no_grad():
            results[-1].append(net(arg, (h0, c0))[0].data if packed else net(x, (h0, c0))[0])
    for got, want in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(got, want)


# 7. errors and edge cases as torch has them
@pytest.mark.parametrize("arch", list(TORCH))
def test_empty_batch_gives_empty_output(arch):
    ref, twin = _pair(arch, num_layers=2)
    x = torch.randn(5, 0, 3)
    out, state = twin(x)
    want_out, want_state = ref(x)
    assert out.shape == want_out.shape == (5, 0, 4)
    h, h_ref = (state[0], want_state[0]) if arch == "lstm" else (state, want_state)
    assert h.shape == h_ref.shape == (2, 0, 4)


@pytest.mark.parametrize("arch", list(TORCH))
def test_zero_length_and_wrong_state_raise_runtime_error(arch):
    ref, twin = _pair(arch)
    for net in (ref, twin):
        with pytest.raises(RuntimeError):
            net(torch.randn(0, 2, 3))
        h = torch.zeros(1, 3, 4)  # batch 3 for an input of batch 2
        with pytest.raises(RuntimeError):
            net(torch.randn(5, 2, 3), (h, h) if arch == "lstm" else h)


@pytest.mark.parametrize("arch", list(TORCH))
def test_jit_trace_and_export(arch):
    ref, twin = _pair(arch)
    x = torch.randn(5, 2, 3)
    traced = torch.jit.trace(twin, (x,), check_trace=False)
    torch.testing.assert_close(traced(x)[0], _out(ref, x))
    exported = torch.export.export(twin, (x,)).module()
    torch.testing.assert_close(exported(x)[0], _out(ref, x))


def test_repr_is_torchs():
    ref, twin = _pair("lstm", num_layers=2, bidirectional=True)
    assert repr(twin) == repr(ref) == "LSTM(3, 4, num_layers=2, bidirectional=True)"


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_seeded_peephole_lstm_draws_the_weights_it_drew_before_the_twins(bias, bidirectional):
    """Same seed, same weights: the committed runs (the Element-Research peephole recipe, the
    gate's deterministic cells) were made when each layer-direction's cell drew its own
    parameters — U(±1/√H) over (weight_ih, weight_hh[, bias_ih, bias_hh]), then over all of
    them again with the three peepholes — layer by layer, forward before reverse."""
    H, layers = 5, 2
    torch.manual_seed(3)
    m = rnnsuite.build(
        "lstm_peephole", input_size=3, hidden_size=H, num_layers=layers,
        bidirectional=bidirectional, bias=bias,
    )  # fmt: skip
    torch.manual_seed(3)
    bound = H**-0.5
    dirs = 2 if bidirectional else 1
    for k in range(layers):
        size_in = 3 if k == 0 else H * dirs
        for sfx in ("", "_reverse")[:dirs]:
            shapes = [("weight_ih", (4 * H, size_in)), ("weight_hh", (4 * H, H))]
            shapes += [("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))] if bias else []
            peep = [(n, (H,)) for n in ("weight_ci", "weight_cf", "weight_co")]
            for _ in shapes:  # the cell's first draw, before its peepholes existed
                torch.empty(_[1]).uniform_(-bound, bound)
            for name, shape in shapes + peep:
                want = torch.empty(shape).uniform_(-bound, bound)
                assert torch.equal(getattr(m, f"{name}_l{k}{sfx}").detach(), want), name
