"""scripts/cuda-check: the dry run packs what a lent GPU machine can send back, a failing
or slow step is recorded while the rest run, and the pieces (time limits, pack limits,
the dry-run matrix, the data pack) do what they say."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from bench import cli as bench_cli
from bench.cudacheck import cli, datapack, pack, proc, steps, tiny
from bench.throughput import matrix
from bench.throughput.cells import expand

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "cuda-check"
FILES = {
    "summary.md",
    "env.json",
    "steps.jsonl",
    "results.jsonl",
    "recipes.jsonl",
    "log.txt",
    "cuda-check.tar.gz",
}


def _tree(*dirs: str) -> dict[str, float]:
    out = {}
    for d in dirs:
        for p in (REPO / d).rglob("*"):
            out[str(p)] = p.stat().st_mtime
    return out


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _script(*args: str, env: dict[str, str], timeout: float = 240):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def packed_data(tmp_path_factory) -> Path:
    """The datasets the steps read, packed the way a lent machine gets them."""
    dest = tmp_path_factory.mktemp("data")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = _script("--pack-data", str(dest), env=env, timeout=120)
    if r.returncode != 0:
        pytest.skip(f"the datasets are not on this machine: {r.stderr.strip()}")
    return dest


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RNNSUITE_")}
    return {**env, "RNNSUITE_DATA": str(data), "PYTHONPATH": str(REPO)}


def _assert_within_limits(out: Path) -> None:
    files = [p for p in out.rglob("*") if not p.is_dir()]
    assert 0 < len(files) <= 8
    for p in files:
        rel = p.relative_to(out)
        assert p.is_file() and not p.is_symlink()
        assert p.stat().st_size < 16 * 1024 * 1024, rel
        assert len(rel.parts) - 1 <= 2, rel
        assert all(re.fullmatch(r"[A-Za-z0-9._-]+", part) for part in rel.parts), rel


@pytest.mark.slow
def test_dry_run_packs_every_step_within_the_limits(tmp_path, packed_data):
    before = _tree("results", "reports")
    out, work = tmp_path / "out", tmp_path / "work"
    r = _script("--dry-run", str(out), "--work-dir", str(work), env=_env(packed_data))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        len(re.findall(r"\[cuda-check\] \d/7 \S+: ok in [\d.]+s \(\d+s elapsed\)", r.stdout)) == 7
    )
    folder = out / "cuda-check"
    assert {p.name for p in folder.iterdir()} == FILES
    _assert_within_limits(out)
    assert pack.check_limits(out) == []

    recs = _jsonl(folder / "steps.jsonl")
    assert [s["step"] for s in recs] == list(steps.NAMES)
    assert {s["status"] for s in recs} == {"ok"}
    cells = _jsonl(folder / "results.jsonl")
    assert cells and {c["status"] for c in cells} == {"ok"}
    compiled = [c for c in cells if c["cell"]["impl"] == "compiled"]
    assert compiled and compiled[0]["ratios"]["train"]["vs_scratch"]["n"] >= 3
    recipes = _jsonl(folder / "recipes.jsonl")
    assert sorted(c["cell"]["recipe"] for c in recipes) == sorted(steps.RECIPES)
    assert {c["status"] for c in recipes} == {"ok"}
    env = json.loads((folder / "env.json").read_text())
    assert env["provenance"]["torch_version"] == torch.__version__ and env["source_digest"]

    run = cells[0]["run_id"]
    with tarfile.open(folder / "cuda-check.tar.gz") as tar:
        names = set(tar.getnames())
    for name in (
        f"results/{run}/results.jsonl",
        f"results/{run}/cuda-check/env.json",
        f"results/{run}/cuda-check/pytest.xml",
        f"results/{run}-recipes/results.jsonl",
        f"reports/{run}/README.md",
        f"reports/{run}-recipes/README.md",
    ):
        assert name in names
    assert any(n.endswith(".png") for n in names)
    summary = (folder / "summary.md").read_text()
    assert "| matrix-compiled | ok |" in summary and "| hn_lmmodel7-s0-cpu | ok |" in summary
    assert _tree("results", "reports") == before  # nothing written into the repository


def test_a_failing_step_is_recorded_and_the_next_still_runs(tmp_path, packed_data):
    out = tmp_path / "out"
    args = ["--dry-run", str(out), "--work-dir", str(tmp_path / "w")]
    r = _script(
        *args, "--steps", "env,tests,recipes", "--inject-fail", "tests", env=_env(packed_data)
    )
    assert r.returncode == 1, r.stdout + r.stderr
    recs = {s["step"]: s for s in _jsonl(out / "cuda-check" / "steps.jsonl")}
    assert [recs[s]["status"] for s in ("env", "tests", "recipes")] == ["ok", "failed", "ok"]
    assert "injected failure" in recs["tests"]["note"]
    assert {c["status"] for c in _jsonl(out / "cuda-check" / "recipes.jsonl")} == {"ok"}
    assert "| tests | failed |" in (out / "cuda-check" / "summary.md").read_text()
    _assert_within_limits(out)


def test_a_step_past_its_limit_is_stopped(tmp_path):
    log = tmp_path / "log"
    # each child writes `done` only if it is left to finish its sleep: it must not be
    done = tmp_path / "done"
    finish = f"; open({str(done)!r}, 'w').close()"
    slow = [sys.executable, "-c", "import time; time.sleep(60)" + finish]
    got = proc.run(slow, log=log, env=dict(os.environ), cwd=tmp_path, timeout_s=0.5)
    assert got.status == "timeout" and got.rc != 0 and not done.exists()  # SIGINT stopped it
    assert "stopped after its limit" in log.read_text()
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    got = proc.run(
        [sys.executable, "-c", stubborn + finish],
        log=log,
        env=dict(os.environ),
        cwd=tmp_path,
        timeout_s=0.5,
        grace_s=0.5,
    )
    # SIGINT ignored: SIGKILL after the grace period
    assert got.status == "timeout" and got.rc == -signal.SIGKILL and not done.exists()
    missing = proc.run(["/nonexistent/x"], log=log, env={}, cwd=tmp_path, timeout_s=1)
    assert missing.status == "failed" and "cannot start" in log.read_text()


def test_the_budget_keeps_the_later_steps_floors(tmp_path):
    plan = steps.Plan(REPO, tmp_path, "r", dry=False)
    todo = steps.steps(plan)
    assert sum(steps.CAPS[s.name][1] + proc.GRACE_S for s in todo) < steps.BUDGET_S["cuda"]
    first = steps.limit_for(todo, 0, steps.BUDGET_S["cuda"], proc.GRACE_S)
    assert first == todo[0].cap_s
    reserve = sum(s.floor_s + proc.GRACE_S for s in todo[3:])
    assert steps.limit_for(todo, 2, 200, proc.GRACE_S) == 200 - reserve - proc.GRACE_S


def test_steps_without_time_are_skipped_and_still_packed(tmp_path):
    out = tmp_path / "out"
    args = ["--dry-run", str(out), "--work-dir", str(tmp_path / "w"), "--budget-s", "1"]
    assert cli.main([*args, "--steps", "env,report"]) == 1
    recs = _jsonl(out / "cuda-check" / "steps.jsonl")
    assert [r["status"] for r in recs] == ["skipped", "skipped"]
    assert "no time left" in recs[0]["note"]
    assert (out / "cuda-check" / "cuda-check.tar.gz").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a CPU-only host")
def test_without_a_gpu_the_real_run_says_so(tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main([str(out), "--work-dir", str(tmp_path / "w"), "--steps", "env,tests"]) == 2
    assert "--dry-run rehearses" in capsys.readouterr().err
    recs = _jsonl(out / "cuda-check" / "steps.jsonl")
    assert recs[0]["rc"] == 3 and recs[1]["status"] == "skipped"
    assert recs[1]["note"] == "no CUDA device"


def test_bad_usage_exits_2(tmp_path, capsys):
    assert cli.main([]) == 2
    assert cli.main([str(tmp_path), "--steps", "tests,nope"]) == 2
    assert "choose from env,tests" in capsys.readouterr().err.replace(", ", ",")
    assert bench_cli.main(["reproduce", "--limit", "epochs=0"]) == 2
    assert bench_cli.main(["reproduce", "--limit", "steps=3"]) == 2
    assert "KEY one of epochs, max_batches" in capsys.readouterr().err
    assert bench_cli.parse_limits(["epochs=1", "num_train=64"]) == {"epochs": 1, "num_train": 64}


def test_pack_limits_are_checked(tmp_path, monkeypatch):
    for i in range(9):
        (tmp_path / f"f{i}.txt").write_text("x")
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "deep.txt").write_text("x")
    (tmp_path / "bad name!.txt").write_text("x")
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    problems = "\n".join(pack.check_limits(tmp_path))
    assert "12 files, more than 8" in problems
    assert "big.bin: 16777216 bytes" in problems
    assert "deep.txt: more than 2 folders deep" in problems
    assert "bad name!.txt: a name outside" in problems

    src = tmp_path / "rep"
    src.mkdir()
    (src / "plot.png").write_bytes(os.urandom(200_000))
    (src / "README.md").write_text("report")
    monkeypatch.setattr(pack, "MAX_BYTES", 1024 * 1024 + 100_000)
    path, dropped = pack.write_tar(tmp_path / "t.tar.gz", [(src, "reports/r")])
    with tarfile.open(path) as tar:
        assert dropped and tar.getnames() == ["reports/r", "reports/r/README.md"]


def test_the_dry_matrix_is_the_cuda_matrix_on_the_cpu(tmp_path):
    cuda = matrix.load("cuda")
    dry = matrix.load(str(tiny.write(tmp_path / "dry.toml")))
    assert [b.name for b in dry.blocks] == [b.name for b in cuda.blocks]
    cells = expand(dry)
    assert {c.device for c in cells} == {"cpu"} and {c.spec for c in cells} == {tiny.TINY}
    assert [c.arch for c in cells if c.impl == "compiled"] == ["rnn"]
    others = {(c.arch, c.impl, c.input) for c in cells if c.impl != "compiled"}
    assert others == _grid(("scratch", "builtin"))
    assert tiny.compiled_blocks(tiny.SOURCE) == ["bars", "fastrnns"]
    assert steps.compiled_pick(steps.Plan(REPO, tmp_path, "r", dry=False)) == (
        "block=bars or block=fastrnns"
    )


SHAPES = {  # (spec, layers): whether compiled is measured there
    ("T64-B64-I256-H256", 1): True,  # the bars
    ("T100-B64-I512-H512", 1): True,  # fastrnns
    ("T50-B16-I64-H32", 1): False,  # AG News
    ("T16-B64-I64-H64", 2): False,  # Human Numbers
    ("T35-B20-I200-H200", 2): False,  # PTB
    ("T32-B1024-I28-H32", 1): False,  # Time Machine
    ("T9-B128-I256-H256", 2): False,  # seq2seq
    ("T50-B64-I1024-H1024", 1): False,  # DeepBench-like
}


def _grid(impls: tuple[str, ...]) -> set[tuple[str, str, str]]:
    return {(a, i, p) for a in ("lstm", "gru", "rnn") for i in impls for p in ("padded", "packed")}


def test_the_cuda_matrix_covers_what_the_issue_lists():
    cells = expand(matrix.load("cuda"), check_devices=False)
    assert {c.device for c in cells} == {"cuda"}
    assert {(c.spec, c.layers) for c in cells} == set(SHAPES)
    for shape, compiled in SHAPES.items():
        got = {(c.arch, c.impl, c.input) for c in cells if (c.spec, c.layers) == shape}
        assert got == _grid(("scratch", "builtin", "compiled")[: 3 if compiled else 2]), shape
    assert all(c.settings["budget_s"] > 0 for c in cells)


def test_data_pack_and_data_root(tmp_path, monkeypatch):
    assert datapack.needed_files(steps.RECIPES) == ["ag_news/test.csv", "fra_eng/fra.txt"]
    with pytest.raises(datapack.DataPackError, match="add its task 'time_machine'"):
        datapack.needed_files(("tm_lstm_scratch",))
    packed, shared = tmp_path / "packed", tmp_path / "shared"
    monkeypatch.setattr(datapack, "PACKED", packed)
    monkeypatch.setattr(datapack, "SHARED", shared)
    assert datapack.data_root({}) is None
    shared.mkdir()
    assert datapack.data_root({}) == str(shared)
    packed.mkdir()
    assert datapack.data_root({}) == str(packed)  # .cuda-data wins over ../shared/data
    assert datapack.data_root({"RNNSUITE_DATA": "/x"}) == "/x"
    monkeypatch.delenv("RNNSUITE_DATA", raising=False)
    with pytest.raises(datapack.DataPackError, match=r"ag_news/test\.csv is in neither"):
        datapack.pack(tmp_path / "dest", ("mt_seq2seq",))
