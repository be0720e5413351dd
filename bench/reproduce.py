"""Reproduce the documents: recipes × seeds → results → reproduction report.

Each (recipe, seed, device) is one cell. Results go to ``results/<run-id>/``
through the same append-only store as the throughput bench (resumable, a
failed recipe recorded with its error while the rest go on), each line with
the run's provenance. ``report`` turns a run into ``reports/reproduction/``:
per document, reference | ours (mean ± std, min–max over seeds) | verdict —
computed by rnnsuite.recipes.verdicts — plus learning curves of every seed
over the document's own curve, and generated text beside the document's.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from . import kexpr
from .results import ResultStore, atomic_write_text, check_run_id, mkdir
from .study import StudyError, read_toml
from .study.execute import run_each

MATRIX = Path(__file__).with_name("matrices") / "reproduce.toml"
DOCUMENTS = {
    "ai4b": "AI-For-Beginners — AG News classification (seed 000)",
    "fastbook": "fastbook ch. 12 — Human Numbers language models (seed 001)",
    "element": "Element-Research rnn tutorial — behaviours (seed 002)",
    "udacity": "Udacity RNN summary — word2vec, TV scripts, attention on English–French (seed 003)",
    "d2l": "d2l Modern RNN — Time Machine and English–French (seed 004)",
}
FIELDS = ("recipe", "document", "task", "seed", "device")


def resolve_matrix(name_or_path: str | Path | None) -> Path:
    """A recipe matrix by path, or by name in bench/matrices/ ("reproduce-full");
    None is the routine matrix. Raises ValueError naming what was looked for."""
    if name_or_path is None:
        return MATRIX
    path = Path(name_or_path)
    if path.is_file():
        return path
    named = MATRIX.with_name(f"{name_or_path}.toml")
    if path.suffix != ".toml" and named.is_file():
        return named
    raise StudyError(
        f"no recipe matrix {str(name_or_path)!r}: give a .toml path or a name in {MATRIX.parent}"
    )


def load_matrix(path: Path = MATRIX) -> dict[str, Any]:
    from rnnsuite.recipes import RECIPES

    m = read_toml(path)
    if not m:
        raise StudyError(
            f"{path}: empty matrix file (no keys): a recipe matrix needs kind = 'recipes', "
            f"seeds and recipes, as in {MATRIX}"
        )
    recipes = m.get("recipes")
    if not isinstance(recipes, list) or not recipes:
        raise StudyError(f"{path}: key 'recipes' must list at least one recipe")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise StudyError(f"{path}: key 'recipes' names unknown recipes {unknown}")
    if not m.get("seeds"):
        raise StudyError(f"{path}: key 'seeds' must list at least one seed")
    return m


def plan(recipes: list[str], seeds: list[int], device: str, k: str | None) -> list[dict]:
    from rnnsuite.recipes import RECIPES

    pred = kexpr.parse(k, FIELDS) if k else None
    cells = []
    for name in recipes:
        for seed in seeds:
            spec = RECIPES[name]
            fields = {
                "recipe": name,
                "document": spec["document"],
                "task": spec["task"],
                "seed": str(seed),
                "device": device,
            }
            words = {name, spec["document"], spec["task"], device}
            if pred is None or pred(words, fields):
                cells.append({**fields, "seed": seed, "cell_id": f"{name}-s{seed}-{device}"})
    return cells


def run(
    run_id: str,
    *,
    results_dir: Path,
    k: str | None = None,
    seeds: list[int] | None = None,
    device: str = "cpu",
    limits: dict[str, int] | None = None,
    matrix_path: Path = MATRIX,
    threads: int | None = None,
    echo=print,
) -> tuple[int, int]:
    """Run every selected cell not already recorded. Returns (ok, failed).

    `threads` (default: the matrix's, else torch's) is set before anything runs: these
    models are small, and two OpenMP threads on a busy 2-core machine can run ten times
    slower than one."""
    import torch

    from rnnsuite.recipes import run_recipe

    m = load_matrix(matrix_path)
    threads = threads or m.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    seeds = seeds or list(m["seeds"])
    cells = plan(list(m["recipes"]), seeds, device, k)
    estimate = m.get("estimate_s", {})

    def start(cell: dict[str, Any]) -> dict[str, Any]:
        return {"cell": cell, "limits": limits or {}}

    def execute_cell(cell: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
        return {
            "result": run_recipe(cell["recipe"], seed=cell["seed"], device=device, limits=limits)
        }

    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    out = run_each(
        store, cells, kind="reproduce", record_kind="recipe", start=start,
        execute_cell=execute_cell,
        manifest={"matrix": str(matrix_path), "seeds": seeds, "k": k, "limits": limits},
        device=device, echo=echo, estimate_s=lambda c: float(estimate.get(c["recipe"], 60)),
    )  # fmt: skip
    return out.ok, out.failed


# -- report ---------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def report(run_id: str, *, results_dir: Path, out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnsuite.recipes import RECIPES
    from rnnsuite.recipes.verdicts import judge, load_references

    store = ResultStore(Path(results_dir) / check_run_id(run_id))
    recs = [r for r in store.latest() if r.get("kind") == "recipe"]
    if not recs:
        raise ValueError(
            f"run {run_id!r} in {results_dir} has no recipe results: run "
            f"`python -m bench reproduce --run-id {run_id}` first, or name an earlier run"
        )
    refs = load_references()
    mkdir(out_dir)
    by_recipe: dict[str, list[dict]] = defaultdict(list)
    failures = []
    for r in recs:
        if r["status"] == "ok":
            by_recipe[r["cell"]["recipe"]].append(r["result"])
        else:
            failures.append(r)
    prov = recs[0]["provenance"]
    lines = [
        "# Reproduction of the reference documents",
        "",
        f"Run `{run_id}`, started {prov['run_started_at']}; {prov['device_name']}, "
        f"{'/'.join(sorted({str(r['provenance']['torch_threads']) for r in recs}))} torch "
        f"thread(s), torch {prov['torch_version']}, commit "
        f"`{(prov.get('git_commit') or 'unknown')[:10]}`{' (dirty)' if prov.get('git_dirty') else ''}.",
        f"Every number below is read from `results/{run_id}/results.jsonl`; verdicts are computed "
        "by `rnnsuite.recipes.verdicts` from `rnnsuite/recipes/references.toml`.",
        "",
        "Verdicts: **reproduced** — mean within tolerance of the reference, or better; "
        "**within spread** — the reference lies inside our seeds' range (± tolerance); "
        "**not reproduced** — neither; **needs the full train.csv** — the run used partial data.",
        "",
    ]
    notes = sorted({n for res in by_recipe.values() for x in res for n in x.get("notes", [])})
    if notes:
        lines += ["> **Data note:** " + "; ".join(notes), ""]
    verdict_count: dict[str, int] = defaultdict(int)
    for doc, title in DOCUMENTS.items():
        names = [n for n in RECIPES if RECIPES[n]["document"] == doc and n in by_recipe]
        if not names:
            continue
        lines += [
            f"## {title}",
            "",
            "| recipe | metric | reference | ours | verdict |",
            "|---|---|---|---|---|",
        ]
        for name in names:
            results = by_recipe[name]
            partial = any(x.get("partial_data") for x in results)
            for metric, ref in refs.get(name, {}).get("metrics", {}).items():
                vals = [x["metrics"][metric] for x in results if metric in x["metrics"]]
                if not vals:
                    continue
                j = judge(metric, vals, ref, partial_data=partial)
                verdict_count[j.verdict] += 1
                cause = (
                    f" — {ref['likely_cause']}"
                    if ref.get("likely_cause") and j.verdict == "not reproduced"
                    else ""
                )
                lines.append(
                    f"| {name} | {ref.get('label', metric)} | {_fmt(ref['reference'])} | "
                    f"{j.ours()} | **{j.verdict}**{cause} |"
                )
            if not refs.get(name, {}).get("metrics"):
                first = results[0]["metrics"]
                shown = ", ".join(f"{k} {_fmt(v)}" for k, v in first.items())
                lines.append(f"| {name} | (no number printed; measured) | — | {shown} | reported |")
        lines.append("")
        lines += _doc_extras(doc, names, by_recipe, refs, out_dir, plt)
    if failures:
        lines += ["## Failed cells", ""]
        lines += [f"- `{f['cell_id']}`: {f['error']}" for f in failures]
        lines.append("")
    lines += ["## Run times", "", "| recipe | seeds | mean seconds |", "|---|---|---|"]
    for name, results in by_recipe.items():
        lines.append(
            f"| {name} | {len(results)} | {sum(x['seconds'] for x in results) / len(results):.0f} |"
        )
    summary = ", ".join(f"{v} {k}" for k, v in sorted(verdict_count.items()))
    lines.insert(2, f"**Summary:** {summary}.\n")
    path = out_dir / "README.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _doc_extras(doc, names, by_recipe, refs, out_dir: Path, plt) -> list[str]:
    """Curves, tables and text beside the document's."""
    from rnnsuite.recipes.verdicts import judge

    out: list[str] = []
    if doc == "ai4b":
        fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
        for ax, name in zip(axes[0], names, strict=True):
            ref = refs.get(name, {}).get("curve", {}).get("points", [])
            if ref:
                ax.plot(*zip(*ref, strict=True), "k-", lw=2, label="document")
            for res in by_recipe[name]:
                pts = res["curves"]["running_accuracy"]
                if pts:
                    ax.plot(*zip(*pts, strict=True), "o-", ms=3, label=f"seed {res['seed']}")
            ax.set(title=name, xlabel="training samples", ylabel="running train accuracy")
            ax.legend(fontsize=7)
        _save(fig, out_dir / "ai4b_running_accuracy.png", plt)
        out += [
            "![running accuracy](ai4b_running_accuracy.png)",
            "",
            "Running train accuracy at the sample counts both runs reached:",
            "",
            "| recipe | samples | document | ours | verdict |",
            "|---|---|---|---|---|",
        ]
        for name in names:
            curve = refs.get(name, {}).get("curve", {})
            ref = {int(s): a for s, a in curve.get("points", [])}
            ours: dict[int, list[float]] = defaultdict(list)
            for res in by_recipe[name]:
                for s, a in res["curves"]["running_accuracy"]:
                    ours[s].append(a)
            rule = {"better": "match", "tolerance": curve.get("tolerance", 0.04)}
            for s in sorted(set(ref) & set(ours)):
                j = judge(f"acc@{s}", ours[s], {**rule, "reference": ref[s]})
                cause = (
                    f" — {curve['likely_cause']}"
                    if j.verdict == "not reproduced" and curve.get("likely_cause")
                    else ""
                )
                out.append(
                    f"| {name} | {s:,} | {ref[s]:.4f} | {j.ours()} | **{j.verdict}**{cause} |"
                )
        out.append("")
    elif doc == "fastbook":
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for i, name in enumerate(names):
            color = f"C{i}"
            table = refs.get(name, {}).get("table", {}).get("rows", [])
            if table:
                axes[0].plot(
                    [r[0] for r in table],
                    [r[3] for r in table],
                    "-",
                    color=color,
                    lw=2.5,
                    alpha=0.5,
                    label=f"{name} (document)",
                )
                axes[1].plot(
                    [r[0] for r in table],
                    [r[2] for r in table],
                    "-",
                    color=color,
                    lw=2.5,
                    alpha=0.5,
                )
            for res in by_recipe[name]:
                ep = res["curves"]["epochs"]
                axes[0].plot(
                    [e["epoch"] for e in ep], [e["accuracy"] for e in ep], "--", color=color, lw=1
                )
                axes[1].plot(
                    [e["epoch"] for e in ep], [e["valid_loss"] for e in ep], "--", color=color, lw=1
                )
        axes[0].set(
            title="validation accuracy (thick: document, dashed: our seeds)",
            xlabel="epoch",
            ylabel="accuracy",
        )
        axes[1].set(title="validation loss", xlabel="epoch", ylabel="loss")
        axes[0].legend(fontsize=7)
        _save(fig, out_dir / "fastbook_epochs.png", plt)
        out += ["![per-epoch curves](fastbook_epochs.png)", ""]
    elif doc == "d2l":
        tm = [n for n in names if _task(n) == "time_machine"]
        if tm:
            fig, ax = plt.subplots(figsize=(7, 3.8))
            for i, name in enumerate(tm):
                for res in by_recipe[name]:
                    ep = res["curves"]["epochs"]
                    ax.plot(
                        [e["epoch"] for e in ep],
                        [e["valid_ppl"] for e in ep],
                        color=f"C{i}",
                        label=name if res is by_recipe[name][0] else None,
                    )
            ax.set(
                title="Time Machine validation perplexity",
                xlabel="epoch",
                ylabel="perplexity",
                yscale="log",
            )
            ax.legend(fontsize=7)
            _save(fig, out_dir / "d2l_time_machine.png", plt)
            out += [
                "![perplexity](d2l_time_machine.png)",
                "",
                '| recipe | validation perplexity | continuation of "time traveller" (ours, seed '
                "0) | the document's |",
                "|---|---|---|---|",
            ]
            for name in tm:
                res = by_recipe[name][0]
                doc_text = refs.get(name, {}).get("text", {}).get("continuation", "")
                out.append(
                    f"| {name} | {res['metrics']['valid_ppl']:.2f} | "
                    f"`{res['samples']['continuation']}` | `{doc_text}` |"
                )
            out.append("")
    if doc in ("d2l", "udacity"):
        mt = [n for n in names if _task(n) == "translation"]
        if mt:
            out += [
                "| recipe | corpus BLEU (sacrebleu, validation) | mean d2l BLEU of the four "
                "examples | validation loss |",
                "|---|---|---|---|",
            ]
            for name in mt:
                rs = by_recipe[name]
                out.append(
                    f"| {name} | {_mean(rs, 'corpus_bleu'):.2f} | "
                    f"{_mean(rs, 'bleu_examples_mean'):.3f} | {_mean(rs, 'valid_loss'):.3f} |"
                )
            out += [
                "",
                "Translations of the four example sentences (seed 0) beside the document's:",
                "",
                "| recipe | source | document | ours | BLEU (document → ours) |",
                "|---|---|---|---|---|",
            ]
            doc_ex = {e["source"]: e for e in refs.get("mt_seq2seq", {}).get("examples", [])}
            for name in mt:
                for ex in by_recipe[name][0]["samples"]["examples"]:
                    d = doc_ex.get(ex["source"], {})
                    out.append(
                        f"| {name} | {ex['source']} | {d.get('prediction', '')} | "
                        f"{ex['prediction']} | {d.get('bleu', float('nan')):.3f} → "
                        f"{ex['bleu']:.3f} |"
                    )
            out.append("")
    if doc == "udacity":
        out += _udacity_extras(names, by_recipe, out_dir, plt)
    if doc == "element":
        songs = [n for n in names if _task(n) == "song_acceptor"]
        if songs:
            fig, ax = plt.subplots(figsize=(6, 3.5))
            for i, name in enumerate(songs):
                for res in by_recipe[name]:
                    c = res["curves"]["bce"]
                    ax.plot(
                        *zip(*c, strict=True),
                        color=f"C{i}",
                        lw=1,
                        label=name if res is by_recipe[name][0] else None,
                    )
            ax.set(title="song 5-gram acceptor: BCE", xlabel="step", ylabel="loss", yscale="log")
            ax.legend(fontsize=7)
            _save(fig, out_dir / "element_song.png", plt)
            out += ["![acceptor loss](element_song.png)", ""]
    return out


SENTIMENT_NOTE = (
    "**Sentiment RNN** (the lesson's many-to-one LSTM on movie reviews): the model "
    "(`rnnsuite.models.SentimentRNN`), the course's loader (`rnnsuite.data.sentiment."
    "load_reviews`: lower-case, punctuation stripped, words numbered by count from 1, reviews "
    "left-padded to 200 words) and its training loop (`rnnsuite.train.sentiment."
    "train_sentiment`, the course's settings) are built and tested on a generated fixture "
    "(`tests/test_sentiment.py`). No number is reported: the course's `reviews.txt` and "
    "`labels.txt` (udacity/deep-learning-v2-pytorch, `sentiment-rnn/data/`) are not available "
    "offline and have no registered download. To run it, copy both files onto the machine, "
    "e.g. into `$RNNSUITE_DATA/sentiment/`, and pass their paths to `load_reviews`."
)
TV_PASS_NOTE = (
    "the pass mark needs several epochs (4 epochs ended at 3.62 here): "
    "`python -m bench reproduce --matrix reproduce-full` runs `tv_script` for up to 10 "
    "epochs, stopping at the first logged loss below it"
)


def _udacity_extras(names, by_recipe, out_dir: Path, plt) -> list[str]:
    """Word2vec neighbours and loss, AG News with and without word2vec vectors, the
    TV-script loss against the pass mark with a generated script, and the sentiment note."""
    out: list[str] = []
    w2v = [n for n in names if _task(n) == "word2vec"]
    if w2v:
        out += _word2vec_section(w2v, by_recipe, out_dir, plt)
    ag = [n for n in names if _task(n) == "agnews_w2v"]
    if ag:
        out += _agnews_w2v_section(ag, by_recipe, out_dir, plt)
    tv = [n for n in names if _task(n) == "tv_script"]
    if tv:
        out += _tv_script_section(tv, by_recipe, out_dir, plt)
    return [*out, SENTIMENT_NOTE, ""]


def _word2vec_section(w2v: list[str], by_recipe, out_dir: Path, plt) -> list[str]:
    from rnnsuite.recipes import RECIPES

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(w2v):
        for res in by_recipe[name]:
            ax.plot(
                *zip(*res["curves"]["epoch_loss"], strict=True),
                color=f"C{i}",
                lw=1,
                label=f"{name} seed {res['seed']}",
            )
    ax.set(
        title="word2vec: negative-sampling loss", xlabel="epoch", ylabel="mean loss of the epoch"
    )
    ax.legend(fontsize=7)
    _save(fig, out_dir / "udacity_word2vec_loss.png", plt)
    out = ["### Word2vec (skip-gram, negative sampling)", ""]
    for name in w2v:
        rs = by_recipe[name]
        res, cfg, m = rs[0], RECIPES[name]["train"], rs[0]["metrics"]
        over_seeds = f" ({_spread(rs, 'final_loss')} over seeds)" if len(rs) > 1 else ""
        out += [
            f"`{name}` on the {cfg['corpus']} corpus (embedding {RECIPES[name]['model']['embed_dim']}, "
            f"{cfg['epochs']} epochs, lr {cfg['lr']:g}, subsampling threshold "
            f"{cfg.get('threshold', 1e-5):g}): {m['vocab_size']:,} words seen at least "
            f"{cfg.get('min_count', 6)} times, {m['train_words']:,} left after subsampling, "
            f"{m['steps']:,} steps; mean loss {m['first_epoch_loss']:.3f} in the first epoch, "
            f"{m['final_loss']:.3f} in the last{over_seeds}. Nearest neighbours by cosine "
            f"similarity of the centre-word vectors (seed {res['seed']}):",
            "",
            "| probe | top-5 neighbours (cosine) |",
            "|---|---|",
        ]
        found = res["samples"]["neighbours"]
        for probe in [p for p in cfg.get("probes", []) if p in found] or list(found):
            cells = ", ".join(f"{w} {sim:.3f}" for w, sim in found[probe])
            out.append(f"| **{probe}** | {cells} |")
        out.append("")
    return [*out, "![word2vec loss](udacity_word2vec_loss.png)", ""]


def _agnews_w2v_section(ag: list[str], by_recipe, out_dir: Path, plt) -> list[str]:
    from rnnsuite.recipes import RECIPES

    def init_of(name: str) -> str:
        return RECIPES[name]["model"].get("embed_init", "random")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(ag):
        for res in by_recipe[name]:
            pts = res["curves"]["running_accuracy"]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True),
                    "o-",
                    ms=3,
                    color=f"C{i}",
                    label=f"{init_of(name)} seed {res['seed']}",
                )
    ax.set(title="AG News: running train accuracy", xlabel="training samples", ylabel="accuracy")
    if ax.get_legend_handles_labels()[0]:  # a short run may log no point
        ax.legend(fontsize=7)
    _save(fig, out_dir / "udacity_agnews_w2v.png", plt)
    partial = any(x.get("partial_data") for n in ag for x in by_recipe[n])
    out = [
        "### AG News with word2vec-initialised embeddings",
        "",
        f"The AI-For-Beginners classifier ({_classifier(ag[0])}), identical in both rows "
        "(same seed, weights and batches) except for the embedding: N(0, 1), or rows copied from word2vec vectors "
        "trained on PTB (Wall Street Journal text: news, as AG News is) wherever the AG News "
        "word is in PTB's vocabulary. One epoch"
        + (" over the partial train file (see the data note)" if partial else "")
        + "; accuracy on the whole test set.",
        "",
        *_ptb_vectors_line(ag, by_recipe),
        "| recipe | embedding | test accuracy | train accuracy over the epoch | word2vec "
        "coverage (vocabulary rows / train tokens) |",
        "|---|---|---|---|---|",
    ]
    for name in ag:
        rs = by_recipe[name]
        cov = "—"
        if "w2v_vocab_coverage" in rs[0]["metrics"]:
            cov = f"{_mean(rs, 'w2v_vocab_coverage'):.1%} / {_mean(rs, 'w2v_token_coverage'):.1%}"
        out.append(
            f"| {name} | {init_of(name)} | {_spread(rs, 'test_accuracy')} | "
            f"{_spread(rs, 'epoch_accuracy')} | {cov} |"
        )
    out.append("")
    by_init: dict[str, dict[int, float]] = defaultdict(dict)
    for name in ag:
        for res in by_recipe[name]:
            by_init[init_of(name)][res["seed"]] = res["metrics"]["test_accuracy"]
    both = sorted(set(by_init["random"]) & set(by_init["word2vec"]))
    if both:
        gains = [by_init["word2vec"][s] - by_init["random"][s] for s in both]
        out += [
            f"Word2vec minus random, same seed: {sum(gains) / len(gains):+.4f} test accuracy "
            f"on average, better in {sum(g > 0 for g in gains)} of {len(gains)} seed(s).",
            "",
        ]
    return [*out, "![AG News running accuracy](udacity_agnews_w2v.png)", ""]


def _classifier(name: str) -> str:
    """A recipe's classifier in words, e.g. "nn.LSTM, packed, last h"."""
    from rnnsuite.recipes import RECIPES

    m = RECIPES[name]["model"]
    kind = f"nn.{m['arch'].upper()}" if m.get("impl") == "builtin" else f"{m['arch']} {m['impl']}"
    readout = "last h" if m.get("readout") == "last" else "mean over time"
    return f"{kind}, {'packed' if m.get('packed') else 'padded'}, {readout}"


def _ptb_vectors_line(ag: list[str], by_recipe) -> list[str]:
    """How the transferred vectors were trained, from the word2vec arm's own record."""
    from rnnsuite.recipes import RECIPES

    for name in ag:
        res = by_recipe[name][0]
        if "w2v_final_loss" not in res["metrics"]:
            continue
        cfg, m = RECIPES[name]["train"]["w2v"], res["metrics"]
        secs = res.get("timing", {}).get("w2v_train")
        took = f", {secs:.0f} s of training (cached per seed afterwards)" if secs else ""
        return [
            f"Word2vec vectors ({RECIPES[name]['model']['embed_dim']} dimensions, the "
            f"classifier's embedding size): {cfg['corpus']}, {m['w2v_vocab_size']:,} words, "
            f"{cfg['epochs']} epochs, lr {cfg['lr']:g}, subsampling threshold "
            f"{cfg['threshold']:g}; final mean loss {m['w2v_final_loss']:.3f}{took}.",
            "",
        ]
    return []


def _tv_script_section(tv: list[str], by_recipe, out_dir: Path, plt) -> list[str]:
    from rnnsuite.recipes import RECIPES

    fig, ax = plt.subplots(figsize=(7, 3.8))
    mark = by_recipe[tv[0]][0]["metrics"]["pass_mark"]
    for i, name in enumerate(tv):
        for res in by_recipe[name]:
            pts = res["curves"]["loss"]
            if pts:
                ax.plot(
                    *zip(*pts, strict=True), color=f"C{i}", lw=1, label=f"{name} seed {res['seed']}"
                )
    ax.axhline(mark, color="k", ls="--", lw=1, label=f"pass mark {mark:g}")
    ax.set(
        title="TV script: training loss (mean of each logged interval)",
        xlabel="batches",
        ylabel="cross-entropy",
    )
    ax.legend(fontsize=7)
    _save(fig, out_dir / "udacity_tv_script_loss.png", plt)
    out = [
        "### TV-script generation (Seinfeld)",
        "",
        "![TV-script loss](udacity_tv_script_loss.png)",
        "",
    ]
    for name in tv:
        for res in by_recipe[name]:
            m = res["metrics"]
            train_s = res.get("timing", {}).get("train", res["seconds"])
            over = f" over {m['epochs_run']} epochs" if m["epochs_run"] > 1 else ""
            budget = f"{m['batches']:,} batches{over} ({train_s:.0f} s of training)"
            if m["passed"]:
                verdict = (
                    f"**pass mark reached**: loss {m['final_loss']:.3f} < {m['pass_mark']:g} "
                    f"after {budget}"
                )
            else:
                verdict = (
                    f"**pass mark not reached**: loss {m['final_loss']:.3f} ≥ "
                    f"{m['pass_mark']:g} after {budget}; {TV_PASS_NOTE}"
                )
            out.append(f"- `{name}`, seed {res['seed']}: {verdict}.")
    out += [
        "",
        'The document announces a script of its own ("This is an example of script which '
        'was generated by my model:") but its text goes straight on to the next section '
        "(the sample was not text in the copy we have), so none stands beside ours here.",
        "",
    ]
    for name in tv:
        res, cfg = by_recipe[name][0], RECIPES[name]["train"]
        out += [
            f"Generated by `{name}` (seed {res['seed']}), primed with "
            f"`{cfg.get('prime', 'jerry:')}`, temperature {cfg.get('temperature', 1.0):g}, "
            f"top-k {cfg.get('top_k', 5)}:",
            "",
            "```text",
            res["samples"]["script"].strip("\n"),
            "```",
            "",
        ]
    return out


def _spread(results: list[dict], key: str) -> str:
    """mean ± std (n) of one metric over seeds, as the verdict tables print it."""
    vals = [float(r["metrics"][key]) for r in results if key in r["metrics"]]
    if not vals:
        return "—"
    mean = sum(vals) / len(vals)
    if len(vals) == 1:
        return f"{mean:.4f} (n=1)"
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
    return f"{mean:.4f} ± {std:.4f} (n={len(vals)})"


def _task(name: str) -> str:
    """The task kind of a recipe (picks which extra tables and plots a document gets)."""
    from rnnsuite.recipes import RECIPES

    return RECIPES[name]["task"]


def _mean(results: list[dict], key: str) -> float:
    vals = [r["metrics"][key] for r in results if key in r["metrics"]]
    return sum(vals) / len(vals) if vals else math.nan


def _save(fig, path: Path, plt) -> None:
    from .plots import save_png

    fig.tight_layout()
    save_png(fig, path, dpi=110)
