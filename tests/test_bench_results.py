"""Results store, runner and CLI: appends, torn lines, resume after kill -9, failed and
skipped cells, provenance fields, exit codes. Uses a tiny matrix (T=4, B=3, I=H=4)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cli
from bench.study.results import ResultsError, ResultStore, resolve_run
from bench.throughput.runner import UsageError, run

REPO = Path(__file__).resolve().parent.parent

TINY = """
name = "tiny"
seeds = [0]
[fixed]
size = "T4-B3-I4-H4"
lengths = "uniform"
threads = 1  # steady on a shared machine: no waiting on a busy second core
warmup = 0
repeats = 2
det_steps = 2
[[blocks]]
name = "main"
axes = { arch = ["lstm", "gru", "rnn", "gru_cho"], impl = ["scratch", "builtin"], input = ["padded", "packed"] }
"""

PROVENANCE_FIELDS = {
    "runtime_env",
    "device",
    "device_name",
    "cpu_model",
    "cpu_count",
    "torch_threads",
    "torch_version",
    "cuda_version",
    "python",
    "platform",
    "git_commit",
    "git_dirty",
    "run_started_at",
    "injected_slowdown",
}


@pytest.fixture
def tiny(tmp_path) -> Path:
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _rec(cell_id: str, status: str = "ok", **extra) -> dict:
    """A minimal record of the store's schema."""
    cell = dict(arch="rnn", impl="scratch", device="cpu", input="padded", reg="none", size="t")
    cell |= dict(lengths="full", optimizer="none", block="b", bidirectional=False)
    cell |= dict.fromkeys(("layers", "T", "B", "I", "H", "threads"), 1) | {"seed": 0}
    return {"schema": 1, "cell_id": cell_id, "status": status, "cell": cell, **extra}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- the store ---------------------------------------------------------------------------------
def test_append_and_read_back(tmp_path):
    s = ResultStore(tmp_path / "r")
    s.append(_rec("a", x=1.5))
    s.append(_rec("b", "failed", error="boom"))
    s.append(_rec("a", x=2.5))
    assert [r["cell_id"] for r in s.records()] == ["a", "b", "a"]
    assert [(r["cell_id"], r.get("x")) for r in s.latest()] == [("a", 2.5), ("b", None)]
    assert s.finished_ids() == {"a", "b"}
    assert s.finished_ids(retry_failed=True) == {"a"}


def test_torn_last_line_is_skipped_then_repaired(tmp_path):
    s = ResultStore(tmp_path / "r")
    s.append(_rec("a"))
    with open(s.results_path, "ab") as f:  # what a kill in the middle of a write leaves
        f.write(b'{"cell_id": "b", "sta')
    assert [r["cell_id"] for r in s.records()] == ["a"]
    assert s.skipped_lines == 1
    s.append(_rec("c"))
    text = s.results_path.read_text()
    assert text.endswith("\n") and '"sta\n' not in text and "sta{" not in text
    assert [r["cell_id"] for r in _lines(s.results_path)] == ["a", "c"]


def test_manifest_is_replaced_atomically(tmp_path):
    s = ResultStore(tmp_path / "r")
    s.write_manifest({"run_id": "r", "n": 1})
    s.write_manifest({"run_id": "r", "n": 2})
    assert s.read_manifest()["n"] == 2
    assert [p.name for p in s.dir.iterdir()] == ["run.json"]  # no temporary left behind


def test_resolve_run(tmp_path):
    with pytest.raises(ResultsError, match="no runs"):
        resolve_run(tmp_path, "latest")
    ResultStore(tmp_path / "one").append(_rec("a"))
    assert resolve_run(tmp_path, "latest").run_id == "one"
    assert resolve_run(tmp_path, str(tmp_path / "one")).run_id == "one"
    with pytest.raises(ResultsError, match="runs there: one"):
        resolve_run(tmp_path, "two")
    with pytest.raises(ResultsError, match="bad run id"):
        resolve_run(tmp_path, "../x")


# -- running -----------------------------------------------------------------------------------
def test_run_records_everything_and_resumes(tiny, tmp_path):
    res = tmp_path / "results"
    s = run(str(tiny), run_id="r1", results_dir=res, quiet=True)
    assert (s.ok, s.failed, s.skipped) == (14, 0, 0)
    recs = _lines(res / "r1" / "results.jsonl")
    assert len(recs) == 14 and len({r["cell_id"] for r in recs}) == 14
    for r in recs:
        assert r["status"] == "ok"
        assert set(r["provenance"]) >= PROVENANCE_FIELDS, r["provenance"].keys()
        assert r["cell"]["seed"] == 0 and r["run_id"] == "r1" and r["started_at"]
        assert r["determinism"]["repeat_identical"] is True
        assert r["flops"]["train"] == 3 * r["flops"]["fwd"] > 0
        assert r["memory"]["saved_bytes"] > 0
        assert 0 <= r["workload"]["padding_fraction"] < 1
        for mode in ("fwd", "train"):
            t = r["timing"][mode]
            # timings are recorded and consistent with each other; their values are not judged
            assert t["n"] == 2 and len(t["times_s"]) == 2
            assert t["tokens_per_s"] == r["workload"]["tokens_valid"] / t["median_s"]
            assert f"{mode}_fraction" in r["flops"]
        if r["cell"]["impl"] == "scratch" and r["cell"]["arch"] != "gru_cho":
            assert "vs_builtin" in r["ratios"]["train"]
        if r["cell"]["input"] == "packed":
            assert "vs_padded" in r["ratios"]["fwd"]
    assert recs[0]["provenance"]["torch_threads"] >= 1
    manifest = json.loads((res / "r1" / "run.json").read_text())
    assert manifest["matrix"]["name"] == "tiny" and len(manifest["cell_ids"]) == 14

    again = run(str(tiny), run_id="r1", results_dir=res, quiet=True)
    assert again.already_done == 14 and again.ok == 0
    assert len(_lines(res / "r1" / "results.jsonl")) == 14

    with pytest.raises(UsageError, match="started with matrix 'tiny'"):
        run("gate", run_id="r1", results_dir=res, quiet=True)


def test_deterministic_quantities_repeat_across_runs(tiny, tmp_path):
    a = run(str(tiny), k="lstm and scratch", run_id="a", results_dir=tmp_path, quiet=True)
    b = run(str(tiny), k="lstm and scratch", run_id="b", results_dir=tmp_path, quiet=True)
    ra, rb = (ResultStore(s.directory).latest() for s in (a, b))
    for x, y in zip(ra, rb, strict=True):
        assert x["determinism"]["losses"] == y["determinism"]["losses"]
        assert x["memory"]["saved_bytes"] == y["memory"]["saved_bytes"]
        assert x["flops"]["fwd"] == y["flops"]["fwd"]


def test_resume_after_kill_minus_9(tmp_path):
    toml = tmp_path / "slow.toml"
    # 8 groups with enough repeats that the run is still going when the first lands
    toml.write_text(
        TINY.replace("repeats = 2", "repeats = 25").replace(
            'axes = { arch = ["lstm", "gru", "rnn", "gru_cho"]',
            'seeds = [0, 1]\naxes = { arch = ["lstm", "gru", "rnn", "gru_cho"]',
        )
    )
    res = tmp_path / "results"
    out = res / "k" / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", "--matrix", str(toml), "--run-id", "k",
         "--results-dir", str(res), "-q"],
        cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_file() and out.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.02)
    finished_early = proc.poll() is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _lines(out)
    assert before and all(r["status"] == "ok" for r in before)
    if not finished_early:
        assert len(before) < 28
    s = run(str(toml), run_id="k", results_dir=res, quiet=True, k=None)
    assert s.already_done == len(before)
    after = _lines(out)
    ids = [r["cell_id"] for r in after]
    assert len(ids) == len(set(ids)) == 28  # every cell once, nothing lost or doubled
    assert after[: len(before)] == before  # finished cells untouched


def test_failed_and_nonfinite_cells_are_recorded_and_the_matrix_goes_on(
    tiny, tmp_path, monkeypatch
):
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "gru and builtin and packed")
    s = run(str(tiny), run_id="f", results_dir=tmp_path, quiet=True)
    assert s.failed == 1 and s.ok == 13
    recs = {r["cell_id"]: r for r in ResultStore(s.directory).latest()}
    bad = recs["gru/builtin/cpu/packed/L1/none/T4-B3-I4-H4/uniform/none/s0/t1"]
    assert bad["status"] == "failed" and "injected fault" in bad["error"]
    assert bad["error_phase"] == "build" and bad["error_kind"] == "error"
    assert "Traceback" in bad["traceback"]
    # the rest of its group is still measured, with ratios against what is left
    twin = recs["gru/scratch/cpu/packed/L1/none/T4-B3-I4-H4/uniform/none/s0/t1"]
    assert twin["status"] == "ok" and "vs_builtin" not in twin["ratios"]["train"]

    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "nan:rnn and scratch and padded")
    s = run(str(tiny), k="rnn", run_id="n", results_dir=tmp_path, quiet=True)
    bad = [r for r in ResultStore(s.directory).latest() if r["status"] == "failed"]
    assert len(bad) == 1 and bad[0]["error_kind"] == "non_finite_loss"

    # a resume skips failed cells unless asked to retry them
    monkeypatch.delenv("RNNSUITE_BENCH_INJECT_FAULT")
    assert run(str(tiny), k="rnn", run_id="n", results_dir=tmp_path, quiet=True).ok == 0
    s = run(str(tiny), k="rnn", run_id="n", results_dir=tmp_path, quiet=True, retry_failed=True)
    assert s.ok == 1 and all(r["status"] == "ok" for r in ResultStore(s.directory).latest())


def test_absent_device_is_skipped_not_failed(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr("bench.throughput.runner.present_devices", lambda: ["cpu"])
    s = run(str(tiny), k="rnn", devices=["cuda"], run_id="d", results_dir=tmp_path, quiet=True)
    assert (s.skipped, s.failed, s.ok) == (4, 0, 0)
    recs = ResultStore(s.directory).latest()
    assert all(r["status"] == "skipped" and "not present" in r["reason"] for r in recs)
    s = run(str(tiny), k="rnn", devices=["cuda"], run_id="d", results_dir=tmp_path, quiet=True)
    assert s.skipped == 0 and len(ResultStore(s.directory).records()) == 4  # no duplicates


def test_no_timing_mode_keeps_deterministic_quantities(tiny, tmp_path):
    s = run(str(tiny), k="lstm", run_id="nt", results_dir=tmp_path, quiet=True, timing=False)
    for r in ResultStore(s.directory).latest():
        assert "timing" not in r and r["determinism"]["losses"] and r["memory"]["saved_bytes"]


# -- command line ------------------------------------------------------------------------------
def test_cli_help_and_exit_codes(tiny, tmp_path, capsys):
    for cmd in ([], ["run"], ["report"], ["compare"], ["gate"], ["list"]):
        with pytest.raises(SystemExit) as e:
            cli.main([*cmd, "--help"])
        assert e.value.code == 0
    with pytest.raises(SystemExit) as e:
        cli.main(["frobnicate"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "--threads"])
    assert e.value.code == 2
    res = str(tmp_path / "res")
    assert cli.main(["run", "--matrix", "nope", "--results-dir", res]) == 2
    assert "no matrix of that name" in capsys.readouterr().err
    assert cli.main(["run", "--matrix", str(tiny), "-k", "lstm and", "--results-dir", res]) == 2
    assert cli.main(["run", "--matrix", str(tiny), "-k", "nothing", "--results-dir", res]) == 2
    assert "selects no cell" in capsys.readouterr().err
    assert cli.main(["run", "--matrix", str(tiny), "--seeds", "x", "--results-dir", res]) == 2
    assert cli.main(["run", "--matrix", str(tiny), "--device", "tpu", "--results-dir", res]) == 2
    assert cli.main(["run", "--matrix", str(tiny), "--run-id", "a/b", "--results-dir", res]) == 2
    assert cli.main(["report", "nosuchrun", "--results-dir", res]) == 2
    assert cli.main(["compare", "x", "y", "--results-dir", res]) == 2
    assert cli.main(["gate", "--baseline", str(tmp_path / "nobase"), "--results-dir", res]) == 2
    assert cli.main(["list", "--matrix", str(tiny), "-k", "rnn and packed"]) == 0
    out = capsys.readouterr().out.split()
    assert out == [
        "rnn/scratch/cpu/packed/L1/none/T4-B3-I4-H4/uniform/none/s0/t1",
        "rnn/builtin/cpu/packed/L1/none/T4-B3-I4-H4/uniform/none/s0/t1",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text('[axes]\narch = ["lstmx"]\n')
    assert cli.main(["run", "--matrix", str(bad), "--results-dir", res]) == 2
    assert "bad.toml: axes.arch[0]: unknown value 'lstmx'" in capsys.readouterr().err


def test_cli_run_exit_code_reflects_failed_cells(tiny, tmp_path, monkeypatch):
    res = str(tmp_path / "res")
    args = ["run", "--matrix", str(tiny), "-k", "rnn and padded", "-q", "--results-dir", res]
    assert cli.main([*args, "--run-id", "ok"]) == 0
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_FAULT", "rnn and builtin")
    assert cli.main([*args, "--run-id", "bad"]) == 1
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_SLOWDOWN", "scratch")
    assert cli.main([*args, "--run-id", "inj"]) == 2  # malformed injection is bad input


def test_injected_slowdown_is_recorded(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSUITE_BENCH_INJECT_SLOWDOWN", "scratch:0.25")
    s = run(str(tiny), k="rnn and padded", run_id="i", results_dir=tmp_path, quiet=True)
    for r in ResultStore(s.directory).latest():
        assert r["provenance"]["injected_slowdown"] == {"scratch": 0.25}
    manifest = json.loads((s.directory / "run.json").read_text())
    assert manifest["sessions"][-1]["injected_slowdown"] == {"scratch": 0.25}


def test_runtime_environment_is_recorded(monkeypatch):
    """Allocator and threading settings travel with every record (they move timings)."""
    from bench.study.provenance import collect, now_iso

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "4294967296")
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    env = collect("cpu", now_iso())["runtime_env"]
    assert env["MALLOC_TRIM_THRESHOLD_"] == "4294967296" and env["OMP_WAIT_POLICY"] == "passive"
    assert "MKL_NUM_THREADS" not in env and "PATH" not in env


def test_committed_schema_1_records_are_read_through_the_migration(tmp_path):
    from bench.study.schema import SCHEMA, migrate, problem

    line = (REPO / "results" / "example-cpu-malloc" / "results.jsonl").read_text().splitlines()[0]
    old = json.loads(line)
    assert old["schema"] == 1 and "kind" not in old  # as it was written, and stays
    assert problem(old) is not None  # not a record of this schema as it stands
    new = migrate(old)
    assert new["schema"] == SCHEMA == 2 and new["kind"] == "throughput" and problem(new) is None
    assert {k: v for k, v in new.items() if k not in ("schema", "kind")} == {
        k: v for k, v in old.items() if k != "schema"
    }
    recipe = {"kind": "recipe", "cell_id": "x", "status": "ok", "result": {},
              "cell": {"recipe": "r", "seed": 0, "device": "cpu"}}  # fmt: skip
    assert problem(migrate(recipe)) is None  # recipe lines from before schema 1
    committed = (REPO / "results" / "quality-cpu" / "results.jsonl").read_text().splitlines()
    quality = json.loads(committed[0])
    assert "schema" not in quality and problem(migrate(quality)) is None
    assert "schema 3" in problem(migrate({**new, "schema": 3}))  # a newer bench's: skipped
    s = ResultStore(tmp_path / "r")
    s.dir.mkdir()
    s.results_path.write_text(line + "\n")
    (rec,) = s.records()
    assert rec["kind"] == "throughput" and rec["schema"] == 2


def test_an_archived_run_reads_as_its_file_and_refuses_writes(tmp_path):
    import gzip

    s = ResultStore(tmp_path / "r")
    s.append(_rec("a", x=1.5))
    s.append(_rec("b", x=2.5))
    want = s.records()
    s.archive_path.write_bytes(gzip.compress(s.results_path.read_bytes(), mtime=0))
    s.results_path.unlink()
    archived = ResultStore(tmp_path / "r")
    assert archived.exists() and archived.records() == want
    assert resolve_run(tmp_path, "r").records() == want == resolve_run(tmp_path, "latest").records()
    with pytest.raises(ResultsError, match=r"archived .*gunzip"), archived.writer():
        pass
    archived.archive_path.write_bytes(b"not gzip")
    with pytest.raises(ResultsError, match="not a readable gzip file"):
        archived.records()


def test_a_variant_is_timed_with_its_base_and_ratioed_per_repeat(tiny, tmp_path):
    """gru_cho (a variant of gru, no built-in) runs interleaved in gru's timing group, so its
    ratio to the scratch gru is per repeat pair, not two medians from different moments; no
    ratio of either architecture's own ever reads the other's cells."""
    s = run(str(tiny), k="arch=gru or arch=gru_cho", run_id="v", results_dir=tmp_path, quiet=True)
    recs = {(r["cell"]["arch"], r["cell"]["impl"], r["cell"]["input"]): r for r in _lines(
        Path(s.directory) / "results.jsonl")}  # fmt: skip
    assert len(recs) == 6 and all(r["status"] == "ok" for r in recs.values())
    assert len({r["group"] for r in recs.values()}) == 1  # one timing group
    for inp in ("padded", "packed"):
        cho = recs[("gru_cho", "scratch", inp)]["ratios"]
        for mode in ("fwd", "train"):
            assert cho[mode]["vs_base"]["n"] == 2  # both repeats paired with gru scratch
            assert "vs_builtin" not in cho[mode]  # nn.GRU is not its twin
            gru = recs[("gru", "scratch", inp)]["ratios"][mode]
            assert "vs_base" not in gru and gru["vs_builtin"]["n"] == 2
        if inp == "packed":  # against its own padded cell, not gru's
            pad = recs[("gru_cho", "scratch", "padded")]["timing"]["train"]["times_s"]
            pk = recs[("gru_cho", "scratch", "packed")]["timing"]["train"]["times_s"]
            want = [a / b for a, b in zip(pad, pk, strict=True)]
            assert cho["train"]["vs_padded"]["median"] == pytest.approx(sum(want) / 2)
