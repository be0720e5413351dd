"""The Transformer baseline in the throughput bench: matrix rules, the model (causal,
same interface as the RNN cells), FLOPs, a tiny measured run and its report."""

from __future__ import annotations

import pytest
import torch

from bench.report import write_report
from bench.study.results import ResultStore
from bench.throughput import flops
from bench.throughput import matrix as matrix_mod
from bench.throughput.cells import Cell, expand
from bench.throughput.impls import build_rnn
from bench.throughput.matrix import MatrixError, loads
from bench.throughput.runner import run
from bench.throughput.workload import Workload
from rnnsuite.models.transformer import CausalTransformer, transformer_heads


def _cell(**kw) -> Cell:
    base = dict(
        arch="transformer", impl="builtin", device="cpu", input="padded", layers=2,
        bidirectional=False, reg="none", size="t", T=10, B=3, I=8, H=16,
        lengths="uniform", optimizer="none", seed=0,
    )  # fmt: skip
    base.update(kw)
    return Cell(**base, settings={"det_steps": 2})


@pytest.fixture(autouse=True)
def _one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


# -- matrix --------------------------------------------------------------------------------
def test_matrix_accepts_transformer_builtin_beside_rnns():
    m = loads(
        '[[blocks]]\nname = "tf"\naxes = { arch = ["transformer", "lstm"], layers = [1, 2] }\n'
        'fixed = { impl = "builtin", size = "tiny" }\n',
        source="t.toml",
    )
    cells = expand(m, check_devices=False)
    assert sorted((c.arch, c.layers) for c in cells) == [
        ("lstm", 1), ("lstm", 2), ("transformer", 1), ("transformer", 2)
    ]  # fmt: skip
    assert {c.impl for c in cells} == {"builtin"}
    # transformer and lstm cells are separate timing groups
    assert len({c.group_key for c in cells}) == 4


@pytest.mark.parametrize(
    "text, key, message",
    [
        ('[axes]\narch = ["transformer"]', "axes.arch", "impl 'scratch'"),  # the default impl
        (
            '[axes]\narch = ["transformer", "lstm"]\nimpl = ["builtin", "compiled"]',
            "axes.impl",
            "only the built-in implementation",
        ),
        (
            '[[blocks]]\naxes = { arch = ["transformer"], bidirectional = [false, true] }\n'
            'fixed = { impl = "builtin" }',
            "blocks[0].axes.bidirectional",
            "causal, one direction only",
        ),
        (
            '[[blocks]]\naxes = { arch = ["transformer"] }\n'
            'fixed = { impl = "builtin", input = "packed" }',
            "blocks[0].fixed.input",
            "takes no PackedSequence",
        ),
        (
            '[fixed]\nimpl = "builtin"\n[axes]\narch = ["transformer"]\nreg = ["none", "awd"]',
            "axes.reg",
            "needs a recurrent weight",
        ),
    ],
)
def test_matrix_rejects_what_a_transformer_cannot_run(text, key, message):
    with pytest.raises(MatrixError) as e:
        loads(text, source="t.toml")
    assert e.value.key == key and message in str(e.value)
    assert 'exclude = ["transformer' in str(e.value)  # and says how to leave it out


def test_excluding_the_unsupported_combinations_is_enough():
    m = loads(
        'exclude = ["transformer and (scratch or packed)"]\n[axes]\n'
        'arch = ["transformer", "lstm"]\nimpl = ["scratch", "builtin"]\ninput = ["padded", "packed"]\n',
        source="t.toml",
    )
    cells = [c for c in expand(m, check_devices=False) if c.arch == "transformer"]
    assert [(c.impl, c.input) for c in cells] == [("builtin", "padded")]


def test_quick_has_the_transformer_block():
    cells = expand(matrix_mod.load("quick"), check_devices=False)
    tf = [c for c in cells if c.arch == "transformer"]
    assert {(c.layers, c.spec, c.impl, c.input) for c in tf} == {
        (1, "T64-B64-I256-H256", "builtin", "padded"),
        (2, "T64-B64-I256-H256", "builtin", "padded"),
    }
    for arch in ("lstm", "gru"):
        for layers in (1, 2):
            assert any(
                c.arch == arch and c.layers == layers and c.impl == "builtin"
                and c.input == "padded" and c.spec == "T64-B64-I256-H256"
                and c.lengths == tf[0].lengths and c.threads == tf[0].threads
                for c in cells
            ), (arch, layers)  # fmt: skip


# -- the model -----------------------------------------------------------------------------
def test_heads_divide_the_width():
    assert transformer_heads(256) == 4 and transformer_heads(512) == 8
    assert transformer_heads(16) == 1 and transformer_heads(200) == 3 - 1
    for h in (6, 96, 200, 320, 1000):
        assert h % transformer_heads(h) == 0


@pytest.mark.parametrize("I", [8, 16])
def test_model_is_causal_and_shaped_like_an_rnn(I):
    model = build_rnn(
        "transformer", "builtin", input_size=I, hidden_size=16, num_layers=2,
        bidirectional=False, seed=0,
    )  # fmt: skip
    assert isinstance(model, CausalTransformer) and (model.proj is None) == (I == 16)
    x = torch.randn(10, 3, I)
    later = x.clone()
    later[6:] += torch.randn(4, 3, I)
    for train in (True, False):  # the eval/no_grad fused path too
        model.train(train)
        with torch.set_grad_enabled(train):
            out, state = model(x)
            out2, _ = model(later)
        assert out.shape == (10, 3, 16) and state is None
        assert torch.equal(out[:6], out2[:6])  # earlier steps never see later ones
        assert not torch.allclose(out[6:], out2[6:])


def test_no_scratch_or_bidirectional_transformer():
    with pytest.raises(ValueError, match="'transformer' has only builtin"):
        build_rnn("transformer", "scratch", input_size=4, hidden_size=8, num_layers=1,
                  bidirectional=False, seed=0)  # fmt: skip
    with pytest.raises(ValueError, match="causal, time-major"):
        build_rnn("transformer", "builtin", input_size=4, hidden_size=8, num_layers=1,
                  bidirectional=True, seed=0)  # fmt: skip


def test_transformer_flops_by_hand():
    T, B, I, H, L, heads = 10, 3, 8, 16, 2, 1
    N = T * B
    per_layer = 8 * N * H * H + 4 * T * T * B * H + 16 * N * H * H + N * (25 * H + 4 * T)
    want = L * per_layer + 6 * N * H + 2 * N * I * H
    assert transformer_heads(H) == heads
    got = CausalTransformer.forward_flops(T=T, B=B, I=I, H=H, layers=L)
    assert got == want
    assert flops.cell_forward_flops(_cell(), tokens=N) == want
    # no input projection when I == H
    assert CausalTransformer.forward_flops(T=T, B=B, I=H, H=H, layers=L) == want - (2 * N * I * H)
    probes = flops.matmul_probes("transformer", T=T, B=B, I=I, H=H, device="cpu")
    assert probes["proj"][1] == 2 * N * H * 3 * H and probes["step"][1] == 2 * N * H * 4 * H
    for fn, _ in probes.values():
        fn()


def test_workload_is_deterministic():
    w = Workload(_cell())
    a, b = w.losses(3), w.losses(3)
    assert a == b and all(torch.isfinite(torch.tensor(a)))
    assert a[-1] < a[0]  # SGD steps reduce the masked MSE
    s = w.saved_bytes()
    assert s == w.saved_bytes() and s["saved_bytes"] > 0
    # a second workload from the same seed gives the same numbers
    assert Workload(_cell()).losses(3) == a
    for reg in ("locked_dropout", "embedding_dropout", "ar_tar"):
        wr = Workload(_cell(reg=reg))
        assert wr.losses(2) == wr.losses(2)


# -- a measured run and its report ---------------------------------------------------------
TINY = """
name = "tinytf"
[fixed]
warmup = 0
repeats = 2
det_steps = 2
lengths = "agnews"
threads = 1
impl = "builtin"
[[blocks]]
name = "transformer"
axes = { arch = ["transformer", "lstm", "gru"], layers = [1, 2] }
fixed = { size = "T16-B4-I8-H16" }
"""


@pytest.fixture(scope="module")
def tf_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench-tf")
    toml = root / "tinytf.toml"
    toml.write_text(TINY)
    s1 = run(str(toml), run_id="a", results_dir=root / "results", quiet=True)
    s2 = run(str(toml), k="arch=transformer", run_id="b", results_dir=root / "results", quiet=True)
    assert s1.failed == 0 and s2.failed == 0
    return root, s1, s2


def test_transformer_cells_record_throughput_flops_memory(tf_runs):
    _, s1, s2 = tf_runs
    a = {r["cell_id"]: r for r in ResultStore(s1.directory).latest()}
    b = {r["cell_id"]: r for r in ResultStore(s2.directory).latest()}
    tf = [cid for cid, r in a.items() if r["cell"]["arch"] == "transformer"]
    assert len(tf) == 2 and set(b) == set(tf)
    for cid in tf:
        r = a[cid]
        assert r["status"] == "ok"
        assert "tokens_per_s" in r["timing"]["fwd"] and "tokens_per_s" in r["timing"]["train"]
        assert r["flops"]["fwd"] > 0 and r["flops"]["train"] == 3 * r["flops"]["fwd"]
        assert "attainable_flops_per_s" in r["flops"]
        assert r["memory"]["saved_bytes"] > 0
        assert r["determinism"]["repeat_identical"]
        assert r["ratios"] == {"fwd": {}, "train": {}}  # no scratch twin, no packed twin
        # deterministic quantities repeat across runs
        assert r["determinism"]["losses_hex"] == b[cid]["determinism"]["losses_hex"]
        assert r["memory"]["saved_bytes"] == b[cid]["memory"]["saved_bytes"]
        assert r["flops"]["fwd"] == b[cid]["flops"]["fwd"]


def test_report_shows_transformer_beside_rnns(tf_runs):
    root, _, _ = tf_runs
    path = write_report("a", results_dir=root / "results", out_dir=root / "reports" / "a")
    text = path.read_text()
    assert "## Transformer baseline vs RNN built-ins" in text
    assert "| transformer builtin padded L1 T16-B4-I8-H16 agnews" in text
    assert "**Transformer baseline vs RNN built-ins**" in text
    assert "× nn.LSTM" in text and "× nn.GRU" in text and "L2:" in text
    assert (path.parent / "throughput_by_arch.png").is_file()
    assert (path.parent / "memory.png").is_file()
