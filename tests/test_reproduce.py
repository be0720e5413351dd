"""The reproduction runner: results with provenance, resume, failed cells, computed report."""

from __future__ import annotations

import json

import pytest

from bench import cli
from bench.reproduce import study as reproduce
from rnnsuite.recipes import tasks


def _records(results_dir, run_id):
    return [json.loads(line) for line in (results_dir / run_id / "results.jsonl").open()]


def test_run_resume_and_report(tmp_path):
    res, out = tmp_path / "results", tmp_path / "report"
    ok, failed = reproduce.run("r1", results_dir=res, k="element", seeds=[0, 1], echo=lambda *_: 0)
    assert (ok, failed) == (6, 0)
    recs = _records(res, "r1")
    prov = recs[0]["provenance"]
    for key in ("git_commit", "git_dirty", "torch_version", "device_name", "torch_threads"):
        assert key in prov
    assert {r["cell"]["seed"] for r in recs} == {0, 1}
    # a rerun with the same id resumes: nothing left to run
    assert reproduce.run("r1", results_dir=res, k="element", seeds=[0, 1], echo=lambda *_: 0) == (
        0,
        0,
    )
    path = reproduce.report("r1", results_dir=res, out_dir=out)
    text = path.read_text()
    assert "| er_remember | remember('both')" in text and "**reproduced**" in text
    assert (out / "element_song.png").stat().st_size > 1000


def test_failed_recipe_is_recorded_and_the_rest_go_on(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("injected")

    monkeypatch.setitem(tasks.TASKS, "remember", boom)
    ok, failed = reproduce.run(
        "r2", results_dir=tmp_path, k="element", seeds=[0], echo=lambda *_: 0
    )
    assert (ok, failed) == (2, 1)
    bad = [r for r in _records(tmp_path, "r2") if r["status"] == "failed"]
    assert len(bad) == 1 and "injected" in bad[0]["error"]
    text = reproduce.report("r2", results_dir=tmp_path, out_dir=tmp_path / "rep").read_text()
    assert "## Failed cells" in text and "injected" in text


def test_bad_selection_and_matrix(tmp_path, capsys):
    bad = tmp_path / "m.toml"
    bad.write_text('kind = "recipes"\nseeds = [0]\nrecipes = ["nope"]\n')
    with pytest.raises(ValueError, match=r"unknown recipes \['nope'\]"):
        reproduce.load_matrix(bad)
    assert cli.main(["reproduce", "--device", "tpu"]) == 2
    assert cli.main(["run", "--matrix", "reproduce", "--list"]) == 2
    assert "python -m bench reproduce" in capsys.readouterr().err
