"""Shards and merge: a deterministic, balanced part of a matrix that never splits a timing
group, recorded as such, and put back together by `bench merge`, which refuses duplicates
and timings of different machines and reports what is missing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bench import cli
from bench.study import shard
from bench.study.merge import merge
from bench.study.source import StudyError
from bench.throughput import matrix as matrix_mod
from bench.throughput.cells import expand, groups
from bench.throughput.estimate import group_seconds
from bench.throughput.runner import UsageError, run, shard_cells
from helpers import human_numbers_matrix

TINY = """
name = "tiny-shards"
description = "three timing groups, no timing"
seeds = [0]
[fixed]
device = "cpu"
threads = 1
timing = false
det_steps = 1
size = "tiny"
[[blocks]]
name = "b"
axes = { arch = ["gru", "rnn", "lstm"], impl = ["scratch", "builtin"], input = ["padded", "packed"] }
"""


def _records(path: Path) -> dict[str, dict]:
    out = {}
    for line in (path / "results.jsonl").read_text().splitlines():
        rec = json.loads(line)
        out[rec["cell_id"]] = rec
    return out


def test_shard_spec_counts_from_one():
    assert shard.parse("1/4") == (1, 4) and shard.parse(" 4 / 4 ") == (4, 4)
    for bad in ("0/4", "5/4", "1/0", "a/b", "2", ""):
        with pytest.raises(StudyError, match="--shard"):
            shard.parse(bad)


def test_assignment_is_deterministic_and_balanced():
    rng = random.Random(0)
    costs = [rng.uniform(1, 50) for _ in range(200)]
    keys = [f"g{i:03d}" for i in range(200)]
    a = shard.assign(costs, keys, 7)
    assert a == shard.assign(costs, keys, 7) and set(a) == set(range(1, 8))
    load = shard.loads(costs, a, 7)
    assert max(load) - min(load) <= max(costs)


def test_quick_in_shards_covers_every_cell_once_and_never_splits_a_group():
    cells = expand(matrix_mod.load("quick"), check_devices=False)
    parts = [shard_cells(cells, i, 3) for i in (1, 2, 3)]
    ids = [c.id for part in parts for c in part]
    assert sorted(ids) == sorted(c.id for c in cells) and len(ids) == len(set(ids))
    home = {}
    for i, part in enumerate(parts):
        for c in part:
            assert home.setdefault(c.group_key, i) == i, c.group_key
    loads = [group_seconds(p) for p in parts]
    biggest = max(group_seconds(g) for g in groups(cells))
    assert max(loads) - min(loads) <= biggest


def test_two_shards_merged_equal_the_unsharded_run(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(TINY)
    res = tmp_path / "res"
    whole = run(str(path), run_id="whole", results_dir=res, quiet=True)
    assert whole.exit_code == 0
    for i in (1, 2):
        assert run(str(path), run_id=f"s{i}", results_dir=res, quiet=True, shard=(i, 2)).ok
    one, two = _records(res / "s1"), _records(res / "s2")
    assert one and two and not set(one) & set(two)
    assert {r["shard"] for r in one.values()} == {"1/2"}
    assert all(r["provenance"]["machine_fingerprint"] for r in two.values())
    assert cli.main(["merge", "s1", "s2", "--into", "merged", "--results-dir", str(res)]) == 0
    merged, ref = _records(res / "merged"), _records(res / "whole")
    assert set(merged) == set(ref)
    for cid, rec in merged.items():
        for key in ("determinism", "flops", "workload", "parity", "status"):
            assert rec.get(key) == ref[cid].get(key), (cid, key)
    manifest = json.loads((res / "merged" / "run.json").read_text())
    assert [m["shard"] for m in manifest["merged_from"]] == ["1/2", "2/2"]
    # a resumed shard stays that shard
    with pytest.raises(UsageError, match="started as shard '1/2'"):
        run(str(path), run_id="s1", results_dir=res, quiet=True, shard=(2, 2))

    # refused: a cell twice; a target that exists; reported: what no run holds
    with pytest.raises(StudyError, match="recorded in more than one run"):
        merge(["s1", "whole"], "bad", results_dir=res)
    with pytest.raises(StudyError, match="already exists"):
        merge(["s1", "s2"], "merged", results_dir=res)
    out = merge(["s1"], "half", results_dir=res)
    assert sorted(out.missing) == sorted(two)
    assert cli.main(["merge", "s2", "--into", "half2", "--results-dir", str(res)]) == 1


def _timed_copy(src: Path, dst: Path, hostname: str) -> None:
    """A copy of a run whose records look timed on another host."""
    dst.mkdir(parents=True)
    (dst / "run.json").write_text((src / "run.json").read_text())
    lines = []
    for rec in _records(src).values():
        rec["timing"] = {"train": {"median_s": 1.0}}
        rec["provenance"] = {**rec["provenance"], "hostname": hostname}
        rec["provenance"].pop("machine_fingerprint", None)
        lines.append(json.dumps(rec))
    (dst / "results.jsonl").write_text("\n".join(lines) + "\n")


def test_merge_keeps_timings_of_different_machines_apart(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(TINY)
    res = tmp_path / "res"
    for i in (1, 2):
        run(str(path), run_id=f"s{i}", results_dir=res, quiet=True, shard=(i, 2))
    _timed_copy(res / "s1", res / "a", "node-a")
    _timed_copy(res / "s2", res / "b", "node-b")
    with pytest.raises(StudyError, match="timing results from 2 machines"):
        merge(["a", "b"], "ab", results_dir=res)
    out = merge(["a", "b"], "ab", results_dir=res, side_by_side=True)
    assert len(out.machines) == 2 and not out.missing
    labels = {r["machine"] for r in _records(res / "ab").values()}
    assert labels == set(out.machines)


QUALITY = human_numbers_matrix("q-shards", '{ arch = ["gru", "rnn"], impl = ["builtin"] }')


def test_training_studies_shard_the_same_way(tmp_path):
    from bench.quality import study as quality

    path = tmp_path / "q.toml"
    path.write_text(QUALITY)
    res, quiet = tmp_path / "res", {"echo": lambda *_: None}
    quality.run("whole", results_dir=res, matrix_path=path, **quiet)
    for i in (1, 2):
        quality.run(f"q{i}", results_dir=res, matrix_path=path, shard=(i, 2), **quiet)
    a, b, ref = _records(res / "q1"), _records(res / "q2"), _records(res / "whole")
    assert len(a) == len(b) == 1 and set(a) | set(b) == set(ref)
    assert {r["shard"] for r in (*a.values(), *b.values())} == {"1/2", "2/2"}
    for cid, rec in {**a, **b}.items():
        assert rec["metric"] == ref[cid]["metric"]  # same seed, same numbers
    assert merge(["q1", "q2"], "qm", results_dir=res).missing == []
