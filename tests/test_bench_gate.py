"""The regression gate on synthetic results: deterministic checks, calibrated ratio
thresholds, the pass path, the fail paths (including a 25% slowdown of one
implementation), and `bench gate --against` / `bench compare` end to end."""

from __future__ import annotations

import copy
import json
import math
import random
import time

import pytest

from bench import cli
from bench.gate import gate
from bench.report.frame import frame
from bench.study.results import ResultStore
from bench.throughput.compare import compare_frames
from bench.throughput.timing import (
    MAX_CALLS_PER_SAMPLE,
    Timer,
    Variant,
    calls_for,
    injection_from_env,
    interleave,
    pair_ratio,
    summary,
)

ARCHS = ("lstm", "gru", "rnn")
CELL = {
    **dict(device="cpu", layers=1, bidirectional=False, reg="none", size="bars", T=64, B=64),
    **dict(I=256, H=256, lengths="agnews", optimizer="none", seed=0, threads=1, block="b"),
}


def _record(arch, impl, inp, *, ratio=1.0, padded_ratio=1.3, losses=None, saved=1000):
    cid = f"{arch}/{impl}/cpu/{inp}/L1/none/T64-B64-I256-H256/agnews/none/s0"
    ratios = {}
    for mode in ("fwd", "train"):
        r = {}
        if impl != "builtin":
            r["vs_builtin"] = {"median": ratio, "q1": ratio, "q3": ratio, "n": 9}
        if inp == "packed":
            r["vs_padded"] = {"median": padded_ratio, "q1": 1, "q3": 1, "n": 9}
        ratios[mode] = r
    return {
        "schema": 1,
        "cell_id": cid,
        "status": "ok",
        "cell": {**CELL, "arch": arch, "impl": impl, "input": inp},
        "flops": {"fwd": 100, "train": 300},
        "memory": {"saved_bytes": saved},
        "determinism": {"losses": losses or [1.0, 0.9, 0.8], "repeat_identical": True},
        "ratios": ratios,
    }


def synthetic_run(scratch_ratio=None, noise=0.0, rng=None, **kw):
    """Records of a gate-like run; scratch/built-in ratio per arch (with noise)."""
    rng = rng or random.Random(0)
    base = {"lstm": 0.85, "gru": 1.0, "rnn": 1.1}
    out = []
    for arch in ARCHS:
        for impl in ("scratch", "builtin"):
            for inp in ("padded", "packed"):
                r = (scratch_ratio or base)[arch] * math.exp(rng.gauss(0, noise))
                out.append(_record(arch, impl, inp, ratio=r, **kw))
    return out


@pytest.fixture
def calibrated():
    rng = random.Random(1)
    runs = [synthetic_run(noise=0.02, rng=rng) for _ in range(5)]
    cal = gate.calibrate([gate.ratio_stats(r) for r in runs])
    return runs[0], cal


def test_ratio_stats_are_geometric_means_per_impl_and_arch():
    recs = synthetic_run()
    recs[0]["ratios"]["fwd"]["vs_builtin"]["median"] = 0.85 * 4  # lstm scratch padded fwd
    s = gate.ratio_stats(recs)
    assert set(s) == {  # the built-in's own packed/padded ratio is torch's, not gated
        *(f"vs_builtin/scratch/{a}" for a in (*ARCHS, "all")),
        *(f"vs_padded/scratch/{a}" for a in (*ARCHS, "all")),
    }
    assert s["vs_builtin/scratch/lstm"] == pytest.approx(0.85 * 4 ** (1 / 4))
    assert s["vs_builtin/scratch/all"] == pytest.approx(
        (0.85 * 4 ** (1 / 4) * 1.0 * 1.1) ** (1 / 3)
    )
    assert s["vs_padded/scratch/gru"] == pytest.approx(1.3)
    only_lstm = gate.ratio_stats([r for r in recs if r["cell"]["arch"] == "lstm"])
    assert "vs_builtin/scratch/all" not in only_lstm  # pooling one arch adds nothing


def test_calibration_threshold_is_clamped_k_sigma():
    stats = [{"a": math.exp(x), "b": 1.0, "c": math.exp(1.25 * x)} for x in (-0.03, 0, 0.03)]
    cal = gate.calibrate(stats)
    assert cal["a"]["threshold_log"] == pytest.approx(gate.K_SIGMA * 0.03)
    assert cal["b"]["threshold_log"] == gate.THRESHOLD_FLOOR  # no noise → floor
    assert cal["c"]["threshold_log"] == pytest.approx(0.15)
    assert all(v["gating"] == "fail" for v in cal.values())
    noisy = gate.calibrate([{"d": math.exp(x)} for x in (-0.2, 0, 0.2)])
    assert noisy["d"]["threshold_log"] == gate.THRESHOLD_CAP and noisy["d"]["capped"]
    assert noisy["d"]["gating"] == "warn"  # too noisy to gate: a drop only warns
    checks = gate.timing_checks(noisy, {"d": 0.5})
    assert [(c.status, c.key) for c in checks] == [("warn", "d")]
    # even the cap catches a 25% slowdown of one side of a ratio
    assert math.log(1 / 1.25) < -gate.THRESHOLD_CAP


def test_unmodified_runs_pass_five_times(calibrated):
    base, cal = calibrated
    rng = random.Random(7)
    for _ in range(5):
        result = gate.evaluate(base, cal, synthetic_run(noise=0.02, rng=rng))
        assert result.passed, result.summary()
        assert "gate PASSED" in result.summary()


def test_a_25_percent_slowdown_of_scratch_fails(calibrated):
    base, cal = calibrated
    slowed = {a: r / 1.25 for a, r in {"lstm": 0.85, "gru": 1.0, "rnn": 1.1}.items()}
    result = gate.evaluate(base, cal, synthetic_run(scratch_ratio=slowed, noise=0.02))
    assert not result.passed
    failed = {c.key for c in result.checks if c.status == "fail"}
    assert failed == {f"vs_builtin/scratch/{a}" for a in (*ARCHS, "all")}
    assert "slower" in result.summary()


def test_a_faster_ratio_warns_but_passes(calibrated):
    base, cal = calibrated
    faster = {"lstm": 0.85 * 1.3, "gru": 1.0, "rnn": 1.1}
    result = gate.evaluate(base, cal, synthetic_run(scratch_ratio=faster))
    assert result.passed
    # lstm alone moved: its own statistic warns; pooled over 3 archs it stays in bounds
    assert [c.key for c in result.checks if c.status == "warn"] == ["vs_builtin/scratch/lstm"]


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda r: r["flops"].update(fwd=101), "fwd FLOPs 101 != baseline 100"),
        (lambda r: r["memory"].update(saved_bytes=1001), "saved bytes 1001 != baseline 1000"),
        (lambda r: r["determinism"].update(losses=[1.0, 0.9, 0.81]), "losses"),
        (lambda r: r["determinism"].update(repeat_identical=False), "no longer gives identical"),
        (lambda r: r.update(status="failed", error="boom"), "status failed (baseline ok): boom"),
    ],
)
def test_deterministic_changes_fail(calibrated, mutate, expect):
    base, cal = calibrated
    cur = copy.deepcopy(base)
    mutate(cur[2])  # lstm builtin padded: it carries no ratio of its own
    result = gate.evaluate(base, cal, cur)
    fails = [c for c in result.checks if c.status == "fail"]
    assert len(fails) == 1 and fails[0].kind == "deterministic"
    assert fails[0].key == base[2]["cell_id"] and expect in fails[0].detail


def test_losses_within_tolerance_pass_and_missing_cells_fail(calibrated):
    base, cal = calibrated
    cur = copy.deepcopy(base)
    cur[0]["determinism"]["losses"] = [v * (1 + 1e-7) for v in cur[0]["determinism"]["losses"]]
    assert gate.evaluate(base, cal, cur).passed
    result = gate.evaluate(base, cal, [cur[0], cur[1], *cur[3:]])
    assert [c.detail for c in result.checks if c.status == "fail"] == ["cell missing from this run"]


def test_deterministic_only_ignores_timing(calibrated):
    base, cal = calibrated
    slowed = {"lstm": 0.5, "gru": 0.5, "rnn": 0.5}
    cur = synthetic_run(scratch_ratio=slowed)
    assert not gate.evaluate(base, cal, cur).passed
    only = gate.evaluate(base, cal, cur, deterministic_only=True)
    assert only.passed and all(c.kind == "deterministic" for c in only.checks)


def test_gate_command_against_synthetic_runs(tmp_path, capsys):
    rng = random.Random(3)
    runs = []
    for i in range(4):
        s = ResultStore(tmp_path / "res" / f"cal{i}")
        for r in synthetic_run(noise=0.02, rng=rng):
            s.append(r)
        runs.append(s)
    stats = [gate.ratio_stats(s.latest()) for s in runs]
    baseline = tmp_path / "res" / "baseline"
    gate.write_baseline(baseline, runs, stats, "gate")
    cfg = json.loads((baseline / "gate.json").read_text())
    assert cfg["policy"]["loss_rtol"] == gate.LOSS_RTOL and cfg["calibration_runs"][0] == "cal0"
    assert set(cfg["timing"]) == set(stats[0])

    ok = ResultStore(tmp_path / "res" / "ok")
    for r in synthetic_run(noise=0.02, rng=rng):
        ok.append(r)
    slow = ResultStore(tmp_path / "res" / "slow")
    for r in synthetic_run(scratch_ratio={"lstm": 0.68, "gru": 0.8, "rnn": 0.88}):
        slow.append(r)
    common = ["gate", "--baseline", str(baseline), "--results-dir", str(tmp_path / "res")]
    assert cli.main([*common, "--against", "ok"]) == 0
    assert "gate PASSED" in capsys.readouterr().out
    assert cli.main([*common, "--against", "slow"]) == 1
    assert "gate FAILED" in capsys.readouterr().out
    assert cli.main([*common, "--against", "slow", "--deterministic-only"]) == 0
    assert cli.main([*common, "--against", "nosuch"]) == 2


def test_rethreshold_recomputes_from_stored_samples():
    stats = [{"vs_builtin/scratch/lstm": math.exp(x), "vs_padded/builtin/lstm": 1.0}
             for x in (-0.01, 0.0, 0.01)]  # fmt: skip
    cfg = {"timing": gate.calibrate(stats), "matrix": "gate"}
    cfg["timing"]["vs_builtin/scratch/lstm"]["threshold_log"] = 0.01  # an old, tighter policy
    new = gate.rethreshold(cfg)
    assert set(new["timing"]) == {"vs_builtin/scratch/lstm"}  # ungated ratio dropped
    assert new["timing"]["vs_builtin/scratch/lstm"]["threshold_log"] == gate.THRESHOLD_FLOOR
    assert new["policy"]["threshold_floor_log"] == gate.THRESHOLD_FLOOR
    assert new["matrix"] == "gate"


def test_compare_marks_changes(calibrated):
    base, _ = calibrated
    cur = copy.deepcopy(base)
    cur[0]["memory"]["saved_bytes"] = 5
    cur[1]["ratios"]["train"]["vs_builtin"]["median"] = 0.2
    text = compare_frames(frame(base), frame(cur[:-1]), threshold=0.1)
    lines = text.splitlines()
    assert "CHANGED: saved_bytes" in lines[2] and lines[2].startswith("!")
    assert lines[3].startswith("!") and "→0.20 (-7" in lines[3]
    assert "only in A: " + base[-1]["cell_id"] in text


def test_timing_helpers():
    assert injection_from_env({}) == {}
    assert injection_from_env({"RNNSUITE_BENCH_INJECT_SLOWDOWN": "scratch:0.25,builtin:1"}) == {
        "scratch": 0.25,
        "builtin": 1.0,
    }
    for bad in ("scratch", "scratch:x", ":0.2", "scratch:-1"):
        with pytest.raises(ValueError):
            injection_from_env({"RNNSUITE_BENCH_INJECT_SLOWDOWN": bad})
    r = pair_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 2.0])
    assert r == {"median": 2.0, "q1": 2.0, "q3": 2.5, "n": 3}
    assert pair_ratio([], [1.0]) is None
    s = summary([1.0, 2.0, 3.0, 4.0])
    assert s["median_s"] == 2.5 and s["n"] == 4 and s["iqr_rel"] == pytest.approx(1.5 / 2.5)


def test_interleave_rotates_and_stops_at_its_budget():
    order = []

    def timer(fn, impl=""):
        fn()
        return 1.0

    vs = [Variant(n, n, {"fwd": (lambda n=n: order.append(n))}) for n in "abc"]
    assert interleave(vs, modes=("fwd",), warmup=1, repeats=4, timer=timer) == 4
    assert order[:6] == ["a", "b", "c", "b", "c", "a"]  # rotated each repeat
    assert all(len(v.times["fwd"]) == 4 for v in vs)

    ticks = iter(range(0, 10_000, 10))  # 10 s pass between looks at the clock
    vs = [Variant(n, n, {"fwd": lambda: None}) for n in "ab"]
    done = interleave(
        vs, modes=("fwd",), warmup=1, repeats=50, timer=timer, budget_s=2.5,
        clock=lambda: float(next(ticks)),
    )  # fmt: skip
    assert done == 3  # the budget is long gone, but three repeats are always kept
    assert all(len(v.times["fwd"]) == 3 for v in vs)

    def boom():
        raise RuntimeError("x")

    vs = [Variant("ok", "s", {"fwd": lambda: None}), Variant("bad", "b", {"fwd": boom})]
    interleave(vs, modes=("fwd",), warmup=0, repeats=3, timer=timer)
    assert isinstance(vs[1].error, RuntimeError) and len(vs[0].times["fwd"]) == 3


def test_interleave_times_blocks_of_calls_filling_block_s():
    """A sample is as many consecutive calls as fill block_s by the last warm-up call, and
    its time is per call; a call longer than the block, or no warm-up, is one call."""
    cost = {"fast": 0.001, "slow": 0.05}  # seconds a call, on a stand-in clock
    calls = {n: 0 for n in cost}
    now = [0.0]

    def call(n):
        calls[n] += 1
        now[0] += cost[n]

    def timer(fn, impl=""):
        t0 = now[0]
        fn()
        return now[0] - t0

    vs = [Variant(n, n, {"fwd": (lambda n=n: call(n))}) for n in cost]
    assert interleave(vs, modes=("fwd",), warmup=1, repeats=3, timer=timer, block_s=0.01) == 3
    fast, slow = vs
    assert fast.calls_per_sample == {"fwd": 10} and slow.calls_per_sample == {"fwd": 1}
    assert calls == {"fast": 1 + 3 * 10, "slow": 1 + 3}
    assert fast.times["fwd"] == pytest.approx([0.001] * 3)
    assert slow.times["fwd"] == pytest.approx([0.05] * 3)

    vs = [Variant(n, n, {"fwd": (lambda n=n: call(n))}) for n in cost]
    interleave(vs, modes=("fwd",), warmup=0, repeats=2, timer=timer, block_s=0.01)
    assert all(v.calls_per_sample == {"fwd": 1} for v in vs)
    vs = [Variant(n, n, {"fwd": (lambda n=n: call(n))}) for n in cost]
    interleave(vs, modes=("fwd",), warmup=2, repeats=2, timer=timer)  # block_s 0: one call
    assert all(v.calls_per_sample == {"fwd": 1} for v in vs)
    assert calls_for(0.01, 0.0) == MAX_CALLS_PER_SAMPLE and calls_for(0.01, 0.003) == 4


def test_an_injected_slowdown_holds_for_a_block_of_calls():
    """The gate's injected slowdown is a fraction of each timed sample, so of each call of a
    block too."""
    timer = Timer(inject={"scratch": 1.0})
    spins = []

    def call():
        t = time.perf_counter()
        while time.perf_counter() - t < 0.0005:
            pass
        spins.append(1)

    v = Variant("s", "scratch", {"fwd": call})
    interleave([v], modes=("fwd",), warmup=1, repeats=3, timer=timer, block_s=0.004)
    assert len(spins) == 1 + 3 * v.calls_per_sample["fwd"]
    assert all(t >= 2 * 0.0005 for t in v.times["fwd"])  # each call doubled, at least


# -- a damaged baseline is refused, never passed ----------------------------------------------
FIX = "python -m bench gate --calibrate 5"


@pytest.fixture
def on_disk(tmp_path):
    """A calibrated baseline written by the gate's own code, and a run that passes it."""
    res = tmp_path / "res"
    rng = random.Random(3)
    runs = []
    for i in range(3):
        s = ResultStore(res / f"cal{i}")
        for r in synthetic_run(noise=0.02, rng=rng):
            s.append(r)
        runs.append(s)
    runs[0].write_manifest({"cell_ids": [r["cell_id"] for r in runs[0].latest()]})
    baseline = res / "baseline"
    gate.write_baseline(baseline, runs, [gate.ratio_stats(s.latest()) for s in runs], "gate")
    ok = ResultStore(res / "ok")
    for r in synthetic_run(noise=0.02, rng=rng):
        ok.append(r)
    return baseline, ["gate", "--baseline", str(baseline), "--results-dir", str(res)]


def _cut_in_half(p):
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "empty results": ("results.jsonl", lambda p: p.write_text("")),
    "garbage results": ("results.jsonl", lambda p: p.write_text("garbage\n{]\n")),
    "results cut to half its bytes": ("results.jsonl", _cut_in_half),
    "results missing": ("results.jsonl", lambda p: p.unlink()),
    "a non-record pasted in": (
        "results.jsonl",
        lambda p: p.write_text(p.read_text() + '{"cell_id": 5, "status": "ok"}\n'),
    ),
    "gate.json missing": ("gate.json", lambda p: p.unlink()),
    "gate.json a list": ("gate.json", lambda p: p.write_text("[1, 2]")),
    "gate.json not JSON": ("gate.json", lambda p: p.write_text('{"timing": ')),
    "gate.json wrong types": (
        "gate.json",
        lambda p: p.write_text(
            json.dumps({"timing": {"vs_builtin/scratch/all": {"baseline": "x"}}})
        ),
    ),
    "gate.json no timing": ("gate.json", lambda p: p.write_text('{"timing": {}}')),
    "inventory missing": ("inventory.json", lambda p: p.unlink()),
    "inventory wrong types": (
        "inventory.json",
        lambda p: p.write_text(json.dumps({"cell_ids": 3, "cells": "x", "sha256": 1})),
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_baseline_is_one_message_and_exit_2(on_disk, capsys, case):
    baseline, common = on_disk
    name, damage = DAMAGE[case]
    damage(baseline / name)
    assert cli.main([*common, "--against", "ok"]) == 2
    out, err = capsys.readouterr()
    assert "PASSED" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), err
    assert str(baseline / name) in lines[0] and FIX in lines[0]


def test_missing_gate_json_is_fine_only_for_deterministic_checks(on_disk, capsys):
    baseline, common = on_disk
    (baseline / "gate.json").unlink()
    assert cli.main([*common, "--against", "ok", "--deterministic-only"]) == 0
    out = capsys.readouterr().out
    assert "timing not checked" in out and "gate PASSED: 12 checks pass (12 deterministic)" in out


def test_a_gate_that_compared_nothing_never_passes(calibrated):
    base, cal = calibrated
    assert not gate.evaluate([], None, [], deterministic_only=True).passed
    assert not gate.evaluate([], cal, []).passed
    assert "gate FAILED" in gate.evaluate([], cal, []).summary()
    # timing asked for but no calibration to check it against
    assert not gate.evaluate(base, None, copy.deepcopy(base)).passed
    assert not gate.evaluate(base, {}, copy.deepcopy(base)).passed
    assert gate.evaluate(base, None, copy.deepcopy(base), deterministic_only=True).passed


def test_a_baseline_without_inventory_gets_one_only_if_intact(on_disk, capsys):
    baseline, common = on_disk
    (baseline / "inventory.json").unlink()
    assert cli.main([*common, "--against", "ok"]) == 2
    assert "--write-inventory" in capsys.readouterr().err
    lines = (baseline / "results.jsonl").read_text().splitlines(keepends=True)
    (baseline / "results.jsonl").write_text("".join(lines[:-1]))  # lost a whole cell
    assert cli.main([*common, "--write-inventory"]) == 2
    assert "holds 11 cells but its run.json lists 12" in capsys.readouterr().err
    assert not (baseline / "inventory.json").exists()
    (baseline / "results.jsonl").write_text("".join(lines))
    assert cli.main([*common, "--write-inventory"]) == 0
    inv = json.loads((baseline / "inventory.json").read_text())
    assert inv["cells"] == 12 and len(inv["cell_ids"]) == 12
    assert cli.main([*common, "--against", "ok"]) == 0
    assert "gate PASSED" in capsys.readouterr().out


def test_the_committed_baseline_verifies_and_gates_itself(capsys):
    from pathlib import Path

    base = Path(__file__).resolve().parent.parent / "results" / "baseline"
    inv = json.loads((base / "inventory.json").read_text())
    assert inv["cells"] == 44 == len(set(inv["cell_ids"]))
    args = ["gate", "--baseline", str(base), "--against", str(base), "--deterministic-only"]
    assert cli.main(args) == 0
    assert "gate PASSED: 44 checks pass (44 deterministic)" in capsys.readouterr().out
