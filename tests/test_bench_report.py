"""Measurement pieces (FLOPs, saved bytes, regularized workloads, compiled cells) and the
report: README with tables and PNG plots written from a tiny real run."""

from __future__ import annotations

import shutil

import pytest
import torch

import rnnsuite
from bench.report import write_report
from bench.study.results import ResultStore
from bench.throughput import flops, lengths
from bench.throughput.cells import Cell
from bench.throughput.impls import build_rnn
from bench.throughput.runner import run
from bench.throughput.workload import Workload
from rnnsuite.compiled import compile_steps, compiled_graph_count


def _cell(**kw) -> Cell:
    base = dict(
        arch="lstm", impl="scratch", device="cpu", input="padded", layers=1,
        bidirectional=False, reg="none", size="t", T=5, B=3, I=4, H=6,
        lengths="uniform", optimizer="none", seed=0,
    )  # fmt: skip
    base.update(kw)
    return Cell(**base, settings={"det_steps": 2})


def test_forward_flops_by_hand():
    # lstm, 1 layer: 2·4H·(I+H) per token for the two products + 14H elementwise
    assert flops.forward_flops("lstm", I=4, H=6, layers=1, bidirectional=False, tokens=10) == (
        10 * (2 * 24 * 10 + 14 * 6)
    )
    # bidirectional doubles; layer 2 sees 2H inputs
    two = flops.forward_flops("rnn", I=4, H=6, layers=2, bidirectional=True, tokens=1)
    assert two == 2 * (2 * 6 * (4 + 6) + 3 * 6) + 2 * (2 * 6 * (12 + 6) + 3 * 6)
    assert flops.train_flops(7) == 21


def test_lengths_draws_are_seeded_and_in_range():
    a, info = lengths.draw("agnews", 64, 32, seed=3)
    b, _ = lengths.draw("agnews", 64, 32, seed=3)
    assert a == b and all(1 <= v <= 64 for v in a)
    assert info["tokens_valid"] == sum(a) and 0 < info["padding_fraction"] < 1
    assert info["source"]  # the real file or the synthetic stand-in, named either way
    full, info = lengths.draw("full", 8, 4, seed=0)
    assert full == [8] * 4 and info["padding_fraction"] == 0


def test_saved_bytes_are_deterministic_and_packing_saves_less():
    padded = Workload(_cell(lengths="uniform", T=20, B=8))
    packed = Workload(_cell(lengths="uniform", T=20, B=8, input="packed"))
    a = padded.saved_bytes()
    assert a == padded.saved_bytes() and a["saved_bytes"] > 0
    assert packed.saved_bytes()["saved_bytes"] < a["saved_bytes"]


@pytest.mark.parametrize(
    "reg", ["weight_drop", "locked_dropout", "embedding_dropout", "ar_tar", "awd"]
)
@pytest.mark.parametrize("inp", ["padded", "packed"])
def test_every_regularizer_trains_deterministically(reg, inp):
    w = Workload(_cell(reg=reg, input=inp, layers=2, optimizer="sgd"))
    a, b = w.losses(2), w.losses(2)
    assert a == b and all(torch.isfinite(torch.tensor(a)))
    w.forward()


@pytest.mark.parametrize("reg", ["none", "awd"])
def test_timed_calls_leave_every_module_in_the_mode_they_time(reg):
    """The forward call runs every module in eval mode and the training step every module
    in training mode, whatever ran before (the two are interleaved); harness_only switches
    them the same way. A module with its own train() gets it called (AWD's weight drop)."""
    w = Workload(_cell(reg=reg, layers=2, optimizer="sgd"))
    modules = list(w.net.modules())
    for call, flag in ((w.forward, False), (w.train, True), (w.forward, False)):
        call()
        assert all(m.training is flag for m in modules)
    for mode, flag in (("train", True), ("fwd", False), ("train", True)):
        w.harness_only(mode)
        assert all(m.training is flag for m in modules)


def test_a_module_with_its_own_train_is_switched_through_it():
    w = Workload(_cell())
    seen = []

    class Watcher(torch.nn.Module):
        def train(self, mode=True):
            seen.append(mode)
            return super().train(mode)

    w.net.watcher = Watcher()
    w.refresh_modules()
    w.forward()
    w.train()
    assert seen == [False, True] and w.net.watcher.training


def test_implementations_start_from_the_same_weights():
    kw = dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True, seed=5)
    s = build_rnn("gru", "scratch", **kw)
    b = build_rnn("gru", "builtin", **kw)
    x = torch.randn(7, 3, 4)
    torch.testing.assert_close(s(x)[0], b(x)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", rnnsuite.ARCHITECTURES)
def test_compiled_cells_match_scratch(arch):
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        pytest.skip("no C++ compiler: the bench records compiled cells as failed here")
    torch.manual_seed(0)
    ref = rnnsuite.build(arch, "scratch", input_size=3, hidden_size=4, bidirectional=True)
    comp = rnnsuite.build(arch, "compiled", input_size=3, hidden_size=4, bidirectional=True)
    rnnsuite.copy_weights(ref, comp)
    x = torch.randn(5, 2, 3)
    out_c, out_r = comp(x)[0], ref(x)[0]
    torch.testing.assert_close(out_c, out_r, rtol=1e-5, atol=1e-6)
    out_c.square().sum().backward()
    out_r.square().sum().backward()
    grads = dict(ref.named_parameters())
    for name, p in comp.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(comp(x)[0], ref(x)[0], rtol=1e-5, atol=1e-6)
    # inference and training run the compiled step, never the eager fused path, the
    # hand-written BPTT or the native loops: Dynamo must have compiled the step
    assert all(cell.steps_only for _, cell in comp.cells())
    assert compiled_graph_count(comp), "the compiled step never ran"
    with pytest.raises(TypeError):
        compile_steps(torch.nn.Linear(2, 2))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    toml = root / "tiny.toml"
    toml.write_text(
        """
name = "tinyreport"
[fixed]
warmup = 0
repeats = 2
det_steps = 1
lengths = "agnews"
threads = 1
[[blocks]]
name = "impls"
axes = { arch = ["lstm", "gru", "rnn", "gru_cho"], impl = ["scratch", "scratch_torch", "builtin"], input = ["padded", "packed"] }
fixed = { size = "T64-B4-I8-H8" }
exclude = ["impl=scratch_torch and arch!=lstm"]
[[blocks]]
name = "default-threads"
axes = { arch = ["lstm", "rnn"], impl = ["scratch", "builtin"], input = ["padded", "packed"] }
fixed = { size = "T64-B4-I8-H8", threads = 0 }
[[blocks]]
name = "layers"
axes = { layers = [1, 2], impl = ["scratch", "builtin"] }
fixed = { arch = "lstm", size = "T8-B4-I8-H8" }
[[blocks]]
name = "seqlen"
axes = { size = ["T4-B4-I8-H8", "T16-B4-I8-H8"], impl = ["scratch", "builtin"] }
fixed = { arch = "gru", lengths = "full" }
"""
    )
    s = run(str(toml), run_id="rep", results_dir=root / "results", quiet=True)
    assert s.failed == 0
    return root, s


def test_report_has_tables_plots_and_findings(tiny_run):
    root, s = tiny_run
    path = write_report("rep", results_dir=root / "results", out_dir=root / "reports" / "rep")
    text = path.read_text()
    for heading in (
        "## Environment",
        "## Findings",
        "## Throughput, ratios and FLOP fraction",
        "## Packed vs padded",
        "## Memory",
        "## Determinism",
    ):
        assert heading in text
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == sorted(
        [
            "throughput_by_arch.png",
            "ratio_scratch_builtin.png",
            "packed_vs_padded.png",
            "scaling_layers.png",
            "scaling_seqlen.png",
            "memory.png",
        ]
    )
    for png in pngs:
        assert f"]({png})" in text
        assert (path.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # every cell of the run has a row; the numbers come from results.jsonl
    recs = ResultStore(s.directory).latest()
    assert text.count("| lstm ") + text.count("| gru ") + text.count("| rnn ") >= len(recs)
    assert "bit-identical" in text and "pytorch/pytorch#149194" in text


def test_bars_and_the_torch_ops_finding_come_from_the_results(tiny_run, monkeypatch):
    """At the bar shape (here the tiny run's, patched in) the bars judge scratch, and the
    scratch_torch finding sets its measured ratio beside scratch's."""
    from bench import report

    _, s = tiny_run
    monkeypatch.setattr(report.spec, "BAR_SPEC", "T64-B4-I8-H8")  # read at call time
    df = report.frame(ResultStore(s.directory).latest())
    bars = report.bar_rows(df)
    assert {b["arch"] for b in bars} == {"lstm", "gru", "rnn"}
    want = df[
        (df.impl == "scratch")
        & (df.arch == "lstm")
        & (df.input == "padded")
        & (df.spec == "T64-B4-I8-H8")
    ]
    assert {
        round(b["ratio"], 6)
        for b in bars
        if b["arch"] == "lstm"
        and "packed" not in b["bar"]
        and b["bar"].startswith("scratch fwd+bwd")
    } == {round(v, 6) for v in want.train_vs_builtin}
    lines = report._torch_ops_findings(df)
    assert len(lines) == 1 and "scratch_torch" in lines[0]
    torch_rows = report.bar_rows(df, "scratch_torch")
    assert torch_rows and all(b["arch"] == "lstm" for b in torch_rows)
    for b in torch_rows:
        assert f"{b['ratio']:.2f}×" in lines[0]
    env = dict(report._environment(ResultStore(s.directory).latest()))
    state = rnnsuite.native.status()
    assert ("in use" if state["active"] else "not in use") in env["native kernels (scratch)"]


def test_scratch_torch_is_scratch_without_kernels():
    kw = dict(input_size=4, hidden_size=6, num_layers=2, bidirectional=True, seed=5)
    s, t = build_rnn("lstm", "scratch", **kw), build_rnn("lstm", "scratch_torch", **kw)
    assert all(c.native for _, c in s.cells()) and not any(c.native for _, c in t.cells())
    x = torch.randn(7, 3, 4)
    torch.testing.assert_close(s(x)[0], t(x)[0], rtol=1e-5, atol=1e-6)


def test_report_lists_failed_cells(tiny_run, monkeypatch):
    root, _ = tiny_run
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "rnn and builtin and padded")
    run(str(root / "tiny.toml"), k="rnn and impls", run_id="withfail",
        results_dir=root / "results", quiet=True, timing=False)  # fmt: skip
    text = write_report("withfail", results_dir=root / "results", out_dir=root / "r2").read_text()
    assert "## Failed and skipped cells" in text and "injected fault" in text


def test_report_says_which_failed_cells_ran_out_of_memory(tiny_run, monkeypatch):
    """An allocation failure is recorded as error_kind "oom"; the report's table of failed
    cells must say so, not only the console."""
    import bench.throughput.measure as measure

    root, _ = tiny_run
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "rnn and builtin and padded")
    monkeypatch.setattr(
        measure,
        "InjectedFault",
        lambda msg: RuntimeError("DefaultCPUAllocator: can't allocate memory: 1 TB"),
    )
    run(str(root / "tiny.toml"), k="rnn and impls", run_id="withoom",
        results_dir=root / "results", quiet=True, timing=False)  # fmt: skip
    text = write_report("withoom", results_dir=root / "results", out_dir=root / "r3").read_text()
    failed = text.split("## Failed and skipped cells", 1)[1]
    assert "| failed (out of memory) |" in failed


def test_a_scripted_module_is_switched_through_train():
    w = Workload(_cell())
    w.net.scripted = torch.jit.script(torch.nn.Dropout(0.5))
    w.refresh_modules()
    x = torch.ones(1000)
    w.forward()
    assert torch.equal(w.net.scripted(x), x)  # eval: dropout is the identity
    w.train()
    assert (w.net.scripted(x) == 0).any()  # training: it drops
