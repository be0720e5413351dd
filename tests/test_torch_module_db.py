"""PyTorch's own module tests for nn.RNN, nn.LSTM and nn.GRU, run on the drop-in twins.

The samples are torch's: the ModuleInfo entries of torch.testing._internal.common_modules'
module_db (module_inputs_func, module_error_inputs_func). For every sample, in float32 and
float64, in train and in eval mode, the built-in and its twin (helpers.twin_class) are both
built from the sample's constructor_input, the twin takes the built-in's weights through
load_state_dict(strict=True), and forward_input goes through both. Compared: the output and
the final states; then, after one backward of the same fixed random loss, the gradient of
every parameter by name and of every input tensor (padded input, packed data, initial states).
float64 to 1e-10; float32 to torch.testing.assert_close's defaults.

What torch 2.13's samples hold, and what this file adds ("extra" below):
- RNN (relu and tanh) and GRU: every bias x batch_first x bidirectional, 2 layers, unbatched
  input without and with an initial state; packed input (two batches, no state) only when
  asked with with_packed_sequence=True, which this file does.
- LSTM: every bias x batch_first x bidirectional x proj_size in (0, 2), 2 layers, unbatched
  without and with a state. No packed samples: the extra ones build packed LSTM inputs the
  way torch builds them for RNN/GRU (common_modules.make_packed_sequence, same shapes).
- No batched padded input and no dropout: the extra ones add, for every constructor above,
  a batched (T, B, I) / (B, T, I) input with an initial state and a packed input of unsorted
  lengths (enforce_sorted=False) with a state; and one dropout=0.5 sample per module.
- Dropout samples run in eval mode only. In train mode the twin draws its masks from the RNG
  in its own order, so its values cannot match torch's and a comparison would be dishonest;
  train-mode dropout is checked by what it must do in test_torch_rnn_port.py (test_RNN_dropout
  and the others ported from torch).

Two more on the same samples: second derivatives (a gradient penalty's gradients, float64,
train mode) equal the built-in's, since the issue asks create_graph=True to be right; and
torch's generic TestModule checks (test/test_modules.py: forward against reference_fn,
factory kwargs, repr, pickle, non-contiguous inputs), on torch's own samples.

Every error input of module_error_inputs_func must raise on the twin an exception of the type
torch's entry names (isinstance, as torch's own test_errors checks): test_error_input_type.
The entry's error_regex is checked too, in its own test (test_error_input_message), so that a
right type with another message is told apart from a wrong type.

The harness proves itself twice: RNNSUITE_TWIN_SELFCHECK=torch (see helpers.SELFCHECK_ENV)
runs the whole file with torch's classes as the twins, and must pass; and the tests at the
end give it twins broken on purpose (output off by 1e-3, states off, gradients scaled, second
derivatives off, errors of another type, and one break per generic check) and demand that it
fails: on every sample, for the parity and second-order checks.
"""

from __future__ import annotations

import functools
import io
import itertools

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence
from torch.testing._internal.common_modules import (
    FunctionInput,
    ModuleErrorEnum,
    ModuleInput,
    make_packed_sequence,
    module_db,
)

from helpers import TWINS, as_tuple, assert_raises, broken_twin, twin_class

INFOS = {info.module_cls: info for info in module_db if info.module_cls in TWINS}
DTYPES = (torch.float32, torch.float64)
F64_TOL = 1e-10
# Seed of the built-in's initial weights (the twin takes them). Chosen so that no sample's
# output is all zero (a relu RNN of hidden size 2 can come out dead, and a dead output
# proves little); check_sample asserts it stays so.
WEIGHT_SEED = 4


# --- samples -------------------------------------------------------------------------------


def _leaf(shape, dtype) -> Tensor:
    return torch.randn(shape, dtype=dtype, requires_grad=True)


def _state(cls, kw: dict, batch: int, dtype):
    """An initial state for a batch of the constructor kw (h, or (h, c) for the LSTM)."""
    layers = kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1)
    hidden = kw["hidden_size"]
    h = _leaf((layers, batch, kw.get("proj_size") or hidden), dtype)
    return (h, _leaf((layers, batch, hidden), dtype)) if cls is nn.LSTM else h


def _batched(cls, kw: dict, dtype) -> ModuleInput:
    shape = (2, 3, kw["input_size"]) if kw.get("batch_first") else (3, 2, kw["input_size"])
    forward = FunctionInput(_leaf(shape, dtype), _state(cls, kw, 2, dtype))
    return ModuleInput(FunctionInput(**kw), forward, desc="batched+state")


def _packed(kw: dict, steps: int, lengths: list[int], dtype, state=None, **pack) -> ModuleInput:
    """Packed input built as common_modules builds it: time-major padded data, packed."""
    padded = _leaf((steps, len(lengths), kw["input_size"]), dtype)
    if pack:  # unsorted lengths: pack_padded_sequence sorts, and records the order
        padded.requires_grad_(False)
        seq = pack_padded_sequence(padded, torch.tensor(lengths), **pack)
        seq.data.requires_grad_(True)
    else:
        seq = make_packed_sequence(padded, torch.tensor(lengths))
    args = (seq,) if state is None else (seq, state)
    return ModuleInput(FunctionInput(**kw), FunctionInput(*args), desc="packed")


def _constructors(db: list[ModuleInput]) -> list[dict]:
    """The distinct constructor kwargs of torch's samples, in their order."""
    seen: dict[tuple, dict] = {}
    for s in db:
        kw = s.constructor_input.kwargs
        seen.setdefault(tuple(sorted(kw.items())), kw)
    return list(seen.values())


def _extra(cls, db: list[ModuleInput], dtype, training: bool) -> list[ModuleInput]:
    """What torch's samples lack (see the module docstring)."""
    extra = []
    for kw in _constructors(db):
        if cls is nn.LSTM:  # torch's RNN/GRU packed samples, for the LSTM
            extra += [_packed(kw, 5, [5, 3], dtype), _packed(kw, 5, [5, 3, 3, 2, 2], dtype)]
        extra.append(_batched(cls, kw, dtype))
        state = _state(cls, kw, 3, dtype)
        extra.append(_packed(kw, 5, [2, 5, 3], dtype, state, enforce_sorted=False))
    if not training:  # dropout: eval mode only, see the module docstring
        kw = {"input_size": 2, "hidden_size": 3, "num_layers": 2, "dropout": 0.5}
        extra.append(_batched(cls, kw, dtype))
    return extra


@functools.cache
def db_samples(cls, dtype, training: bool, packed: bool = True) -> tuple[ModuleInput, ...]:
    """torch's own samples (with its packed ones unless packed=False)."""
    info = INFOS[cls]
    torch.manual_seed(0)
    kwargs = {"requires_grad": True, "training": training, "with_packed_sequence": packed}
    return tuple(info.module_inputs_func(info, device="cpu", dtype=dtype, **kwargs))


@functools.cache
def samples(cls, dtype, training: bool) -> tuple[ModuleInput, ...]:
    """torch's samples and the extra ones: what the parity harness runs."""
    db = list(db_samples(cls, dtype, training))
    torch.manual_seed(1)
    return tuple(db + _extra(cls, db, dtype, training))


def torch_samples(cls, dtype, training: bool) -> tuple[ModuleInput, ...]:
    """The samples TestModule gets: torch's own, as it asks for them (no packed ones)."""
    return db_samples(cls, dtype, training, packed=False)


def tags(sample: ModuleInput) -> set[str]:
    """What a sample exercises: its input kind, initial state, and constructor options."""
    args = sample.forward_input.args
    x = args[0]
    kind = "packed" if isinstance(x, PackedSequence) else "unbatched" if x.dim() == 2 else "batched"
    kw = sample.constructor_input.kwargs
    out = {kind, "state" if len(args) > 1 else "no-state"}
    out |= {k for k in ("bias", "batch_first", "bidirectional") if kw.get(k, k == "bias")}
    out |= {k for k in ("proj_size", "dropout") if kw.get(k)}
    if kw.get("nonlinearity"):
        out.add(kw["nonlinearity"])
    return out


def _cases():
    for cls in TWINS:
        for dtype in DTYPES:
            for training in (True, False):
                for i, s in enumerate(samples(cls, dtype, training)):
                    mode = "train" if training else "eval"
                    label = "-".join(sorted(tags(s)))
                    name = f"{cls.__name__}-{str(dtype)[6:]}-{mode}-{i}-{label}"
                    yield pytest.param(cls, dtype, training, i, id=name)


# --- one sample through the built-in and the twin ------------------------------------------


def _fresh(x):
    """Fresh leaves with the same values (the sample's own tensors stay untouched)."""
    if isinstance(x, PackedSequence):
        return PackedSequence(_fresh(x.data), x.batch_sizes, x.sorted_indices, x.unsorted_indices)
    if isinstance(x, Tensor):
        return x.detach().clone().requires_grad_(x.requires_grad)
    if isinstance(x, tuple):
        return tuple(_fresh(t) for t in x)
    return x


def _leaves(x) -> list[Tensor]:
    if isinstance(x, PackedSequence):
        return [x.data]
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, tuple):
        return [t for item in x for t in _leaves(item)]
    return []


def _close(got, want, dtype, what: str) -> None:
    tol = {} if dtype == torch.float32 else {"rtol": F64_TOL, "atol": F64_TOL}
    torch.testing.assert_close(got, want, **tol, msg=lambda m: f"{what}: {m}")


def _build(cls, sample: ModuleInput, dtype, training: bool) -> nn.Module:
    c = sample.constructor_input
    return cls(*c.args, **c.kwargs).to(dtype).train(training)


def _forward(module: nn.Module, sample: ModuleInput):
    args = _fresh(sample.forward_input.args)
    out, state = module(*args)
    return args, out, state


def _data(out) -> Tensor:
    return out.data if isinstance(out, PackedSequence) else out


def _loss(out, state) -> Tensor:
    """The same fixed random loss on both sides: weighted sums of output and states."""
    gen = torch.Generator().manual_seed(123)
    parts = [_data(out), *as_tuple(state)]
    return sum((t * torch.randn(t.shape, generator=gen, dtype=t.dtype)).sum() for t in parts)


def _backward(out, state) -> None:
    _loss(out, state).backward()


def _pair(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool):
    """The built-in with its initial weights, and the twin with the built-in's."""
    torch.manual_seed(WEIGHT_SEED)
    ref = _build(ref_cls, sample, dtype, training)
    twin = _build(twin_cls, sample, dtype, training)
    twin.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(twin.state_dict(), strict=True)  # and back: same keys and shapes
    return ref, twin


def check_sample(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """The twin equals the built-in on one sample: forward, then every gradient."""
    ref, twin = _pair(ref_cls, twin_cls, sample, dtype, training)

    ref_args, ref_out, ref_state = _forward(ref, sample)
    twin_args, twin_out, twin_state = _forward(twin, sample)
    assert _data(ref_out).count_nonzero() > 0, "the sample's output is dead: change WEIGHT_SEED"
    assert type(twin_out) is type(ref_out), f"output is a {type(twin_out).__name__}"
    _close(twin_out, ref_out, dtype, "output")
    _close(as_tuple(twin_state), as_tuple(ref_state), dtype, "final state")

    _backward(ref_out, ref_state)
    _backward(twin_out, twin_state)
    ref_grads = {n: p.grad for n, p in ref.named_parameters()}
    _close({n: p.grad for n, p in twin.named_parameters()}, ref_grads, dtype, "parameter grads")
    want = [t.grad for t in _leaves(ref_args)]
    _close([t.grad for t in _leaves(twin_args)], want, dtype, "input grads")


@pytest.mark.parametrize(("cls", "dtype", "training", "index"), list(_cases()))
def test_sample_matches_builtin(cls, dtype, training, index):
    check_sample(cls, twin_class(cls), samples(cls, dtype, training)[index], dtype, training)


def _penalty_backward(module: nn.Module, sample: ModuleInput):
    """A gradient penalty: the loss's gradient (create_graph=True) by parameters and inputs,
    its squared norm, and that norm's own gradient; what second derivatives give."""
    args, out, state = _forward(module, sample)
    named = dict(module.named_parameters())
    wrt = [*named.values(), *_leaves(args)]
    grads = torch.autograd.grad(_loss(out, state), wrt, create_graph=True, allow_unused=True)
    penalty = sum((g * g).sum() for g in grads if g is not None)
    penalty.backward()
    return penalty.detach(), {n: p.grad for n, p in named.items()}, [t.grad for t in _leaves(args)]


def check_second_order(ref_cls, twin_cls, sample: ModuleInput) -> None:
    """Second derivatives (float64, train): the twin's gradient penalty and its gradients by
    parameter and by input equal the built-in's."""
    ref, twin = _pair(ref_cls, twin_cls, sample, torch.float64, True)
    want, got = _penalty_backward(ref, sample), _penalty_backward(twin, sample)
    for what, a, b in zip(("penalty", "parameter grads", "input grads"), got, want, strict=True):
        _close(a, b, torch.float64, f"second order, {what}")


def _second_order_cases():
    for cls in TWINS:
        for i, s in enumerate(samples(cls, torch.float64, True)):
            label = "-".join(sorted(tags(s)))
            yield pytest.param(cls, i, id=f"{cls.__name__}-{i}-{label}")


@pytest.mark.parametrize(("cls", "index"), list(_second_order_cases()))
def test_sample_second_derivatives_match_builtin(cls, index):
    """Not in the acceptance's module_db clause, but in the issue: create_graph=True must give
    correct second derivatives, on every option the samples cover (packed, proj_size, ...)."""
    check_second_order(cls, twin_class(cls), samples(cls, torch.float64, True)[index])


def test_samples_cover_what_the_acceptance_names():
    """proj_size, unbatched, batched and packed inputs, with and without a state: if torch's
    module_db ever drops some of them, this says so instead of the harness thinning out."""
    for cls in TWINS:
        for training in (True, False):
            seen = set().union(*(tags(s) for s in samples(cls, torch.float64, training)))
            need = {"unbatched", "batched", "packed", "state", "no-state", "bias"}
            need |= {"batch_first", "bidirectional"} | ({"proj_size"} if cls is nn.LSTM else set())
            need |= {"relu", "tanh"} if cls is nn.RNN else set()
            need |= set() if training else {"dropout"}
            assert need <= seen, f"{cls.__name__}: no sample with {need - seen}"


# --- torch's generic module checks (TestModule in torch's test/test_modules.py) -----------
# Run on the twin over torch's own samples as TestModule asks for them (no packed ones, no
# extras). Not ported: test_grad / test_gradgrad (gradcheck over inputs and parameters), as
# check_sample and check_second_order already hold first and second derivatives to the
# built-in's at 1e-10 on more samples; and the CUDA-only or inapplicable ones
# (cpu_gpu_parity, multiple_device_transfer, memory_format, check_inplace).


def _params_are(module: nn.Module, dtype) -> None:
    for name, t in [*module.named_parameters(), *module.named_buffers()]:
        assert t.device == torch.device("cpu"), f"{name} is on {t.device}"
        assert not t.dtype.is_floating_point or t.dtype == dtype, f"{name} is {t.dtype}"


def check_forward(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """test_forward: the sample's reference_fn (unbatched = batched of one, squeezed) agrees,
    and .float() / .double() leave every parameter in that dtype."""
    module = _build(twin_cls, sample, dtype, training)
    args = _fresh(sample.forward_input.args)
    if sample.reference_fn is not None:
        _close(module(*args), sample.reference_fn(module, *args), dtype, "reference_fn")
    (module.float if dtype == torch.float32 else module.double)()
    module(*args)
    _params_are(module, dtype)


def check_factory_kwargs(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """test_factory_kwargs: device= and dtype= at construction place every parameter."""
    c = sample.constructor_input
    _params_are(twin_cls(*c.args, **c.kwargs, device="cpu", dtype=dtype).train(training), dtype)


def check_repr(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """test_repr asks only that repr and str work; a drop-in's must also read as torch's."""
    twin, ref = (_build(cls, sample, dtype, training) for cls in (twin_cls, ref_cls))
    assert (repr(twin), str(twin)) == (repr(ref), str(ref))


def check_pickle(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """test_pickle: torch.save / torch.load of the module gives the same output."""
    module = _build(twin_cls, sample, dtype, training)
    args = _fresh(sample.forward_input.args)
    buf = io.BytesIO()
    torch.save(module, buf)
    buf.seek(0)
    _close(torch.load(buf, weights_only=False)(*args), module(*args), dtype, "after pickling")


def _non_contiguous(x):
    """Same values, not contiguous (torch's way: every other element of a repeat)."""
    if isinstance(x, Tensor):
        return torch.repeat_interleave(x.detach(), 2, dim=-1)[..., ::2].requires_grad_(True)
    return tuple(_non_contiguous(t) for t in x) if isinstance(x, tuple) else x


def _run_with_grads(module: nn.Module, args):
    module.zero_grad()
    out, state = module(*args)
    _backward(out, state)
    grads = [p.grad for p in module.parameters()]
    return (out, state), [t.grad for t in _leaves(args)], grads


def check_non_contiguous(ref_cls, twin_cls, sample: ModuleInput, dtype, training: bool) -> None:
    """test_non_contiguous_tensors: non-contiguous inputs give the same outputs and gradients
    (torch's atol 1e-4 on input gradients)."""
    module = _build(twin_cls, sample, dtype, training)
    args = _fresh(sample.forward_input.args)
    want = _run_with_grads(module, args)
    got = _run_with_grads(module, _non_contiguous(args))
    _close(got[0], want[0], dtype, "output")
    torch.testing.assert_close(got[1], want[1], atol=1e-4, rtol=0, msg="input grads")
    _close(got[2], want[2], dtype, "parameter grads")


GENERIC = [check_forward, check_factory_kwargs, check_repr, check_pickle, check_non_contiguous]


def _generic_cases():
    for check, cls, dtype, training in itertools.product(GENERIC, TWINS, DTYPES, (True, False)):
        name = f"{check.__name__[6:]}-{cls.__name__}-{str(dtype)[6:]}-{'train' if training else 'eval'}"
        yield pytest.param(check, cls, dtype, training, id=name)


@pytest.mark.parametrize(("check", "cls", "dtype", "training"), list(_generic_cases()))
def test_torch_generic_module_check(check, cls, dtype, training):
    for sample in torch_samples(cls, dtype, training):
        check(cls, twin_class(cls), sample, dtype, training)


class _UnbatchedOff(nn.LSTM):
    def forward(self, input, hx=None):
        out, state = super().forward(input, hx)
        return (out + 1e-3 if input.dim() == 2 else out), state


class _IgnoresDtype(nn.LSTM):
    def __init__(self, *args, dtype=None, device=None, **kwargs):
        super().__init__(*args, **kwargs)


class _OwnRepr(nn.LSTM):
    def extra_repr(self) -> str:
        return super().extra_repr().replace(", ", ",")


class _LoadsOff(nn.LSTM):
    def __setstate__(self, state):
        super().__setstate__(state)
        with torch.no_grad():
            self.weight_ih_l0.add_(1e-3)


class _NonContiguousOff(nn.LSTM):
    def forward(self, input, hx=None):
        out, state = super().forward(input, hx)
        return (out if input.is_contiguous() else out + 1e-3), state


@pytest.mark.parametrize(
    ("check", "twin"),
    [
        (check_forward, _UnbatchedOff),
        (check_factory_kwargs, _IgnoresDtype),
        (check_repr, _OwnRepr),
        (check_pickle, _LoadsOff),
        (check_non_contiguous, _NonContiguousOff),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_generic_checks_fail_on_a_broken_twin(check, twin):
    """Each generic check fails the LSTM twin broken in what it checks (float64, train)."""
    with pytest.raises(AssertionError):
        for sample in torch_samples(nn.LSTM, torch.float64, True):
            check(nn.LSTM, twin, sample, torch.float64, True)


# --- error inputs --------------------------------------------------------------------------


def error_inputs(cls, dtype):
    info = INFOS[cls]
    return info.module_error_inputs_func(
        info, device="cpu", dtype=dtype, requires_grad=False, training=True
    )


def _error_cases():
    for cls in TWINS:
        for dtype in DTYPES:
            for i, e in enumerate(error_inputs(cls, dtype)):
                name = f"{cls.__name__}-{str(dtype)[6:]}-{i}-{e.error_type.__name__}"
                yield pytest.param(cls, dtype, i, id=name)


def _trigger(twin_cls, error_input) -> None:
    sample = error_input.module_error_input
    c = sample.constructor_input
    module = twin_cls(*c.args, **c.kwargs)
    if error_input.error_on == ModuleErrorEnum.FORWARD_ERROR:
        module(*sample.forward_input.args, **sample.forward_input.kwargs)


@pytest.mark.parametrize(("cls", "dtype", "index"), list(_error_cases()))
def test_error_input_type(cls, dtype, index):
    error_input = error_inputs(cls, dtype)[index]
    assert_raises(error_input.error_type, _trigger, twin_class(cls), error_input)


@pytest.mark.parametrize(("cls", "dtype", "index"), list(_error_cases()))
def test_error_input_message(cls, dtype, index):
    e = error_inputs(cls, dtype)[index]
    assert_raises(e.error_type, _trigger, twin_class(cls), e, match=e.error_regex)


# --- the harness fails on twins broken on purpose ------------------------------------------

# Each break is as small as the tolerances can see on every sample: some samples' outputs and
# gradients are ~1e-3 to 1e-5 in size (bias-free LSTMs with projections), where a gradient off
# by a relative 1e-3 sits under float32's absolute 1e-5 (and 1e-8 under float64's 1e-10).
BROKEN = [
    ({"shift": 1e-3}, torch.float32, "output+1e-3-float32", TWINS),
    ({"grad_scale": 1 + 1e-2}, torch.float32, "grads*(1+1e-2)-float32", TWINS),
    ({"grad_scale": 1 + 1e-6}, torch.float64, "grads*(1+1e-6)-float64", TWINS),
    ({"shift": 1e-8}, torch.float64, "output+1e-8-float64", [nn.LSTM]),  # LSTM only: time
    ({"state_shift": 1e-3}, torch.float32, "states+1e-3-float32", [nn.LSTM]),
]
BROKEN_CASES = [
    pytest.param(cls, broken, dtype, id=f"{name}-{cls.__name__}")
    for broken, dtype, name, classes in BROKEN
    for cls in classes
]


@pytest.mark.parametrize(("cls", "broken", "dtype"), BROKEN_CASES)
def test_harness_fails_on_every_sample_with_a_broken_twin(cls, broken, dtype):
    twin = broken_twin(cls, **broken)
    passed = []
    for i, sample in enumerate(samples(cls, dtype, True)):
        try:
            check_sample(cls, twin, sample, dtype, True)
        except AssertionError:
            continue
        passed.append(i)
    assert not passed, f"the harness let a broken twin through on samples {passed}"


@pytest.mark.parametrize("cls", list(TWINS))
def test_second_order_harness_fails_where_first_order_cannot_see(cls):
    """A twin right in value and gradient but wrong in curvature: check_sample passes it and
    check_second_order fails it on every sample."""
    twin = broken_twin(cls, curve=0.5)
    every = samples(cls, torch.float64, True)
    for sample in every[:8]:  # first order blind to it (a few samples: time)
        check_sample(cls, twin, sample, torch.float64, True)
    for sample in every:
        with pytest.raises(AssertionError):
            check_second_order(cls, twin, sample)


@pytest.mark.parametrize("cls", list(TWINS))
def test_error_harness_fails_on_another_exception_type(cls):
    """Every entry names ValueError or TypeError: a twin raising RuntimeError fails each."""
    twin = broken_twin(cls, errors_as=RuntimeError)
    for error_input in error_inputs(cls, torch.float32):
        assert error_input.error_type is not RuntimeError
        with pytest.raises(AssertionError, match="not "):
            assert_raises(error_input.error_type, _trigger, twin, error_input)
