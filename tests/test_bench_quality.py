"""The quality matrix: validation, cell planning, budgets, time-to-target, the run's
records (deterministic metrics, failed cells kept) and the report built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main as bench_main
from bench.quality import study as quality
from bench.study.results import ResultStore

TINY = {"epochs": 1, "max_batches": 2, "test_batches": 1, "num_train": 32, "num_val": 8}

MINI = """
name = "mini"
kind = "quality"
seeds = [0]
threads = 1
[tasks.hn]
loop = "human_numbers"
metric = "accuracy"
goal = "max"
curve = "accuracy"
target = 0.01
model = { hidden_size = 8, num_layers = 1 }
train = { epochs = 1, lr = 1e-2, wd = 0.01, bs = 8, sl = 4 }
axes = { arch = ["lstm", "transformer"], impl = ["scratch", "builtin"], reg = ["none", "awd"] }
exclude = ["arch=transformer and impl=scratch", "arch=transformer and reg=awd"]
[tasks.hn.reg.awd]
model = { dropout = 0.4, tie = true }
train = { wd = 0.1, alpha = 2.0, beta = 1.0 }
[tasks.hn.arch.transformer]
model = { num_heads = 2 }
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "q.toml"
    p.write_text(text)
    return p


def test_shipped_matrix_covers_every_axis_the_issue_names():
    m = quality.load_matrix()
    cells = quality.plan(m, "cpu", None)
    tasks = {c["task"] for c in cells}
    assert tasks == {"human_numbers", "ptb", "time_machine", "ag_news", "fra_eng"}
    seen = {a: {c[a] for c in cells} for a in ("arch", "impl", "layers", "reg", "input")}
    assert {"rnn", "lstm", "gru", "transformer"} <= seen["arch"]
    assert {"scratch", "builtin"} <= seen["impl"]
    assert {"1", "2"} <= seen["layers"]
    assert {"none", "dropout", "awd"} <= seen["reg"]
    assert {"padded", "packed"} <= seen["input"]
    assert len({c["cell_id"] for c in cells}) == len(cells)
    assert not [c for c in cells if c["arch"] == "transformer" and c["impl"] == "scratch"]


def test_cell_config_merges_task_axis_and_value_overrides(tmp_path):
    m = quality.load_matrix(_write(tmp_path, MINI))
    cells = {c["cell_id"]: c for c in quality.plan(m, "cpu", None)}
    assert len(cells) == 5  # 2 impl × 2 reg for lstm, 1 transformer
    model, train, _ = quality.cell_config(m, cells["hn/arch=lstm/impl=scratch/reg=awd/s0/cpu"])
    assert model == {
        "hidden_size": 8,
        "num_layers": 1,
        "dropout": 0.4,
        "tie": True,
        "arch": "lstm",
        "impl": "scratch",
        "packed": False,
    }
    assert train["wd"] == 0.1 and train["alpha"] == 2.0 and train["lr"] == 1e-2
    model, _, _ = quality.cell_config(m, cells["hn/arch=transformer/impl=builtin/reg=none/s0/cpu"])
    assert model["num_heads"] == 2 and "dropout" not in model


def test_k_selects_cells(tmp_path):
    m = quality.load_matrix(_write(tmp_path, MINI))
    ids = [c["cell_id"] for c in quality.plan(m, "cpu", "lstm and reg=awd")]
    assert ids == [
        "hn/arch=lstm/impl=scratch/reg=awd/s0/cpu",
        "hn/arch=lstm/impl=builtin/reg=awd/s0/cpu",
    ]
    assert quality.plan(m, "cpu", "gru") == []


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('kind = "quality"', 'kind = "recipes"', "'kind'"),
        ('loop = "human_numbers"', 'loop = "nope"', "tasks.hn.loop"),
        ('arch = ["lstm", "transformer"]', 'arch = ["lstm", "tcn"]', "tasks.hn.axes.arch"),
        ("reg = [", "regularizer = [", "tasks.hn.axes.regularizer"),
        ('goal = "max"', 'goal = "up"', "tasks.hn.goal"),
        ("target = 0.01", 'target = "high"', "tasks.hn.target"),
        ("seeds = [0]", "seeds = []", "'seeds'"),
        ('"arch=transformer and reg=awd"]', '"arch=transformer and (reg=awd"]', "exclude[1]"),
        ('exclude = ["arch', 'exclude = ["task=hn", "arch', "'tasks'"),
        ("[tasks.hn.reg.awd]\n", "[tasks.hn.reg.awd]\nloss = 1\n", "tasks.hn.reg.awd"),
    ],
)
def test_malformed_matrix_names_file_and_key(tmp_path, old, new, key):
    assert old in MINI
    path = _write(tmp_path, MINI.replace(old, new, 1))
    with pytest.raises(quality.QualityError) as e:
        quality.load_matrix(path)
    assert str(path) in str(e.value) and key in str(e.value)


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(quality.QualityError, match="not valid TOML"):
        quality.load_matrix(_write(tmp_path, "kind = "))
    with pytest.raises(quality.QualityError, match="no such matrix file"):
        quality.load_matrix(tmp_path / "absent.toml")


def test_time_to_target_reads_the_curve_with_its_clock():
    result = {
        "curves": {"epochs": [{"accuracy": 0.2}, {"accuracy": 0.5}, {"accuracy": 0.4}]},
        "timing": {"epochs": [1.0, 2.5, 4.0]},
    }
    pts = quality.curve_points(result, "accuracy")
    assert pts == [(1.0, 0.2), (2.5, 0.5), (4.0, 0.4)]
    assert quality.time_to_target(pts, 0.45, "max") == 2.5
    assert quality.time_to_target(pts, 0.6, "max") is None
    assert quality.time_to_target(pts, 0.3, "min") == 1.0
    ag = {
        "curves": {"running_accuracy": [(16, 0.1), (32, 0.7)]},
        "timing": {"running_accuracy": [0.5, 0.9]},
    }
    assert quality.time_to_target(quality.curve_points(ag, "running_accuracy"), 0.6, "max") == 0.9


def _records(tmp_path: Path, run_id: str) -> dict[str, dict]:
    return {r["cell_id"]: r for r in ResultStore(tmp_path / run_id).latest()}


def test_run_is_deterministic_resumes_and_records_failures(tmp_path):
    text = MINI + "\n[tasks.hn.impl.scratch]\nmodel = { hidden_size = -1 }\n"  # cannot build
    path = _write(tmp_path, text)
    ok, failed = quality.run(
        "a", results_dir=tmp_path, matrix_path=path, limits=TINY, echo=lambda *_: None
    )
    assert (ok, failed) == (3, 2)
    recs = _records(tmp_path, "a")
    bad = recs["hn/arch=lstm/impl=scratch/reg=none/s0/cpu"]
    assert bad["status"] == "failed" and "negative dimension" in bad["error"]
    good = recs["hn/arch=lstm/impl=builtin/reg=awd/s0/cpu"]
    assert good["status"] == "ok" and good["config"]["model"]["tie"] is True
    for key in ("git_commit", "torch_version", "torch_threads", "device_name"):
        assert key in good["provenance"]

    # same seed, same metrics and curves
    quality.run(
        "b", results_dir=tmp_path, matrix_path=path, limits=TINY, k="builtin", echo=lambda *_: None
    )
    again = _records(tmp_path, "b")
    for cid, rec in again.items():
        assert rec["metric"] == recs[cid]["metric"]
        assert rec["result"]["curves"] == recs[cid]["result"]["curves"]

    # a rerun skips finished cells and retries only the failed ones
    lines_before = (tmp_path / "a" / "results.jsonl").read_text().count("\n")
    ok2, failed2 = quality.run(
        "a", results_dir=tmp_path, matrix_path=path, limits=TINY, echo=lambda *_: None
    )
    assert (ok2, failed2) == (0, 2)
    assert (tmp_path / "a" / "results.jsonl").read_text().count("\n") == lines_before + 2


def test_report_is_built_from_the_records(tmp_path):
    path = _write(tmp_path, MINI)
    quality.run("r", results_dir=tmp_path, matrix_path=path, limits=TINY, echo=lambda *_: None)
    out = quality.report("r", results_dir=tmp_path, out_dir=tmp_path / "rep", matrix_path=path)
    text = out.read_text()
    recs = _records(tmp_path, "r")
    rec = recs["hn/arch=lstm/impl=builtin/reg=awd/s0/cpu"]
    assert f"{rec['metric']:.3f}" in text
    assert "Scratch against built-in" in text and "## Findings" in text
    assert "the best Transformer" in text
    assert (tmp_path / "rep" / "quality_hn.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no quality results"):
        quality.report("empty", results_dir=tmp_path, out_dir=tmp_path / "x", matrix_path=path)


def test_cli_exit_codes(tmp_path, capsys):
    path = _write(tmp_path, MINI)
    assert bench_main(["quality", "--matrix", str(path), "--list"]) == 0
    assert "hn/arch=transformer" in capsys.readouterr().out
    assert bench_main(["quality", "--matrix", str(path), "-k", "(lstm"]) == 2
    assert (
        bench_main(["quality", "--matrix", str(path), "-k", "gru", "--results-dir", str(tmp_path)])
        == 2
    )
    assert bench_main(["quality", "--matrix", str(tmp_path / "nope.toml")]) == 2
    assert bench_main(["quality", "--matrix", str(path), "--device", "tpu"]) == 2
    assert bench_main(["run", "--matrix", str(quality.MATRIX), "--list"]) == 2
    assert "bench quality" in capsys.readouterr().err


def test_records_are_json_lines(tmp_path):
    path = _write(tmp_path, MINI)
    quality.run(
        "j",
        results_dir=tmp_path,
        matrix_path=path,
        limits=TINY,
        k="transformer",
        echo=lambda *_: None,
    )
    lines = (tmp_path / "j" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["kind"] == "quality"


def test_ptb_loop_is_deterministic_and_reports_perplexity():
    import math

    from rnnsuite.data import fetch
    from rnnsuite.recipes.tasks import TASKS

    try:
        fetch.locate("ptb", "ptb.train.txt")
    except fetch.DataError:
        pytest.skip("PTB is not on this machine")
    model = {"arch": "lstm", "impl": "scratch", "hidden_size": 8, "num_layers": 1}
    train = {"bs": 4, "bptt": 5, "epochs": 1, "lr": 3e-3, "wd": 0.01}
    limits = {"max_batches": 3, "valid_batches": 2}
    a = TASKS["ptb"](model, train, seed=0, device="cpu", limits=limits)
    b = TASKS["ptb"](model, train, seed=0, device="cpu", limits=limits)
    assert a["metrics"] == b["metrics"] and a["curves"] == b["curves"]
    assert a["metrics"]["train_batches"] == 3
    assert a["metrics"]["valid_ppl"] == pytest.approx(math.exp(a["metrics"]["valid_loss"]))
    assert a["curves"]["epochs"][0]["valid_ppl"] == pytest.approx(a["metrics"]["valid_ppl"])
