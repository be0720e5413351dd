"""The Udacity-only recipes in the reproduction run: word2vec, AG News with word2vec
vectors, the TV-script model, and what their report shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import cli
from bench.reproduce import study as reproduce

TINY = {"epochs": 1, "max_batches": 2, "num_train": 128, "num_val": 32}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FILES = (
    "time_machine/timemachine.txt",
    "ptb/ptb.train.txt",
    "ag_news/test.csv",
    "seinfeld/Seinfeld_Scripts.txt",
)
SELECT = "udacity and (word2vec or agnews_w2v or tv_script_short)"


def _data_root() -> Path | None:
    env = os.environ.get("RNNSUITE_DATA")
    return Path(env) if env else (SHARED if SHARED.is_dir() else None)


@pytest.fixture
def data_env(tmp_path, monkeypatch) -> Path:
    root = _data_root()
    missing = [f for f in FILES if root is None or not (root / f).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not found (set RNNSUITE_DATA)")
    monkeypatch.setenv("RNNSUITE_DATA", str(root))
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))
    return root


def test_the_selection_picks_the_four_new_recipes():
    m = reproduce.load_matrix()
    cells = reproduce.plan(list(m["recipes"]), [0], "cpu", SELECT)
    assert [c["recipe"] for c in cells] == [
        "w2v_time_machine",
        "agnews_random_init",
        "agnews_w2v_init",
        "tv_script_short",
    ]
    assert all(r in m["estimate_s"] for r in (c["recipe"] for c in cells))


def test_reproduce_full_matrix_by_name_or_path(tmp_path):
    full = reproduce.resolve_matrix("reproduce-full")
    assert full == reproduce.resolve_matrix(str(full))
    assert reproduce.load_matrix(full)["recipes"] == ["tv_script"]
    assert reproduce.resolve_matrix(None) == reproduce.MATRIX
    with pytest.raises(ValueError, match="no recipe matrix 'nope'"):
        reproduce.resolve_matrix("nope")
    assert cli.main(["reproduce", "--matrix", "nope", "--results-dir", str(tmp_path)]) == 2


def test_tiny_run_report_shows_neighbours_accuracy_loss_curve_and_script(data_env, tmp_path):
    res, out = tmp_path / "results", tmp_path / "report"
    ok, failed = reproduce.run(
        "u1", results_dir=res, k=SELECT, seeds=[0], limits=TINY, echo=lambda *_: 0
    )
    assert (ok, failed) == (4, 0)
    # the long matrix appends to the same run: its recipe joins the same report
    ok, failed = reproduce.run(
        "u1",
        results_dir=res,
        seeds=[0],
        limits=TINY,
        matrix_path=reproduce.resolve_matrix("reproduce-full"),
        echo=lambda *_: 0,
    )
    assert (ok, failed) == (1, 0)
    recs = [json.loads(line) for line in (res / "u1" / "results.jsonl").open()]
    by_recipe = {r["cell"]["recipe"]: r["result"] for r in recs}
    tm = by_recipe["w2v_time_machine"]
    assert set(tm["samples"]["neighbours"]) >= {"time", "traveller"}
    assert len(tm["samples"]["neighbours"]["time"]) == 5
    w2v_arm, random_arm = by_recipe["agnews_w2v_init"], by_recipe["agnews_random_init"]
    assert 0 < w2v_arm["metrics"]["w2v_vocab_coverage"] < w2v_arm["metrics"]["w2v_token_coverage"]
    assert "w2v_vocab_coverage" not in random_arm["metrics"]
    assert by_recipe["tv_script_short"]["metrics"]["passed"] is False

    text = reproduce.report("u1", results_dir=res, out_dir=out).read_text()
    assert "### Word2vec (skip-gram, negative sampling)" in text
    assert "| probe | top-5 neighbours (cosine) |" in text and "| **time** |" in text
    assert "![word2vec loss](udacity_word2vec_loss.png)" in text
    assert "### AG News with word2vec-initialised embeddings" in text
    assert "| agnews_random_init | random |" in text and "| agnews_w2v_init | word2vec |" in text
    assert "Word2vec minus random, same seed:" in text
    assert "![TV-script loss](udacity_tv_script_loss.png)" in text
    assert "`tv_script_short`, seed 0: **pass mark not reached**" in text
    script = by_recipe["tv_script_short"]["samples"]["script"]
    assert script.startswith("jerry:") and script.strip("\n") in text
    assert "```text" in text
    # the pass mark is a reference: the full recipe gets a verdict row, computed
    assert "| tv_script | training loss at the end" in text and "**not reproduced**" in text
    assert "**Sentiment RNN**" in text and "reviews.txt" in text
    assert "![AG News running accuracy](udacity_agnews_w2v.png)" in text
    for png in (
        "udacity_word2vec_loss.png",
        "udacity_agnews_w2v.png",
        "udacity_tv_script_loss.png",
    ):
        assert (out / png).stat().st_size > 1000
