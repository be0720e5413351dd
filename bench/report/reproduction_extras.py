"""The curves, tables and text the reproduction report sets beside each document's own:
each a small function of the page and the document's recipes, in DOC_EXTRAS order."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from .reproduction_common import for_task, mean, pyplot, save
from .reproduction_udacity import udacity

if TYPE_CHECKING:
    from .reproduction import Page


def _ai4b_plot(page: Page, names: list[str]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ref = page.refs.get(name, {}).get("curve", {}).get("points", [])
        if ref:
            ax.plot(*zip(*ref, strict=True), "k-", lw=2, label="document")
        for res in page.by_recipe[name]:
            pts = res["curves"]["running_accuracy"]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o-", ms=3, label=f"seed {res['seed']}")
        ax.set(title=name, xlabel="training samples", ylabel="running train accuracy")
        ax.legend(fontsize=7)
    save(fig, page.out_dir / "ai4b_running_accuracy.png")


def _ai4b_rows(page: Page, name: str) -> list[str]:
    """A recipe's running accuracy against the document's at the sample counts both have."""
    from rnnsuite.recipes.verdicts import judge

    curve = page.refs.get(name, {}).get("curve", {})
    ref = {int(s): a for s, a in curve.get("points", [])}
    ours: dict[int, list[float]] = defaultdict(list)
    for res in page.by_recipe[name]:
        for s, a in res["curves"]["running_accuracy"]:
            ours[s].append(a)
    rule = {"better": "match", "tolerance": curve.get("tolerance", 0.04)}
    out = []
    for s in sorted(set(ref) & set(ours)):
        j = judge(f"acc@{s}", ours[s], {**rule, "reference": ref[s]})
        cause = (
            f" — {curve['likely_cause']}"
            if j.verdict == "not reproduced" and curve.get("likely_cause")
            else ""
        )
        out.append(f"| {name} | {s:,} | {ref[s]:.4f} | {j.ours()} | **{j.verdict}**{cause} |")
    return out


def ai4b(page: Page, names: list[str]) -> list[str]:
    """AG News running accuracy: every seed over the document's curve, and a verdict per
    sample count."""
    _ai4b_plot(page, names)
    return [
        "![running accuracy](ai4b_running_accuracy.png)",
        "",
        "Running train accuracy at the sample counts both runs reached:",
        "",
        "| recipe | samples | document | ours | verdict |",
        "|---|---|---|---|---|",
        *[row for name in names for row in _ai4b_rows(page, name)],
        "",
    ]


def _fastbook_document(axes, table: list, color: str, name: str) -> None:
    """The document's own per-epoch table, thick and faint."""
    epochs = [r[0] for r in table]
    style = {"color": color, "lw": 2.5, "alpha": 0.5}
    axes[0].plot(epochs, [r[3] for r in table], "-", **style, label=f"{name} (document)")
    axes[1].plot(epochs, [r[2] for r in table], "-", **style)


def fastbook(page: Page, names: list[str]) -> list[str]:
    """Human Numbers per-epoch accuracy and loss: our seeds dashed over the document's."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, name in enumerate(names):
        color = f"C{i}"
        table = page.refs.get(name, {}).get("table", {}).get("rows", [])
        if table:
            _fastbook_document(axes, table, color, name)
        for res in page.by_recipe[name]:
            ep = res["curves"]["epochs"]
            epochs = [e["epoch"] for e in ep]
            axes[0].plot(epochs, [e["accuracy"] for e in ep], "--", color=color, lw=1)
            axes[1].plot(epochs, [e["valid_loss"] for e in ep], "--", color=color, lw=1)
    axes[0].set(
        title="validation accuracy (thick: document, dashed: our seeds)",
        xlabel="epoch",
        ylabel="accuracy",
    )
    axes[1].set(title="validation loss", xlabel="epoch", ylabel="loss")
    axes[0].legend(fontsize=7)
    save(fig, page.out_dir / "fastbook_epochs.png")
    return ["![per-epoch curves](fastbook_epochs.png)", ""]


def _labelled_curves(ax, page: Page, names: list[str], points: Callable, **style) -> None:
    """Every seed's curve of each recipe in its own colour, the recipe named once."""
    for i, name in enumerate(names):
        for res in page.by_recipe[name]:
            label = name if res is page.by_recipe[name][0] else None
            ax.plot(*points(res), color=f"C{i}", **style, label=label)


def _valid_ppl(res: dict) -> tuple[list, list]:
    ep = res["curves"]["epochs"]
    return [e["epoch"] for e in ep], [e["valid_ppl"] for e in ep]


def _bce(res: dict) -> tuple:
    return tuple(zip(*res["curves"]["bce"], strict=True))


@for_task("time_machine")
def d2l_time_machine(page: Page, tm: list[str]) -> list[str]:
    """Time Machine validation perplexity per epoch, and the continuation of "time
    traveller" beside the document's."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    _labelled_curves(ax, page, tm, _valid_ppl)
    ax.set(title="Time Machine validation perplexity", xlabel="epoch", ylabel="perplexity",
           yscale="log")  # fmt: skip
    ax.legend(fontsize=7)
    save(fig, page.out_dir / "d2l_time_machine.png")
    out = [
        "![perplexity](d2l_time_machine.png)",
        "",
        '| recipe | validation perplexity | continuation of "time traveller" (ours, seed '
        "0) | the document's |",
        "|---|---|---|---|",
    ]
    for name in tm:
        res = page.by_recipe[name][0]
        doc_text = page.refs.get(name, {}).get("text", {}).get("continuation", "")
        out.append(
            f"| {name} | {res['metrics']['valid_ppl']:.2f} | "
            f"`{res['samples']['continuation']}` | `{doc_text}` |"
        )
    return [*out, ""]


def _example_rows(page: Page, mt: list[str]) -> list[str]:
    """The four example sentences (seed 0) translated, beside the document's."""
    doc_ex = {e["source"]: e for e in page.refs.get("mt_seq2seq", {}).get("examples", [])}
    out = []
    for name in mt:
        for ex in page.by_recipe[name][0]["samples"]["examples"]:
            d = doc_ex.get(ex["source"], {})
            out.append(
                f"| {name} | {ex['source']} | {d.get('prediction', '')} | "
                f"{ex['prediction']} | {d.get('bleu', float('nan')):.3f} → {ex['bleu']:.3f} |"
            )
    return out


@for_task("translation")
def translation(page: Page, mt: list[str]) -> list[str]:
    """English–French: BLEU and loss per recipe, and the example sentences."""
    out = [
        "| recipe | corpus BLEU (sacrebleu, validation) | mean d2l BLEU of the four "
        "examples | validation loss |",
        "|---|---|---|---|",
    ]
    for name in mt:
        rs = page.by_recipe[name]
        out.append(
            f"| {name} | {mean(rs, 'corpus_bleu'):.2f} | "
            f"{mean(rs, 'bleu_examples_mean'):.3f} | {mean(rs, 'valid_loss'):.3f} |"
        )
    return [
        *out,
        "",
        "Translations of the four example sentences (seed 0) beside the document's:",
        "",
        "| recipe | source | document | ours | BLEU (document → ours) |",
        "|---|---|---|---|---|",
        *_example_rows(page, mt),
        "",
    ]


@for_task("song_acceptor")
def element_song(page: Page, songs: list[str]) -> list[str]:
    """The song 5-gram acceptor's loss, every seed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    _labelled_curves(ax, page, songs, _bce, lw=1)
    ax.set(title="song 5-gram acceptor: BCE", xlabel="step", ylabel="loss", yscale="log")
    ax.legend(fontsize=7)
    save(fig, page.out_dir / "element_song.png")
    return ["![acceptor loss](element_song.png)", ""]


#: (the documents it serves, the extra), in the order a document's extras follow its table
DOC_EXTRAS: tuple[tuple[tuple[str, ...], Callable[[Page, list[str]], list[str]]], ...] = (
    (("ai4b",), ai4b),
    (("fastbook",), fastbook),
    (("d2l",), d2l_time_machine),
    (("d2l", "udacity"), translation),
    (("udacity",), udacity),
    (("element",), element_song),
)
