"""The Udacity document's extras in the reproduction report: word2vec's neighbours and
loss, AG News with and without word2vec vectors, the TV-script loss against the pass
mark with a generated script, and the note on the sentiment RNN (UDACITY_PARTS order)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from .reproduction_common import for_task, mean, pyplot, recipe, save, spread

if TYPE_CHECKING:
    from .reproduction import Page

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


def _word2vec_plot(page: Page, w2v: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(w2v):
        for res in page.by_recipe[name]:
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
    save(fig, page.out_dir / "udacity_word2vec_loss.png")


def _word2vec_recipe(page: Page, name: str) -> list[str]:
    """One word2vec recipe: its settings and losses, and its probes' nearest neighbours."""
    rs = page.by_recipe[name]
    res, cfg, m = rs[0], recipe(name)["train"], rs[0]["metrics"]
    over_seeds = f" ({spread(rs, 'final_loss')} over seeds)" if len(rs) > 1 else ""
    out = [
        f"`{name}` on the {cfg['corpus']} corpus (embedding {recipe(name)['model']['embed_dim']}, "
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
    return [*out, ""]


@for_task("word2vec")
def word2vec(page: Page, w2v: list[str]) -> list[str]:
    _word2vec_plot(page, w2v)
    return [
        "### Word2vec (skip-gram, negative sampling)",
        "",
        *[line for name in w2v for line in _word2vec_recipe(page, name)],
        "![word2vec loss](udacity_word2vec_loss.png)",
        "",
    ]


def _init_of(name: str) -> str:
    return recipe(name)["model"].get("embed_init", "random")


def _agnews_plot(page: Page, ag: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, name in enumerate(ag):
        for res in page.by_recipe[name]:
            pts = res["curves"]["running_accuracy"]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", ms=3, color=f"C{i}",
                        label=f"{_init_of(name)} seed {res['seed']}")  # fmt: skip
    ax.set(title="AG News: running train accuracy", xlabel="training samples", ylabel="accuracy")
    if ax.get_legend_handles_labels()[0]:  # a short run may log no point
        ax.legend(fontsize=7)
    save(fig, page.out_dir / "udacity_agnews_w2v.png")


def _classifier(name: str) -> str:
    """A recipe's classifier in words, e.g. "nn.LSTM, packed, last h"."""
    m = recipe(name)["model"]
    kind = f"nn.{m['arch'].upper()}" if m.get("impl") == "builtin" else f"{m['arch']} {m['impl']}"
    readout = "last h" if m.get("readout") == "last" else "mean over time"
    return f"{kind}, {'packed' if m.get('packed') else 'padded'}, {readout}"


def _ptb_vectors_line(page: Page, ag: list[str]) -> list[str]:
    """How the transferred vectors were trained, from the word2vec arm's own record."""
    for name in ag:
        res = page.by_recipe[name][0]
        if "w2v_final_loss" not in res["metrics"]:
            continue
        cfg, m = recipe(name)["train"]["w2v"], res["metrics"]
        secs = res.get("timing", {}).get("w2v_train")
        took = f", {secs:.0f} s of training (cached per seed afterwards)" if secs else ""
        return [
            f"Word2vec vectors ({recipe(name)['model']['embed_dim']} dimensions, the "
            f"classifier's embedding size): {cfg['corpus']}, {m['w2v_vocab_size']:,} words, "
            f"{cfg['epochs']} epochs, lr {cfg['lr']:g}, subsampling threshold "
            f"{cfg['threshold']:g}; final mean loss {m['w2v_final_loss']:.3f}{took}.",
            "",
        ]
    return []


def _agnews_row(page: Page, name: str) -> str:
    rs = page.by_recipe[name]
    cov = "—"
    if "w2v_vocab_coverage" in rs[0]["metrics"]:
        cov = f"{mean(rs, 'w2v_vocab_coverage'):.1%} / {mean(rs, 'w2v_token_coverage'):.1%}"
    return (
        f"| {name} | {_init_of(name)} | {spread(rs, 'test_accuracy')} | "
        f"{spread(rs, 'epoch_accuracy')} | {cov} |"
    )


def _agnews_gain(page: Page, ag: list[str]) -> list[str]:
    """Word2vec minus random test accuracy over the seeds both arms ran."""
    by_init: dict[str, dict[int, float]] = defaultdict(dict)
    for name in ag:
        for res in page.by_recipe[name]:
            by_init[_init_of(name)][res["seed"]] = res["metrics"]["test_accuracy"]
    both = sorted(set(by_init["random"]) & set(by_init["word2vec"]))
    if not both:
        return []
    gains = [by_init["word2vec"][s] - by_init["random"][s] for s in both]
    return [
        f"Word2vec minus random, same seed: {sum(gains) / len(gains):+.4f} test accuracy "
        f"on average, better in {sum(g > 0 for g in gains)} of {len(gains)} seed(s).",
        "",
    ]


@for_task("agnews_w2v")
def agnews_w2v(page: Page, ag: list[str]) -> list[str]:
    """The AI-For-Beginners classifier with random and with word2vec embeddings."""
    _agnews_plot(page, ag)
    partial = any(x.get("partial_data") for n in ag for x in page.by_recipe[n])
    return [
        "### AG News with word2vec-initialised embeddings",
        "",
        f"The AI-For-Beginners classifier ({_classifier(ag[0])}), identical in both rows "
        "(same seed, weights and batches) except for the embedding: N(0, 1), or rows copied from word2vec vectors "
        "trained on PTB (Wall Street Journal text: news, as AG News is) wherever the AG News "
        "word is in PTB's vocabulary. One epoch"
        + (" over the partial train file (see the data note)" if partial else "")
        + "; accuracy on the whole test set.",
        "",
        *_ptb_vectors_line(page, ag),
        "| recipe | embedding | test accuracy | train accuracy over the epoch | word2vec "
        "coverage (vocabulary rows / train tokens) |",
        "|---|---|---|---|---|",
        *[_agnews_row(page, name) for name in ag],
        "",
        *_agnews_gain(page, ag),
        "![AG News running accuracy](udacity_agnews_w2v.png)",
        "",
    ]


def _tv_plot(page: Page, tv: list[str]) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    mark = page.by_recipe[tv[0]][0]["metrics"]["pass_mark"]
    for i, name in enumerate(tv):
        for res in page.by_recipe[name]:
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
    save(fig, page.out_dir / "udacity_tv_script_loss.png")


def _tv_verdict(res: dict) -> str:
    """Whether one seed's final loss reached the pass mark, and after how much training."""
    m = res["metrics"]
    train_s = res.get("timing", {}).get("train", res["seconds"])
    over = f" over {m['epochs_run']} epochs" if m["epochs_run"] > 1 else ""
    budget = f"{m['batches']:,} batches{over} ({train_s:.0f} s of training)"
    if m["passed"]:
        return (
            f"**pass mark reached**: loss {m['final_loss']:.3f} < {m['pass_mark']:g} after {budget}"
        )
    return (
        f"**pass mark not reached**: loss {m['final_loss']:.3f} ≥ "
        f"{m['pass_mark']:g} after {budget}; {TV_PASS_NOTE}"
    )


def _tv_script(page: Page, name: str) -> list[str]:
    """The script a recipe's first seed generated, with how it was sampled."""
    res, cfg = page.by_recipe[name][0], recipe(name)["train"]
    return [
        f"Generated by `{name}` (seed {res['seed']}), primed with "
        f"`{cfg.get('prime', 'jerry:')}`, temperature {cfg.get('temperature', 1.0):g}, "
        f"top-k {cfg.get('top_k', 5)}:",
        "",
        "```text",
        res["samples"]["script"].strip("\n"),
        "```",
        "",
    ]


@for_task("tv_script")
def tv_script(page: Page, tv: list[str]) -> list[str]:
    """The TV-script loss against the pass mark, a verdict per seed, and generated text."""
    _tv_plot(page, tv)
    verdicts = [
        f"- `{name}`, seed {res['seed']}: {_tv_verdict(res)}."
        for name in tv
        for res in page.by_recipe[name]
    ]
    return [
        "### TV-script generation (Seinfeld)",
        "",
        "![TV-script loss](udacity_tv_script_loss.png)",
        "",
        *verdicts,
        "",
        'The document announces a script of its own ("This is an example of script which '
        'was generated by my model:") but its text goes straight on to the next section '
        "(the sample was not text in the copy we have), so none stands beside ours here.",
        "",
        *[line for name in tv for line in _tv_script(page, name)],
    ]


def sentiment_note(page: Page, names: list[str]) -> list[str]:
    return [SENTIMENT_NOTE, ""]


#: the Udacity extras, in order
UDACITY_PARTS: tuple[Callable[[Page, list[str]], list[str]], ...] = (
    word2vec,
    agnews_w2v,
    tv_script,
    sentiment_note,
)


def udacity(page: Page, names: list[str]) -> list[str]:
    """Every Udacity extra (UDACITY_PARTS), in order."""
    return [line for part in UDACITY_PARTS for line in part(page, names)]
