"""Every recipe runs a few steps on a tiny slice, deterministically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rnnsuite.recipes import RECIPES, load_recipes, run_recipe

TINY = {"epochs": 1, "max_batches": 2, "num_train": 128, "num_val": 32}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NEEDS = {
    "ag_news": ("ag_news/test.csv",),
    "time_machine": ("time_machine/timemachine.txt",),
    "translation": ("fra_eng/fra.txt",),
    "agnews_w2v": ("ag_news/test.csv", "ptb/ptb.train.txt"),
    "tv_script": ("seinfeld/Seinfeld_Scripts.txt",),
}
CORPUS_FILES = {"ptb": "ptb/ptb.train.txt", "time_machine": "time_machine/timemachine.txt"}


def _needs(name: str) -> tuple[str, ...]:
    """The data files a recipe reads (word2vec: its corpus)."""
    spec = RECIPES[name]
    if spec["task"] == "word2vec":
        return (CORPUS_FILES[spec["train"]["corpus"]],)
    return NEEDS.get(spec["task"], ())


def _data_root() -> Path | None:
    env = os.environ.get("RNNSUITE_DATA")
    return Path(env) if env else (SHARED if SHARED.is_dir() else None)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNSUITE_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_is_deterministic_on_a_tiny_slice(name):
    task = RECIPES[name]["task"]
    root = _data_root()
    for need in _needs(name):
        if root is None or not (root / need).exists():
            pytest.skip(f"{need} not found (set RNNSUITE_DATA)")
    a = run_recipe(name, seed=3, limits=TINY, root=root)
    b = run_recipe(name, seed=3, limits=TINY, root=root)
    assert a["metrics"] == b["metrics"]
    assert a.get("curves") == b.get("curves")
    c = run_recipe(name, seed=4, limits=TINY, root=root)
    if task not in ("remember",):
        assert a["metrics"] != c["metrics"], "the seed must matter"


def test_ag_news_partial_data_is_never_silent():
    root = _data_root()
    if root is None or (root / "ag_news/train.csv").exists() or not (root / "ag_news").is_dir():
        pytest.skip("needs the partial AG News train file only")
    r = run_recipe("agnews_rnn", limits=TINY, root=root)
    assert r["partial_data"] and any("partial: 10,429 of 120,000" in n for n in r["notes"])


def test_remember_recipe_measures_the_tutorials_behaviour():
    r = run_recipe("er_remember")
    assert r["metrics"]["all_hold"] is True


def test_bad_recipe_file_and_name(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text('[x]\ndocument = "d"\ntask = "nope"\nmodel = {}\ntrain = {}\n')
    with pytest.raises(ValueError, match=r"\[x\] has task 'nope'"):
        load_recipes(bad)
    bad.write_text('[y]\ntask = "remember"\n')
    with pytest.raises(ValueError, match=r"\[y\] lacks document, model, train"):
        load_recipes(bad)
    with pytest.raises(ValueError, match="unknown recipe"):
        run_recipe("hn_lmmodel99")


def test_verdicts_are_computed_from_values():
    from rnnsuite.recipes.verdicts import judge, load_references

    ref = {"reference": 0.758, "better": "higher", "tolerance": 0.02}
    assert judge("acc", [0.80, 0.76, 0.75], ref).verdict == "reproduced"
    assert judge("acc", [0.60, 0.62, 0.76], ref).verdict == "within spread"
    assert judge("acc", [0.60, 0.61], ref).verdict == "not reproduced"
    low = {"reference": 1.368, "better": "lower", "tolerance": 0.1}
    assert judge("loss", [1.2], low).verdict == "reproduced"
    assert judge("loss", [1.6], low).verdict == "not reproduced"
    full = {**ref, "needs": "full_train"}
    assert judge("acc", [0.5], full, partial_data=True).verdict == "needs the full train.csv"
    assert judge("acc", [0.8], full, partial_data=False).verdict == "reproduced"
    j = judge("ok", [True, True, False], {"reference": True, "better": "match", "tolerance": 0})
    assert j.verdict == "within spread" and j.ours() == "2/3 seeds true"
    refs = load_references()
    assert refs["hn_lmmodel7"]["metrics"]["accuracy"]["reference"] == 0.869385
    assert len(refs["agnews_lstm"]["curve"]["points"]) == 37
    assert refs["hn_lmmodel5"]["table"]["rows"][12][3] == 0.498535
    assert set(refs) <= set(RECIPES)


def test_stateful_scratch_lstm_lm_trains_finite_and_as_the_torch_ops():
    """Regression: at 1c21921 the scratch LSTM of hn_lmmodel6_scratch (fastbook's LMModel6,
    hidden state carried across batches) reached a NaN loss in its second epoch with the
    native kernels of that time, while the torch ops trained. The native loops must give
    the torch ops' curve, finite, to rounding."""
    from rnnsuite import native

    root = _data_root()
    limits = {"epochs": 2}
    fast = run_recipe("hn_lmmodel6_scratch", seed=0, limits=limits, root=root)
    with native.torch_ops():
        ref = run_recipe("hn_lmmodel6_scratch", seed=0, limits=limits, root=root)
    for a, b in zip(fast["curves"]["epochs"], ref["curves"]["epochs"], strict=True):
        for key in ("train_loss", "valid_loss", "accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-3), key
