"""The same parity on a GPU (cuDNN for the built-ins), determinism settings, CUDA peak memory
and one bench group measured end to end on the device.

Skips with a reason on CPU-only hosts. ``RNNSUITE_TEST_DEVICE=cpu`` runs the
device-generic ones on the CPU instead (``scripts/cuda-check --dry-run`` does, so this file
cannot rot between GPUs); the CUDA-only checks then skip with a reason.
"""

from __future__ import annotations

import os

import pytest
import torch

import rnnsuite
from bench.study.provenance import collect, now_iso
from bench.throughput import matrix, memory
from bench.throughput.cells import expand
from bench.throughput.measure import measure_group
from bench.throughput.timing import Timer
from bench.throughput.workload import Workload
from helpers import as_tuple, assert_results_close, initial_state, make_input, run_and_backprop

# cuBLAS reads it when its first handle is made: set here, before any test touches the GPU,
# for the deterministic-algorithms test (scripts/cuda-check sets it too).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

DEVICE = os.environ.get("RNNSUITE_TEST_DEVICE", "cuda")
CUDA = DEVICE.startswith("cuda")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        CUDA and not torch.cuda.is_available(),
        reason="no CUDA device on this machine (RNNSUITE_TEST_DEVICE=cpu runs these on the CPU)",
    ),
]
cuda_only = pytest.mark.skipif(not CUDA, reason=f"CUDA only; RNNSUITE_TEST_DEVICE={DEVICE}")

WITH_BUILTIN = [a for a in rnnsuite.ARCHITECTURES if "builtin" in rnnsuite.implementations_of(a)]
T, B, I, H = 9, 5, 7, 16
LENGTHS = [9, 2, 5, 1, 7]  # unsorted, one of length 1 and one full
SHAPES = [(1, False), (2, True)]  # (layers, bidirectional)


@pytest.fixture
def fp32_exact():
    """cuDNN may run float32 RNNs in TF32 (torch allows it by default): parity asks for fp32."""
    cudnn = torch.backends.cudnn
    saved = cudnn.allow_tf32
    cudnn.allow_tf32 = False
    yield
    cudnn.allow_tf32 = saved


@pytest.fixture
def deterministic():
    """torch.use_deterministic_algorithms and cuDNN's deterministic flag, restored after."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic)
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic = saved[1]


def _pair(arch: str, layers: int, bidir: bool, dtype: torch.dtype):
    torch.manual_seed(0)
    kw = dict(input_size=I, hidden_size=H, num_layers=layers, bidirectional=bidir)
    builtin = rnnsuite.build(arch, "builtin", **kw).to(DEVICE, dtype)
    scratch = rnnsuite.build(arch, "scratch", **kw).to(DEVICE, dtype)
    return rnnsuite.copy_weights(builtin, scratch), builtin


def _parity(arch, layers, bidir, packed, dtype, tol):
    scratch, builtin = _pair(arch, layers, bidir, dtype)
    x = make_input(T, B, I, dtype, batch_first=False, device=DEVICE)
    state = initial_state(arch, layers * (2 if bidir else 1), B, H, dtype, device=DEVICE)
    lengths = LENGTHS if packed else None
    want = run_and_backprop(builtin, x, lengths, state, batch_first=False)
    got = run_and_backprop(scratch, x, lengths, state, batch_first=False)
    assert got[0].device.type == torch.device(DEVICE).type
    assert_results_close(got, want, tol)


@pytest.mark.usefixtures("fp32_exact")
@pytest.mark.parametrize("arch", WITH_BUILTIN)
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize(("layers", "bidir"), SHAPES, ids=["L1-uni", "L2-bi"])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_scratch_equals_builtin_on_device(arch, packed, layers, bidir, dtype, tol):
    """Outputs, final states and the gradients of every parameter, the input and the
    initial state, scratch against cuDNN."""
    _parity(arch, layers, bidir, packed, dtype, tol)


@cuda_only
@pytest.mark.parametrize("arch", WITH_BUILTIN)
def test_tf32_default_stays_close(arch):
    """With torch's default (cuDNN may use TF32 for float32 RNNs) cuDNN and the scratch cells
    (cuBLAS, full fp32 by default) still agree to 1e-2: the bench measures this default."""
    assert torch.backends.cudnn.allow_tf32  # torch's default, as the bench runs
    _parity(arch, 2, True, True, torch.float32, 1e-2)


def _train_twice(arch: str, impl: str, packed: bool):
    """Losses and final weights of three SGD steps, twice from the same seed."""
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        model = rnnsuite.build(arch, impl, input_size=I, hidden_size=H, num_layers=2).to(DEVICE)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        x = torch.randn(T, B, I, device=DEVICE)
        losses = []
        for _ in range(3):
            opt.zero_grad()
            out, state = model(rnnsuite.pack_padded(x, LENGTHS) if packed else x)
            data = out.data if packed else out
            loss = data.square().mean() + sum(s.square().mean() for s in as_tuple(state))
            loss.backward()
            opt.step()
            losses.append(loss.item())
        runs.append((losses, [p.detach().clone() for p in model.parameters()]))
    return runs


@pytest.mark.usefixtures("deterministic")
@pytest.mark.parametrize("arch", WITH_BUILTIN)
@pytest.mark.parametrize("impl", ["scratch", "builtin"])
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_deterministic_settings_repeat_bit_for_bit(arch, impl, packed):
    """Under torch.use_deterministic_algorithms(True) and cudnn.deterministic every op of the
    training step has a deterministic kernel (none raises) and two runs agree exactly."""
    (loss_a, w_a), (loss_b, w_b) = _train_twice(arch, impl, packed)
    assert loss_a == loss_b
    for a, b in zip(w_a, w_b, strict=True):
        assert torch.equal(a, b)


def _cells(axes: str, fixed: str = ""):
    """The cells of a one-block matrix on DEVICE (TOML lines for [axes] and [fixed])."""
    m = matrix.loads(
        f'name = "t"\nseeds = [0]\n[fixed]\ndevice = "{DEVICE}"\n{fixed}\n[axes]\n{axes}\n'
    )
    return expand(m)


def _peak_and_saved(impl: str, batch: int) -> tuple[int, int]:
    (cell,) = _cells(f'impl = ["{impl}"]\nsize = ["T16-B{batch}-I32-H64"]')
    w = Workload(cell)
    w.train()  # the first call makes the cuBLAS / cuDNN handles and workspaces, once
    for p in w.params:
        p.grad = None  # so that the step's own gradients count in its peak
    saved = w.saved_bytes()["saved_bytes"]
    return memory.cuda_peak(w.train, cell.device)["cuda_peak_bytes"], saved


@cuda_only
@pytest.mark.parametrize("impl", ["scratch", "builtin"])
def test_cuda_peak_memory_counts_the_step(impl):
    """bench.throughput.memory.cuda_peak: at least the bytes autograd saves for backward (all alive
    when backward starts), and growing with the batch."""
    (small, saved_small), (large, saved_large) = (_peak_and_saved(impl, b) for b in (8, 64))
    assert small >= 0.9 * saved_small > 0 and large >= 0.9 * saved_large
    assert large > 2 * small


def test_bench_group_measures_on_device():
    """One bench group (scratch and the built-in, padded and packed) measured on the device:
    synchronised timing, the in-run matrix-multiply probe, the device's memory figure."""
    cells = _cells(
        'impl = ["scratch", "builtin"]\ninput = ["padded", "packed"]',
        'size = "T12-B8-I16-H32"\nlengths = "uniform"\nwarmup = 1\nrepeats = 3\ndet_steps = 2',
    )
    timer = Timer(DEVICE)
    prov = collect(DEVICE, now_iso())
    recs = measure_group(cells, run_id="t", provenance=prov, timer=timer, harness_overhead_s=0.0)
    assert [r["status"] for r in recs] == ["ok"] * 4, [r.get("error") for r in recs]
    mem_key = "cuda_peak_bytes" if CUDA else "rss_growth_bytes"
    for r in recs:
        assert r["timing"]["train"]["median_s"] > 0 and r["timing"]["fwd"]["n"] == 3
        assert r["flops"]["matmul_proj_flops_per_s"] > 0 and r["flops"]["attainable_flops_per_s"]
        assert r["memory"][mem_key] is not None and r["determinism"]["steps"] == 2
    assert recs[0]["ratios"]["train"]["vs_builtin"]["n"] == 3
    if CUDA:
        assert prov["device_name"] == torch.cuda.get_device_name() and prov["cudnn_version"]


def test_stateful_and_packed_run_on_device():
    model = rnnsuite.Stateful(
        rnnsuite.build("lstm_peephole", input_size=3, hidden_size=4).to(DEVICE)
    )
    x = torch.randn(5, 2, 3, device=DEVICE)
    a, b = model(x)[0], model(x)[0]
    assert a.device.type == torch.device(DEVICE).type and not torch.allclose(a, b)
