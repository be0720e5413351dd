"""The reproduction report's Markdown and plots (``bench reproduce`` →
reports/reproduction/): per document, reference | ours | verdict (computed by
rnnsuite.recipes.verdicts), then the curves, tables and text beside the document's own
(reproduction_extras.DOC_EXTRAS); failed cells; run times. The page is SECTIONS in order,
each a small function of a Page returning lines that end with the blank line after them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .reproduction_common import value
from .reproduction_extras import DOC_EXTRAS


@dataclass
class Page:
    """What the reproduction report's sections read: the run's records and references,
    each recipe's ok results, and each document's recipes with their verdicts."""

    run_id: str
    recs: list[dict[str, Any]]
    refs: dict[str, Any]
    out_dir: Path
    documents: dict[str, str]
    beside: tuple[str, list[dict[str, Any]]] | None = None
    by_recipe: dict[str, list[dict]] = field(init=False)
    failures: list[dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_recipe = defaultdict(list)
        self.failures = []
        for r in self.recs:
            if r["status"] == "ok":
                self.by_recipe[r["cell"]["recipe"]].append(r["result"])
            else:
                self.failures.append(r)

    def names(self, doc: str) -> list[str]:
        """The document's recipes this run has results of, in RECIPES order."""
        from rnnsuite.recipes import RECIPES

        return [n for n in RECIPES if RECIPES[n]["document"] == doc and n in self.by_recipe]

    def judged(self, name: str) -> list[tuple[str, dict[str, Any], Any]]:
        """(metric, reference, judgement) for each referenced metric the recipe measured."""
        from rnnsuite.recipes.verdicts import judge

        results = self.by_recipe[name]
        partial = any(x.get("partial_data") for x in results)
        out = []
        for metric, ref in self.refs.get(name, {}).get("metrics", {}).items():
            vals = [x["metrics"][metric] for x in results if metric in x["metrics"]]
            if vals:
                out.append((metric, ref, judge(metric, vals, ref, partial_data=partial)))
        return out


def title(page: Page) -> list[str]:
    return ["# Reproduction of the reference documents", ""]


def summary(page: Page) -> list[str]:
    """How many metrics got each verdict, over every document's table."""
    count: dict[str, int] = defaultdict(int)
    for doc in page.documents:
        for name in page.names(doc):
            for _, _, j in page.judged(name):
                count[j.verdict] += 1
    return [f"**Summary:** {', '.join(f'{v} {k}' for k, v in sorted(count.items()))}.", ""]


def run(page: Page) -> list[str]:
    """The run, its machine and commit, and what the verdicts mean."""
    recs, prov = page.recs, page.recs[0]["provenance"]
    threads = "/".join(sorted({str(r["provenance"]["torch_threads"]) for r in recs}))
    dirty = " (dirty)" if prov.get("git_dirty") else ""
    return [
        f"Run `{page.run_id}`, started {prov['run_started_at']}; {prov['device_name']}, "
        f"{threads} torch thread(s), torch {prov['torch_version']}, commit "
        f"`{(prov.get('git_commit') or 'unknown')[:10]}`{dirty}.",
        f"Every number below is read from `results/{page.run_id}/results.jsonl`; verdicts are "
        "computed by `rnnsuite.recipes.verdicts` from `rnnsuite/recipes/references.toml`.",
        "",
        "Verdicts: **reproduced** — mean within tolerance of the reference, or better; "
        "**within spread** — the reference lies inside our seeds' range (± tolerance); "
        "**not reproduced** — neither; **needs the full train.csv** — the run used partial data.",
        "",
    ]


def data_note(page: Page) -> list[str]:
    """The notes the recipes left in their results (partial data and the like)."""
    notes = sorted({n for res in page.by_recipe.values() for x in res for n in x.get("notes", [])})
    return ["> **Data note:** " + "; ".join(notes), ""] if notes else []


def _verdict_rows(page: Page, name: str) -> list[str]:
    """A recipe's rows of its document's table: one per referenced metric, or what it
    measured where the document printed no number."""
    out = []
    for metric, ref, j in page.judged(name):
        cause = (
            f" — {ref['likely_cause']}"
            if ref.get("likely_cause") and j.verdict == "not reproduced"
            else ""
        )
        out.append(
            f"| {name} | {ref.get('label', metric)} | {value(ref['reference'])} | "
            f"{j.ours()} | **{j.verdict}**{cause} |"
        )
    if not page.refs.get(name, {}).get("metrics"):
        first = page.by_recipe[name][0]["metrics"]
        shown = ", ".join(f"{k} {value(v)}" for k, v in first.items())
        out.append(f"| {name} | (no number printed; measured) | — | {shown} | reported |")
    return out


def document(page: Page, doc: str, title_: str, names: list[str]) -> list[str]:
    """One document: its verdict table, then its extras (DOC_EXTRAS that serve it)."""
    lines = [
        f"## {title_}",
        "",
        "| recipe | metric | reference | ours | verdict |",
        "|---|---|---|---|---|",
        *[row for name in names for row in _verdict_rows(page, name)],
        "",
    ]
    for docs, extra in DOC_EXTRAS:
        if doc in docs:
            lines += extra(page, names)
    return lines


def documents(page: Page) -> list[str]:
    """Every document this run has results for, in the order of the documents."""
    lines = []
    for doc, title_ in page.documents.items():
        names = page.names(doc)
        if names:
            lines += document(page, doc, title_, names)
    return lines


def failures(page: Page) -> list[str]:
    if not page.failures:
        return []
    return [
        "## Failed cells",
        "",
        *[f"- `{f['cell_id']}`: {f['error']}" for f in page.failures],
        "",
    ]


def _mean_seconds(recs: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """recipe -> (ok seeds, mean seconds) over a run's ok records."""
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in recs:
        if r["status"] == "ok":
            seconds[r["cell"]["recipe"]].append(r["seconds"])
    return {name: (len(s), sum(s) / len(s)) for name, s in seconds.items()}


def _wall(run_id: str, recs: list[dict[str, Any]], recipes: set[str] | None = None) -> str:
    """A run's wall clock, first cell's start to last cell's end, beside its cells' sum;
    with recipes, over those recipes' cells only (what two runs have in common)."""
    from datetime import datetime

    recs = [r for r in recs if recipes is None or r["cell"]["recipe"] in recipes]
    spans = [
        (t := datetime.fromisoformat(r["started_at"]).timestamp(), t + r.get("seconds", 0.0))
        for r in recs
    ]
    executors = sorted({r["provenance"].get("executor", "local") for r in recs})
    wall = max(e for _, e in spans) - min(s for s, _ in spans)
    total = sum(r.get("seconds", 0.0) for r in recs)
    common = " of the recipes both runs have" if recipes is not None else ""
    return (
        f"- `{run_id}` ({', '.join(executors)} executor, {len(recs)} cells{common}): "
        f"{wall / 60:.1f} min wall clock, first cell's start to last cell's end; "
        f"{total / 60:.1f} min of cell time"
    )


def run_times(page: Page) -> list[str]:
    """Each recipe's seeds and mean seconds, and the run's wall clock; with a run beside
    (``reproduce --beside RUN``: the same recipes under another executor, say), its too."""
    ours = _mean_seconds(page.recs)
    if page.beside is None:
        head = ["| recipe | seeds | mean seconds |", "|---|---|---|"]
        rows = [f"| {n} | {k} | {s:.0f} |" for n, (k, s) in ours.items()]
        walls = [_wall(page.run_id, page.recs)]
    else:
        other_id, other = page.beside
        theirs = _mean_seconds(other)
        head = [
            f"| recipe | seeds | mean seconds, `{page.run_id}` | seeds | mean seconds, "
            f"`{other_id}` |",
            "|---|---|---|---|---|",
        ]
        rows = [
            f"| {n} | {k} | {s:.0f} | {theirs.get(n, (0, 0))[0]} | "
            + (f"{theirs[n][1]:.0f} |" if n in theirs else "– |")
            for n, (k, s) in ours.items()
        ]
        both = set(ours) & set(theirs)
        walls = [_wall(page.run_id, page.recs, both), _wall(other_id, other, both)]
    return ["## Run times", "", *head, *rows, "", *walls]


#: the page, in order
SECTIONS: tuple[Callable[[Page], list[str]], ...] = (
    title,
    summary,
    run,
    data_note,
    documents,
    failures,
    run_times,
)


def render(
    run_id: str,
    recs: list[dict[str, Any]],
    refs: dict[str, Any],
    out_dir: Path,
    documents: dict[str, str],
    beside: tuple[str, list[dict[str, Any]]] | None = None,
) -> str:
    """The reproduction report's Markdown (drawing the documents' plots into out_dir);
    beside: (run id, records) of a run whose run times stand beside this one's."""
    page = Page(run_id, recs, refs, out_dir, documents, beside)
    return "\n".join(line for section in SECTIONS for line in section(page)) + "\n"
