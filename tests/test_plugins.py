"""Bring your own architecture: a plugin file, and nothing under bench/ or rnnsuite/ edited.

The trial of issue 16, repeated: a user's minimal gated unit (examples/custom_cell.py),
copied to a directory outside the package, runs through a throughput cell, a quality cell
and both reports from there; a plugin with a built-in twin is parity-checked, and one
whose maths differs fails its cells at phase parity while the rest run on.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import rnnsuite
from bench import plugins
from bench.throughput.runner import run
from helpers import human_numbers_matrix

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "custom_cell.py"

THROUGHPUT = """
name = "mine"
description = "a user's own cell"
seeds = [0]
[fixed]
device = "cpu"
threads = 1
warmup = 0
repeats = 3
det_steps = 1
size = "tiny"
[[blocks]]
name = "mine"
axes = { arch = ["ARCH"], impl = ["scratch", "scratch_torch"], input = ["padded", "packed"] }
"""

QUALITY = human_numbers_matrix(
    "mine-quality", '{ arch = ["mgu"], impl = ["scratch"] }', hidden=16, batches=3, valid_batches=2
)


def _bench(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=cwd, env=full, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_a_plugin_from_outside_runs_in_throughput_quality_and_reports(tmp_path):
    outside = tmp_path / "my_project"
    outside.mkdir()
    plugin = outside / "my_cell.py"
    shutil.copy(EXAMPLE, plugin)
    (outside / "mine.toml").write_text(THROUGHPUT.replace("ARCH", "mgu"))
    (outside / "mine-quality.toml").write_text(QUALITY)

    r = _bench(
        ["run", "--plugin", "my_cell.py", "--matrix", "mine.toml", "--run-id", "t",
         "--results-dir", "res", "--report", "-q"],
        outside,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    recs = _records(outside / "res" / "t" / "results.jsonl")
    assert len(recs) == 4 and {x["status"] for x in recs} == {"ok"}, recs
    assert all(x["arch_source"]["sha256"] for x in recs)
    assert recs[0]["provenance"]["plugins"] == {str(plugin.resolve()): ["mgu"]}
    page = (outside / "reports" / "t" / "README.md").read_text()
    assert "| mgu scratch padded" in page and "| mgu scratch_torch packed" in page

    # the same plugin through the environment, for the quality study
    r = _bench(
        ["quality", "--matrix", "mine-quality.toml", "--run-id", "q", "--results-dir", "res",
         "--out", "qreport"],
        outside, RNNSUITE_PLUGINS="my_cell.py",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    (q,) = _records(outside / "res" / "q" / "results.jsonl")
    assert q["status"] == "ok" and 0.0 <= q["metric"] <= 1.0, q
    assert "| mgu | scratch |" in (outside / "qreport" / "README.md").read_text()


def test_plugin_errors_name_the_fix(tmp_path):
    r = _bench(["list", "--plugin", "missing.py"], tmp_path)
    assert r.returncode == 2 and "plugin file 'missing.py' not found" in r.stderr
    (tmp_path / "empty.py").write_text("x = 1\n")
    r = _bench(["list", "--plugin", "empty.py"], tmp_path)
    assert r.returncode == 2 and "registered no architecture" in r.stderr
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    r = _bench(["list", "--plugin", "broken.py"], tmp_path)
    assert r.returncode == 2 and "failed to import: RuntimeError: boom" in r.stderr
    r = _bench(["list", "--plugin", "no_such_module_xyz"], tmp_path)
    assert r.returncode == 2 and "plugin module 'no_such_module_xyz' not found" in r.stderr


def test_an_unknown_architecture_is_a_matrix_error_that_names_the_registry(tmp_path):
    (tmp_path / "m.toml").write_text(THROUGHPUT.replace("ARCH", "mgu_not_loaded"))
    r = _bench(["list", "--matrix", "m.toml"], tmp_path)
    assert r.returncode == 2 and "unknown value 'mgu_not_loaded'" in r.stderr


# -- in process: a twin, a wrong twin, a changed plugin --------------------------------------
TWIN = """
import torch
import rnnsuite
from rnnsuite.cells import Cell


class PlainCell(Cell):
    gates = 1

    def step_fn(self, weight_hh=None):
        w = (self.recurrent_weight() if weight_hh is None else weight_hh).t()
        return lambda xp, state: (torch.SCALE * torch.tanh(xp + state[0] @ w),)


rnnsuite.register(rnnsuite.Architecture(
    "NAME", PlainCell, torch.nn.RNN, "an Elman RNN of my own", pointwise=3), replace=True)
"""


def _twin_plugin(tmp_path: Path, name: str, scale: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(TWIN).replace("NAME", name).replace("torch.SCALE", scale))
    return path


@pytest.fixture
def restore_registry():
    before = dict(rnnsuite.registry._REGISTRY)
    yield
    rnnsuite.registry._REGISTRY.clear()
    rnnsuite.registry._REGISTRY.update(before)
    plugins._LOADED.clear()
    plugins._SOURCES.clear()


def test_a_declared_twin_is_parity_checked(tmp_path, restore_registry):
    plugins.load(str(_twin_plugin(tmp_path, "myrnn", "1.0")))
    plugins.load(str(_twin_plugin(tmp_path, "wrongrnn", "1.01")))  # 1% off its twin
    matrix = tmp_path / "m.toml"
    text = THROUGHPUT.replace('["ARCH"]', '["myrnn", "wrongrnn"]').replace(
        '"scratch_torch"]', '"scratch_torch", "builtin"]'
    )
    matrix.write_text(text.replace("repeats = 3", "timing = false"))
    s = run(str(matrix), run_id="p", results_dir=tmp_path / "res", quiet=True)
    recs = {(x["cell"]["arch"], x["cell"]["impl"], x["cell"]["input"]): x
            for x in _records(tmp_path / "res" / "p" / "results.jsonl")}  # fmt: skip
    assert s.exit_code == 1 and len(recs) == 12
    for key, rec in recs.items():
        if key[1] == "builtin":  # the twin itself: measured, nothing to compare with
            assert rec["status"] == "ok" and "parity" not in rec, rec
        elif key[0] == "myrnn":
            assert rec["status"] == "ok" and rec["parity"]["out"] < 1e-5, rec
        else:
            assert rec["status"] == "failed" and rec["error_phase"] == "parity", rec
            assert "differs from its built-in twin (RNN)" in rec["error"]


def test_a_resumed_run_measures_again_what_changed_plugin_code_made(tmp_path, restore_registry):
    path = _twin_plugin(tmp_path, "myrnn", "1.0")
    plugins.load(str(path))
    matrix = tmp_path / "m.toml"
    matrix.write_text(THROUGHPUT.replace("ARCH", "myrnn").replace("repeats = 3", "timing = false"))
    run(str(matrix), run_id="r", results_dir=tmp_path / "res", quiet=True)
    again = run(str(matrix), run_id="r", results_dir=tmp_path / "res", quiet=True)
    assert again.already_done == 4  # same code: nothing to redo
    path.write_text(path.read_text() + "\n# edited\n")
    plugins._LOADED.clear()
    plugins.load(str(path))
    changed = run(str(matrix), run_id="r", results_dir=tmp_path / "res", quiet=True)
    assert changed.already_done == 0  # the records came from other code


def test_register_checks_its_input(restore_registry):
    arch = rnnsuite.architecture("gru")
    with pytest.raises(ValueError, match="already registered"):
        rnnsuite.register(arch)
    with pytest.raises(ValueError, match="lower-case letters"):
        rnnsuite.register(rnnsuite.Architecture("My-Cell", arch.scratch, None, "x"))
    with pytest.raises(TypeError, match="scratch must be a Cell subclass"):
        rnnsuite.register(rnnsuite.Architecture("mine", torch.nn.Linear, None, "x"))
    with pytest.raises(ValueError, match="cost 'flops'"):
        rnnsuite.register(rnnsuite.Architecture("mine", arch.scratch, None, "x", cost="flops"))


def test_the_example_cell_is_a_drop_in_network(restore_registry):
    plugins.load(str(EXAMPLE))
    m = rnnsuite.build("mgu", input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    assert [n for n, _ in m.named_parameters()][:4] == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"
    ]  # fmt: skip
    assert m.weight_ih_l0.shape == (8, 3) and m.weight_hh_l1_reverse.shape == (8, 4)
    x = torch.randn(5, 2, 3)
    out, h = m(x)
    assert out.shape == (5, 2, 8) and h.shape == (4, 2, 4)
    # the MGU's maths, by hand, for the first layer's forward direction
    W, U, b = m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0 + m.bias_hh_l0
    one = rnnsuite.build("mgu", input_size=3, hidden_size=4)
    one.load_state_dict({k: v for k, v in m.state_dict().items() if k.endswith("_l0")})
    h = torch.zeros(2, 4)
    for t in range(5):
        g = x[t] @ W.t() + b
        f = torch.sigmoid(g[:, :4] + h @ U[:4].t())
        cand = torch.tanh(g[:, 4:] + (f * h) @ U[4:].t())
        h = (1 - f) * h + f * cand
    torch.testing.assert_close(one(x)[1][0], h, rtol=1e-5, atol=1e-6)
    twin = rnnsuite.build("mgu", "scratch_torch", input_size=3, hidden_size=4)
    twin.load_state_dict(one.state_dict())
    torch.testing.assert_close(twin(x)[0], one(x)[0])


def test_a_quality_cell_asking_for_a_missing_twin_is_a_matrix_error(tmp_path, restore_registry):
    from bench.quality import study as quality

    plugins.load(str(EXAMPLE))
    path = tmp_path / "q.toml"
    path.write_text(QUALITY.replace('impl = ["scratch"]', 'impl = ["scratch", "builtin"]'))
    with pytest.raises(quality.QualityError, match=r"'mgu' has no implementation 'builtin'.*"
                       r'exclude = \["arch=mgu and impl=builtin"\]'):  # fmt: skip
        quality.load_matrix(path)
    fixed = QUALITY.replace('impl = ["scratch"]', 'impl = ["scratch", "builtin"]').replace(
        "limits = ", 'exclude = ["arch=mgu and impl=builtin"]\nlimits = '
    )
    path.write_text(fixed)
    assert len(quality.plan(quality.load_matrix(path), "cpu", None)) == 1
