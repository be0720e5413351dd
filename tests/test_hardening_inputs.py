"""Hardening (issue 13): paths and names, faults and injections. Each test feeds the suite
one bad input or one fault and checks it is refused or recorded cleanly: run ids, report
paths, injection variables, malformed injections, out-of-memory cells, an overflowing
perplexity, reproduce's usage errors, failed cells' console lines, empty matrix files and
`python -m rnnsuite.data verify`'s exit code. Tiny cells, no timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from bench import cli
from bench.quality import study as quality
from bench.reproduce import study as reproduce
from bench.study.failures import error_kind
from bench.study.results import ResultsError, ResultStore, check_run_id
from bench.throughput import measure
from bench.throughput.matrix import MatrixError, loads
from bench.throughput.runner import UsageError, run
from rnnsuite.data import fetch, sources
from rnnsuite.recipes import tasks
from rnnsuite.train.loops import NonFiniteLoss, train_char_lm

TINY = """
name = "tiny"
seeds = [0]
[fixed]
size = "T4-B3-I4-H4"
lengths = "uniform"
threads = 1
warmup = 0
repeats = 2
det_steps = 2
timing = false
[axes]
arch = ["rnn", "gru"]
impl = ["scratch", "builtin"]
"""
ONE_RECIPE = "recipe=er_remember and seed=0"
FAULT, SLOWDOWN = measure.FAULT_ENV, "RNNSUITE_BENCH_INJECT_SLOWDOWN"


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def _missing_dataset(*_a, **_k):
    spec = sources.dataset("ptb").file("ptb.train.txt")
    raise fetch.DatasetMissing(fetch.missing_message(spec))


# -- run ids -----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["trail\n", "", "héllo", "ａb", "a b", "../x", ".hidden", "a/b"])
def test_run_id_must_fully_match_an_ascii_pattern(bad):
    with pytest.raises(ResultsError, match="bad run id"):
        check_run_id(bad)


def test_good_run_ids_pass():
    for good in ("quick-20260101-120000", "a", "A.b_c-1", "x" * 128):
        assert check_run_id(good) == good
    with pytest.raises(ResultsError):
        check_run_id("x" * 129)


def test_empty_or_newline_run_id_is_a_usage_error_everywhere(tiny, tmp_path, capsys):
    res = str(tmp_path / "res")
    args = ["--results-dir", res]
    with pytest.raises(UsageError, match="bad run id"):
        run(str(tiny), run_id="", results_dir=res, quiet=True)
    assert cli.main(["run", "--matrix", str(tiny), "--run-id", "", "-q", *args]) == 2
    assert cli.main(["reproduce", "--report-only", "--run-id", "trail\n", *args]) == 2
    assert cli.main(["quality", "--report-only", "--run-id", "trail\n", *args]) == 2
    nobase = ["--baseline", str(tmp_path / "nobase")]
    assert cli.main(["gate", "--deterministic-only", "--run-id", "", *nobase, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("bad run id") == 4
    assert not Path(res).exists() or not any(Path(res).iterdir())  # nothing was created


# -- report paths ------------------------------------------------------------------------------
def test_report_of_a_path_is_resolved_and_never_escapes_reports(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = run(str(tiny), k="rnn", run_id="r1", results_dir="results", quiet=True)
    (s.directory / "sub").mkdir()
    assert cli.main(["report", "results/r1/sub/.."]) == 0
    assert not (tmp_path / "README.md").exists()  # reports/.. is the repository root
    text = (tmp_path / "reports" / "r1" / "README.md").read_text()
    assert "run `r1`" in text
    assert cli.main(["report", "results/r1/.."]) == 2  # results/ itself is no run
    assert cli.main(["report", "./.."]) == 2
    assert not (tmp_path / "README.md").exists() and not (tmp_path.parent / "README.md").exists()


def test_report_of_a_badly_named_directory_needs_out(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    s = run(str(tiny), k="rnn", run_id="r2", results_dir="results", quiet=True)
    odd = tmp_path / "my run"
    s.directory.rename(odd)
    assert cli.main(["report", str(odd)]) == 2
    assert "--out" in capsys.readouterr().err
    assert not (tmp_path / "reports").exists()
    assert cli.main(["report", str(odd), "--out", str(tmp_path / "elsewhere")]) == 0
    assert (tmp_path / "elsewhere" / "README.md").is_file()


# -- injections --------------------------------------------------------------------------------
def test_injections_are_recorded_in_records_manifest_and_report(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT, "nan:rnn and scratch")
    monkeypatch.setenv(SLOWDOWN, "builtin:0.5")
    want = {FAULT: "nan:rnn and scratch", SLOWDOWN: "builtin:0.5"}
    s = run(str(tiny), k="rnn", run_id="inj", results_dir=tmp_path, quiet=True)
    recs = ResultStore(s.directory).latest()
    assert len(recs) == 2 and all(r["provenance"]["injections"] == want for r in recs)
    bad = [r for r in recs if r["status"] == "failed"]
    assert len(bad) == 1 and FAULT in bad[0]["error"]  # an injected NaN says it was injected
    manifest = json.loads((s.directory / "run.json").read_text())
    assert manifest["sessions"][-1]["injections"] == want
    from bench.report import write_report

    text = write_report("inj", results_dir=tmp_path, out_dir=tmp_path / "rep").read_text()
    assert "nan:rnn and scratch" in text and "builtin:0.5" in text


def test_quality_and_reproduce_record_injections(tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT, "lstm")
    monkeypatch.setitem(tasks.TASKS, "remember", _missing_dataset)
    reproduce.run("rp", results_dir=tmp_path, k=ONE_RECIPE, echo=lambda *_: 0)
    monkeypatch.setitem(tasks.TASKS, "human_numbers", _missing_dataset)
    qpath = tmp_path / "q.toml"
    qpath.write_text(QUALITY)
    quality.run("q", results_dir=tmp_path, matrix_path=qpath, echo=lambda *_: 0)
    for rid in ("rp", "q"):
        store = ResultStore(tmp_path / rid)
        assert [r["provenance"]["injections"] for r in store.latest()] == [{FAULT: "lstm"}]
        assert store.read_manifest()["injections"] == {FAULT: "lstm"}


def test_malformed_fault_expression_stops_the_run_before_any_cell(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv(FAULT, "nan:lstm and (")
    with pytest.raises(UsageError, match=FAULT):
        run(str(tiny), run_id="mf", results_dir=tmp_path, quiet=True)
    assert not (tmp_path / "mf" / "results.jsonl").exists()
    assert cli.main(["run", "--matrix", str(tiny), "-q", "--results-dir", str(tmp_path)]) == 2


# -- out of memory -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 1099511627776 bytes. Error code 12"
        ),
        MemoryError(),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    ],
)
def test_out_of_memory_is_its_own_error_kind(exc):
    assert error_kind(exc) == "oom"
    assert error_kind(RuntimeError("shape mismatch")) == "error"


def test_an_oom_cell_is_recorded_as_oom_and_the_rest_go_on(tiny, tmp_path, monkeypatch):
    from bench.throughput import workload

    real = workload.Workload.forward

    def forward(self):
        if self.cell.impl == "builtin":
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate")
        return real(self)

    monkeypatch.setattr(workload.Workload, "forward", forward)
    s = run(str(tiny), k="gru", run_id="oom", results_dir=tmp_path, quiet=True)
    kinds = {r["cell"]["impl"]: r.get("error_kind") for r in ResultStore(s.directory).latest()}
    assert kinds == {"scratch": None, "builtin": "oom"} and s.ok == 1


# -- the training loops ------------------------------------------------------------------------
class _Confident(nn.Module):
    """Logits that put a margin of 2000 on the wrong class: a finite loss of 2000 nats."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2000.0))

    def forward(self, x):
        logits = torch.zeros(*x.shape, 3)
        logits[..., 1] = self.w
        return logits, None


def test_an_overflowing_perplexity_is_the_suites_non_finite_loss_error():
    def batches():
        return [(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long))]

    with pytest.raises(NonFiniteLoss, match="lower the learning rate"):
        train_char_lm(_Confident(), batches, batches, epochs=1, lr=0.0)


def test_the_ptb_task_refuses_an_overflowing_validation_perplexity(monkeypatch):
    """The word-LM task turned its validation loss into a perplexity with a bare math.exp:
    a finite loss past ~709.78 nats raised OverflowError instead of the suite's error."""
    from rnnsuite.recipes import tasks
    from rnnsuite.recipes.tasks import fastbook

    def diverged(*args, **kwargs):
        return {
            "valid_loss": 800.0,
            "accuracy": 0.0,
            "epochs": [{"valid_loss": 800.0}],
            "epoch_seconds": [0.0],
        }

    monkeypatch.setattr(fastbook, "fit_one_cycle_lm", diverged)
    model = {"arch": "lstm", "impl": "scratch", "hidden_size": 8, "num_layers": 1}
    train = {"bs": 2, "bptt": 4, "lr": 1e-3, "wd": 0.0, "epochs": 1}
    limits = {"max_batches": 1, "valid_batches": 1}
    with pytest.raises(NonFiniteLoss, match="lower the learning rate"):
        tasks.ptb(model, train, seed=0, device="cpu", limits=limits)


# -- reproduce and quality usage errors --------------------------------------------------------
def test_reproduce_bad_selection_and_unknown_run_are_usage_errors(tmp_path, capsys):
    res = ["--results-dir", str(tmp_path)]
    assert cli.main(["reproduce", "-k", "fastbook and (", *res]) == 2
    assert cli.main(["reproduce", "-k", "nosuchword", *res]) == 2
    assert cli.main(["reproduce", "--report-only", "--run-id", "nosuchrun", *res]) == 2
    err = capsys.readouterr().err
    assert "-k" in err and "selects no" in err and "nosuchrun" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_quality_bad_selection_and_unknown_run_are_usage_errors(tmp_path, capsys):
    qpath = tmp_path / "q.toml"
    qpath.write_text(QUALITY)
    res = ["--matrix", str(qpath), "--results-dir", str(tmp_path)]
    assert cli.main(["quality", "-k", "lstm and (", *res]) == 2
    assert cli.main(["quality", "--report-only", "--run-id", "nosuchrun", *res]) == 2
    assert "nosuchrun" in capsys.readouterr().err


# -- failed cells' console lines ---------------------------------------------------------------
def test_console_reason_keeps_the_first_line_and_the_fix():
    from bench.study.failures import console_reason

    spec = sources.dataset("ptb").file("ptb.train.txt")
    line = console_reason(f"DatasetMissing: {fetch.missing_message(spec)}")
    assert line.startswith("DatasetMissing: dataset 'ptb': file ptb/ptb.train.txt was not found.")
    assert "Fix: set RNNSUITE_DATA" in line and "python -m rnnsuite.data download ptb" in line
    assert "\n" not in line and "Looked in" not in line
    assert console_reason("ValueError: bad\nmore detail") == "ValueError: bad"


def test_failed_cell_lines_show_the_reason_and_fix(tiny, tmp_path, monkeypatch, capsys):
    lines: list[str] = []
    monkeypatch.setitem(tasks.TASKS, "remember", _missing_dataset)
    reproduce.run("rf", results_dir=tmp_path, k=ONE_RECIPE, echo=lines.append)
    monkeypatch.setitem(tasks.TASKS, "human_numbers", _missing_dataset)
    qpath = tmp_path / "q.toml"
    qpath.write_text(QUALITY)
    quality.run("qf", results_dir=tmp_path, matrix_path=qpath, echo=lines.append)
    failed = [ln for ln in lines if "failed" in ln]
    assert len(failed) == 2
    for ln in failed:
        assert "was not found" in ln and "python -m rnnsuite.data download ptb" in ln

    from bench.throughput import workload

    monkeypatch.setattr(workload.Workload, "__init__", _missing_dataset)
    monkeypatch.setenv("COLUMNS", "1000")
    run(str(tiny), k="rnn and builtin", run_id="bf", results_dir=tmp_path)
    err = " ".join(capsys.readouterr().err.split())
    assert "was not found" in err and "python -m rnnsuite.data download ptb" in err


# -- empty matrix files ------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "# nothing here\n\n   # still nothing\n"])
def test_an_empty_matrix_file_is_an_error_naming_it(tmp_path, text):
    with pytest.raises(MatrixError, match=r"e\.toml: .*empty"):
        loads(text, source="e.toml")
    path = tmp_path / "e.toml"
    path.write_text(text)
    with pytest.raises(quality.QualityError, match=r"e\.toml: .*empty"):
        quality.load_matrix(path)
    with pytest.raises(ValueError, match=r"e\.toml: .*empty"):
        reproduce.load_matrix(path)
    assert cli.main(["run", "--matrix", str(path), "--results-dir", str(tmp_path)]) == 2


def test_a_recipe_matrix_without_recipes_is_an_error(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('kind = "recipes"\nseeds = [0]\n')
    with pytest.raises(ValueError, match=r"r\.toml: key 'recipes'"):
        reproduce.load_matrix(path)


# -- python -m rnnsuite.data verify ------------------------------------------------------------
def test_data_verify_fails_on_a_missing_required_file(tmp_path, monkeypatch, capsys):
    from rnnsuite.data.__main__ import main as data_cli

    monkeypatch.setenv("RNNSUITE_DATA", str(tmp_path))
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))
    assert data_cli(["verify", "time_machine"]) == 1
    assert "1 missing required file(s)" in capsys.readouterr().out
    assert data_cli(["verify", "time_machine", "--report-only"]) == 0
    assert data_cli(["verify", "human_numbers"]) == 0  # generated: nothing to miss


QUALITY = """
name = "q1"
kind = "quality"
seeds = [0]
threads = 1
[tasks.hn]
loop = "human_numbers"
metric = "accuracy"
curve = "accuracy"
target = 0.5
model = { hidden_size = 4 }
axes = { arch = ["lstm"] }
"""
