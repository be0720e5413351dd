"""The native kernels (rnnsuite.native): each scratch cell's whole time loop in one call,
the same maths as its torch-ops steps on every path they serve (training forward and
backward, padded, packed, reversed, bidirectional, stacked; inference), for the LSTM, the
GRU and the Elman RNN (tanh and relu), plus how they are switched and how they fail."""

from __future__ import annotations

import itertools
import os
import warnings

import pytest
import torch

import rnnsuite
from helpers import as_tuple, assert_results_close, initial_state, make_input, run_and_backprop
from rnnsuite import native

T, B, I, H = 7, 5, 3, 6
LENGTHS = [5, 7, 1, 3, 7]

needs_kernels = pytest.mark.skipif(
    native.mode() == "0" or native.load() is None,
    reason=f"native kernels not built here ({native.status()['error']}); "
    "nox -s tests sets RNNSUITE_NATIVE=1 so that a failed build fails instead",
)


def test_required_kernels_are_built():
    """Under RNNSUITE_NATIVE=1 (what nox -s tests and CI set) the kernels must be in use."""
    if native.mode() != "1":
        pytest.skip("RNNSUITE_NATIVE is not 1 in this run")
    assert native.status()["active"] is True


#: (registry name, constructor options) of every cell with a native loop
ARCHS = {
    "lstm": ("lstm", {}),
    "gru": ("gru", {}),
    "rnn": ("rnn", {}),
    "rnn_relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm_peephole": ("lstm_peephole", {}),
    "gru_cho": ("gru_cho", {}),
}
#: those with a torch built-in (the inference test compares with it too)
WITH_BUILTIN = ("lstm", "gru", "rnn", "rnn_relu")


def _model(layers=1, bidir=False, arch="lstm"):
    torch.manual_seed(0)
    name, options = ARCHS[arch]
    return rnnsuite.build(
        name,
        "scratch",
        input_size=I,
        hidden_size=H,
        num_layers=layers,
        bidirectional=bidir,
        **options,
    )


def _compare(got, want, tol=2e-6):
    assert_results_close(got, want, tol)


@needs_kernels
@pytest.mark.parametrize(
    "arch,layers,bidir,packed,init",
    list(itertools.product(ARCHS, [1, 2], [False, True], [False, True], [False, True])),
)
def test_training_kernels_equal_torch_ops(arch, layers, bidir, packed, init):
    """Outputs, final states and every gradient, kernels vs the torch ops, float32."""
    model = _model(layers, bidir, arch)
    x = make_input(T, B, I, torch.float32, batch_first=False)
    dirs = layers * (2 if bidir else 1)
    state = initial_state(ARCHS[arch][0], dirs, B, H, torch.float32) if init else None
    lengths = LENGTHS if packed else None
    got = run_and_backprop(model, x, lengths, state, False)
    with native.torch_ops():
        want = run_and_backprop(model, x, lengths, state, False)
    _compare(got, want)


@needs_kernels
@pytest.mark.parametrize(
    "arch,bidir,packed,wants_grad",
    list(itertools.product(ARCHS, [False, True], [False, True], [False, True])),
)
def test_zero_initial_state_shortcuts_keep_every_result(arch, bidir, packed, wants_grad):
    """From a zero h0 the loops skip the first step's product (it is zero), and where no
    gradient of the initial state is wanted they skip the last backward product: outputs,
    states and every gradient asked for are the torch ops' — with a zero initial state that
    does, and one that does not, want its gradient (the shortcut may skip only the second)."""
    model = _model(2, bidir, arch)
    x = make_input(T, B, I, torch.float32, batch_first=False)
    dirs = 2 * (2 if bidir else 1)
    state = tuple(
        torch.zeros_like(s).requires_grad_(wants_grad)
        for s in as_tuple(initial_state(ARCHS[arch][0], dirs, B, H, torch.float32))
    )
    state = state if len(state) == 2 else state[0]
    lengths = LENGTHS if packed else None
    got = run_and_backprop(model, x, lengths, state if wants_grad else None, False)
    with native.torch_ops():
        want = run_and_backprop(model, x, lengths, state if wants_grad else None, False)
    _compare(got, want)
    if wants_grad:
        assert all(g.abs().sum() > 0 for g in got[4])  # the initial state's gradient is there


@pytest.fixture
def threads():
    """torch's thread count, set by the test and restored after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@needs_kernels
@pytest.mark.parametrize(
    "arch,bidir,packed", list(itertools.product(ARCHS, [False, True], [False, True]))
)
def test_rows_dealt_to_threads_give_the_one_thread_results(threads, arch, bidir, packed):
    """With several threads the loops deal the batch's rows out, each thread running every
    step of its rows (a packed batch's by row-steps, its first rows being its longest): the
    results must be those of one thread, and of the torch ops, on every row and step."""
    Tn, Bn = 9, 23  # rows enough for 2 and 3 threads' shares; odd so shares differ in size
    model = _model(2, bidir, arch)
    x = make_input(Tn, Bn, I, torch.float32, batch_first=False)
    lengths = [1 + (7 * k) % Tn for k in range(Bn)] if packed else None
    results = {}
    for n in (1, 2, 3):
        threads(n)
        results[n] = run_and_backprop(model, x, lengths, None, False)
    with native.torch_ops():
        want = run_and_backprop(model, x, lengths, None, False)
    for n in (2, 3):
        _compare(results[n], results[1])
    _compare(results[3], want)


@needs_kernels
@pytest.mark.parametrize("arch", ARCHS)
def test_the_kernels_run_and_the_switch_turns_them_off(monkeypatch, arch):
    """The comparisons here mean something only if the kernels were called."""
    calls = []
    real = native.load()

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(native, "load", lambda: Spy())
    model = _model(arch=arch)
    kind = ARCHS[arch][0]
    x = make_input(T, B, I, torch.float32, batch_first=False)
    model(x)[0].sum().backward()
    # where W_ih's and W_hh's gradients share one product (all but the GRUs, whose hidden
    # product keeps its own gradient), its stacked operand is the kernels' transposing copy
    shared = ["stack_transposed"] if kind not in ("gru", "gru_cho") else []
    assert calls == [f"{kind}_seq_forward", f"{kind}_seq_backward", *shared]
    calls.clear()
    with torch.no_grad():
        model(x)
    assert calls == [f"{kind}_seq_forward"]
    calls.clear()
    with native.torch_ops():
        model(x)[0].sum().backward()
    assert calls == []
    for _, cell in model.cells():  # the per-cell switch (the bench's scratch_torch)
        cell.native = False
    model(x)[0].sum().backward()
    with torch.no_grad():
        model(x)
    assert calls == []


@needs_kernels
@pytest.mark.parametrize(
    "arch,packed,init", list(itertools.product(ARCHS, [False, True], [False, True]))
)
def test_inference_kernel_equals_torch_ops_and_builtin(arch, packed, init):
    model = _model(arch=arch)
    name, options = ARCHS[arch]
    builtin = None
    if arch in WITH_BUILTIN:
        builtin = rnnsuite.build(name, "builtin", input_size=I, hidden_size=H, **options)
        rnnsuite.copy_weights(model, builtin)
    x = make_input(T, B, I, torch.float32, batch_first=False).detach()
    state = initial_state(name, 1, B, H, torch.float32) if init else None
    state = None if state is None else tuple(s.detach() for s in as_tuple(state))
    if state is not None and len(state) == 1:
        state = state[0]

    def run(net):
        inp = rnnsuite.pack_padded(x, LENGTHS) if packed else x
        out, final = net(inp, state)
        return (out.data if packed else out), as_tuple(final)

    with torch.no_grad():
        got_out, got_state = run(model)
        with native.torch_ops():
            want_out, want_state = run(model)
    for a, b in ((got_out, want_out), *zip(got_state, want_state, strict=True)):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6)
    if builtin is None:
        return
    with torch.no_grad():
        ref_out, ref_state = run(builtin)
    for a, b in ((got_out, ref_out), *zip(got_state, ref_state, strict=True)):
        torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_sequence_recurrent_is_the_recurrent_half_of_sequence_weights(arch):
    """The inference path reads W_hh and b_hh from sequence_recurrent() (it skips making the
    projection's folded bias): they must be the very tensors' values sequence_weights()
    gives the loop, for every cell of every layer."""
    cells = [cell for _, cell in _model(2, True, arch).cells()]
    assert cells
    for cell in cells:
        _, _, w_hh, b_hh = cell.sequence_weights()
        got_w, got_b = cell.sequence_recurrent()
        torch.testing.assert_close(got_w, w_hh, rtol=0, atol=0)
        assert (got_b is None) == (b_hh is None)
        if b_hh is not None:
            torch.testing.assert_close(got_b, b_hh, rtol=0, atol=0)


@needs_kernels
def test_saturated_gates_stay_finite_and_match():
    """Pre-activations of ±60 (sigmoid at 0 or 1, exp overflowing in float32) give the same
    results as the torch ops, not NaN: -ffast-math must not have cost the edge cases."""
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(40)
    x = (make_input(T, B, I, torch.float32, batch_first=False) * 20).detach().requires_grad_()
    got = run_and_backprop(model, x, None, None, False)
    with native.torch_ops():
        want = run_and_backprop(model, x, None, None, False)
    assert all(torch.isfinite(t).all() for t in got[0:1] + got[1])
    _compare(got, want, tol=1e-5)


@needs_kernels
def test_kernels_check_their_inputs():
    k = native.load()
    xp, w, h = torch.zeros(6, 8), torch.zeros(8, 2), torch.zeros(3, 2)
    k.lstm_seq_forward(xp, w, h, h, [3, 3], False, True)  # the right shapes pass
    with pytest.raises(RuntimeError, match="xp must be"):
        k.lstm_seq_forward(torch.zeros(6, 7), w, h, h, [3, 3], False, True)
    with pytest.raises(RuntimeError, match="float32"):
        k.lstm_seq_forward(xp.double(), w, h, h, [3, 3], False, True)
    with pytest.raises(RuntimeError, match="contiguous"):
        k.lstm_seq_forward(torch.zeros(8, 6).t(), w, h, h, [3, 3], False, True)
    with pytest.raises(RuntimeError, match="sum to 5, not 6"):
        k.lstm_seq_forward(xp, w, h, h, [3, 2], False, True)
    with pytest.raises(RuntimeError, match=r"batch sizes must be in 1\.\.3"):
        k.lstm_seq_forward(xp, w, h, h, [4, 2], False, True)


@needs_kernels
@pytest.mark.parametrize("rows", [1, 7, 8, 33, 256, 800, 1024])
@pytest.mark.parametrize("widths", [(1,), (5, 3), (64, 32), (9, 17, 8)])
def test_stack_transposed_is_the_transposes_stacked(rows, widths):
    """The blocked transposing copy behind the weight gradients: exactly torch's
    cat([a.t(), ...]) at sizes on and off its 8- and 32-element blocks, with the result's
    rows a multiple of 256 floats apart (its banded order) and not, and for a column slice
    (rows with a stride longer than the row)."""
    k = native.load()
    g = torch.Generator().manual_seed(rows * 100 + len(widths))
    mats = [torch.randn(rows, w, generator=g) for w in widths]
    want = torch.cat([m.t() for m in mats])
    got = k.stack_transposed(mats)
    assert got.is_contiguous() and torch.equal(got, want)
    wide = torch.randn(rows, 40, generator=g)
    sliced = [wide[:, 3:14], mats[0]]
    assert torch.equal(k.stack_transposed(sliced), torch.cat([m.t() for m in sliced]))


@needs_kernels
def test_stack_transposed_checks_its_inputs():
    k = native.load()
    with pytest.raises(RuntimeError, match="at least one"):
        k.stack_transposed([])
    with pytest.raises(RuntimeError, match="float32 CPU matrices of 4 rows"):
        k.stack_transposed([torch.zeros(4, 2), torch.zeros(3, 2)])
    with pytest.raises(RuntimeError, match="float32"):
        k.stack_transposed([torch.zeros(4, 2, dtype=torch.float64)])
    with pytest.raises(RuntimeError, match="contiguous rows"):
        k.stack_transposed([torch.zeros(2, 4).t()])


@needs_kernels
def test_weight_grads_through_the_native_stack_equal_the_torch_copy():
    """gemm.weight_grads with the native transposing copy: the very same product as with
    torch's (bit for bit: the stacked operand is identical); an input whose rows are not
    contiguous (a transposed view) goes the torch way and agrees."""
    from rnnsuite.cells import gemm

    k = native.load()
    g = torch.Generator().manual_seed(5)
    grad, x, h = (torch.randn(300, n, generator=g) for n in (24, 7, 6))
    for a, b in zip(
        gemm.weight_grads(grad, [x, h], k.stack_transposed),
        gemm.weight_grads(grad, [x, h]),
        strict=True,
    ):
        assert a.is_contiguous() and torch.equal(a, b)
    strided = torch.randn(7, 300, generator=g).t()
    for a, b in zip(
        gemm.weight_grads(grad, [strided, h], k.stack_transposed),
        [grad.t() @ strided, grad.t() @ h],
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-4)


@needs_kernels
@pytest.mark.parametrize(
    "packed,reverse,keep,biases,init",
    list(itertools.product([False, True], [False, True], [False, True], [0, 1, 2], [False, True])),
)
def test_lstm_loop_projecting_each_step_equals_the_projection_made_first(
    packed, reverse, keep, biases, init
):
    """Given W_ih (and up to two biases), the LSTM loops (plain and peephole) project the input a step at a time
    into its gate buffer: every result (output, final state, what backward keeps) must be
    those of the loop fed the projection x W_ihᵀ + b1 + b2 made beforehand."""
    k = native.load()
    torch.manual_seed(0)
    Bn, Hn, In = 5, 6, 4
    sizes = [5, 4, 4, 2, 1] if packed else [Bn] * 5
    x = torch.randn(sum(sizes), In)
    w_ih, w_hh = torch.randn(4 * Hn, In), torch.randn(4 * Hn, Hn) * 0.5
    bs = [torch.randn(4 * Hn) for _ in range(biases)]
    h0 = torch.randn(Bn, Hn) if init else torch.zeros(Bn, Hn)
    c0 = torch.randn(Bn, Hn) if init else torch.zeros(Bn, Hn)
    xp = torch.nn.functional.linear(x, w_ih, sum(bs[1:], bs[0]) if bs else None)
    peep = [torch.randn(Hn) for _ in range(3)]
    for fn, extra, n in ((k.lstm_seq_forward, [], 6), (k.lstm_peephole_seq_forward, peep, 7)):
        want = fn(xp, w_hh, *extra, h0, c0, sizes, reverse, keep)
        got = fn(x, w_hh, *extra, h0, c0, sizes, reverse, keep, w_ih, *bs)
        assert len(got) == len(want) == (n if keep else 3)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6)


@needs_kernels
def test_lstm_projection_arguments_are_checked():
    k = native.load()
    x, w, h = torch.zeros(6, 3), torch.zeros(8, 2), torch.zeros(3, 2)
    w_ih, b = torch.zeros(8, 3), torch.zeros(8)
    k.lstm_seq_forward(x, w, h, h, [3, 3], False, True, w_ih, b, b)  # the right shapes pass
    with pytest.raises(RuntimeError, match="x must be"):
        k.lstm_seq_forward(torch.zeros(6, 4), w, h, h, [3, 3], False, True, w_ih)
    with pytest.raises(RuntimeError, match="weight_ih must be"):
        k.lstm_seq_forward(x, w, h, h, [3, 3], False, True, torch.zeros(7, 3))
    with pytest.raises(RuntimeError, match=r"projection bias must be .* 8 values"):
        k.lstm_seq_forward(x, w, h, h, [3, 3], False, True, w_ih, torch.zeros(7))
    with pytest.raises(RuntimeError, match="projection bias must be"):
        k.lstm_seq_forward(x, w, h, h, [3, 3], False, True, w_ih, b, b.double())


@pytest.fixture(params=["each step", "made first"])
def lstm_projection(request, monkeypatch):
    """Both ways the LSTM's native paths project their input: a step at a time in the loop
    (small weights) or one oneDNN product first (weights past FUSE_MAX_WEIGHT_BYTES)."""
    from rnnsuite.native import sequence

    if request.param == "made first":
        monkeypatch.setattr(sequence, "FUSE_MAX_WEIGHT_BYTES", 0)
    return request.param


@needs_kernels
@pytest.mark.parametrize(
    "arch,bidir,packed,init",
    list(itertools.product(["lstm", "lstm_peephole"], [False, True], [False, True], [False, True])),
)
def test_lstm_both_projection_routes_equal_torch_ops_and_builtin(
    lstm_projection, arch, bidir, packed, init
):
    """Training (outputs, states, every gradient) and inference, two layers, either route;
    the plain LSTM's against nn.LSTM too."""
    model = _model(2, bidir, arch)
    builtin = rnnsuite.build(
        "lstm", "builtin", input_size=I, hidden_size=H, num_layers=2, bidirectional=bidir
    )
    if arch == "lstm":
        rnnsuite.copy_weights(model, builtin)
    x = make_input(T, B, I, torch.float32, batch_first=False)
    dirs = 2 * (2 if bidir else 1)
    state = initial_state("lstm", dirs, B, H, torch.float32) if init else None
    lengths = LENGTHS if packed else None
    got = run_and_backprop(model, x, lengths, state, False)
    with native.torch_ops():
        want = run_and_backprop(model, x, lengths, state, False)
    _compare(got, want)
    inp = rnnsuite.pack_padded(x.detach(), LENGTHS) if packed else x.detach()
    hx = None if state is None else tuple(s.detach() for s in state)
    with torch.no_grad():
        out, (h, c) = model(inp, hx)
        if arch == "lstm":
            ref, (rh, rc) = builtin(inp, hx)
        else:
            with native.torch_ops():
                ref, (rh, rc) = model(inp, hx)
    for a, b in ((out, ref), (h, rh), (c, rc)):
        a, b = (a.data, b.data) if packed else (a, b)
        torch.testing.assert_close(a, b, rtol=2e-6, atol=2e-6)


@needs_kernels
def test_loading_leaves_denormals_alone():
    """-ffast-math is a compile flag only: linking it would set flush-to-zero process-wide."""
    native.load()
    tiny = torch.tensor([1e-40], dtype=torch.float32)
    assert (tiny * 1.0).item() != 0.0


def test_kernels_are_not_used_off_cpu_float32_or_when_off(monkeypatch):
    monkeypatch.setattr(native, "load", lambda: "kernels")
    assert native.kernels_for(torch.zeros(1)) == "kernels"
    assert native.kernels_for(torch.zeros(1, dtype=torch.float64)) is None
    with native.torch_ops():
        assert native.kernels_for(torch.zeros(1)) is None
    assert native.kernels_for(torch.zeros(1)) == "kernels"


def test_mode_parsing(monkeypatch):
    for value, want in (("", "auto"), ("auto", "auto"), ("0", "0"), ("off", "0"), ("1", "1")):
        monkeypatch.setenv("RNNSUITE_NATIVE", value)
        assert native.mode() == want
    monkeypatch.setenv("RNNSUITE_NATIVE", "fast")
    with pytest.raises(ValueError, match="RNNSUITE_NATIVE=0"):
        native.mode()


@pytest.fixture
def failed_build(monkeypatch):
    """A build that fails like a machine without a compiler."""

    def no_compiler():
        raise RuntimeError("Ninja is required to load C++ extensions")

    monkeypatch.setattr(native, "_build", no_compiler)
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_error", None)
    monkeypatch.setattr(native, "_tried", False)


def test_auto_falls_back_with_one_warning(failed_build, monkeypatch):
    monkeypatch.setenv("RNNSUITE_NATIVE", "auto")
    with pytest.warns(RuntimeWarning, match="pip install ninja"):
        assert native.load() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native.load() is None  # warned once, not on every step
    status = native.status()
    assert status["active"] is False and "Ninja" in status["error"]
    # and the scratch LSTM still trains, on its torch ops
    model = _model()
    model(make_input(T, B, I, torch.float32, batch_first=False))[0].sum().backward()


def test_required_build_failure_is_an_error_naming_the_fix(failed_build, monkeypatch):
    monkeypatch.setenv("RNNSUITE_NATIVE", "1")
    with pytest.raises(RuntimeError, match="install a C\\+\\+ compiler and ninja"):
        native.load()


def test_off_never_builds(monkeypatch):
    monkeypatch.setenv("RNNSUITE_NATIVE", "0")
    monkeypatch.setattr(native, "_build", lambda: pytest.fail("built although off"))
    monkeypatch.setattr(native, "_tried", False)
    assert native.load() is None
    status = native.status()
    assert status["mode"] == "0" and status["active"] is False


@pytest.fixture
def fake_torch_build(monkeypatch, tmp_path):
    """torch's extension builder, reduced to its lock: it creates ``lock`` in the build
    directory, or, where that file is there already, waits until it goes (torch's FileBaton,
    which never gives up). The fake fails instead of waiting, so a hang shows as a failure."""
    from torch.utils import cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls = []

    def load(name, sources, build_directory=None, **options):
        directory = build_directory or cpp_extension._get_build_directory(name, False)
        lock = os.path.join(directory, "lock")
        assert not os.path.exists(lock), f"torch would wait forever on {lock}"
        calls.append(directory)
        return "kernels"

    monkeypatch.setattr(cpp_extension, "load", load)
    return calls


def test_a_build_stopped_midway_does_not_hang_the_next(fake_torch_build):
    """A build killed midway leaves torch's ``lock`` file behind, and the next process that
    needs the kernels waited on it forever, silently. No process holds the build now, so the
    file is stale: it is removed, with a warning that names it, and the build goes on."""
    directory = native.build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lock").touch()
    with pytest.warns(RuntimeWarning, match=f"removed {directory / 'lock'}"):
        assert native._build() == "kernels"
    assert fake_torch_build == [str(directory)] and not (directory / "lock").exists()


def test_a_live_build_is_waited_for_not_broken(fake_torch_build):
    """Two processes that need the kernels at once: the second waits for the first's build
    (whose lock is live) and does not remove its lock."""
    import fcntl
    import threading

    directory = native.build_directory()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "rnnsuite.lock", "a") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)  # the first process, building
        (directory / "lock").touch()
        result = []
        second = threading.Thread(target=lambda: result.append(native._build()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            second.start()
            second.join(timeout=0.5)
            assert second.is_alive() and (directory / "lock").exists()
            (directory / "lock").unlink()  # the first build ends and lets go
            fcntl.flock(holder, fcntl.LOCK_UN)
            second.join(timeout=30)
    assert result == ["kernels"]
