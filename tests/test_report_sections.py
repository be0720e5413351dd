"""The bench report's page from a small synthetic run (tests/report_synthetic.py) is the
page the report rendered before it was split into sections: tests/data/report_golden.md
was written once by the single-function renderer (bench/report.py at 78d5343)."""

from __future__ import annotations

from pathlib import Path

from report_synthetic import MANIFEST, records

from bench import report

GOLDEN = Path(__file__).with_name("data") / "report_golden.md"
PLOTS = ("throughput_by_arch", "ratio_scratch_builtin", "packed_vs_padded", "scaling_layers",
         "scaling_seqlen", "memory")  # fmt: skip


def synthetic_page() -> str:
    plot_files = {name: Path(f"{name}.png") for name in PLOTS}
    return report.render("synthetic", MANIFEST, records(), plot_files)


def test_the_synthetic_page_is_the_golden_page():
    assert synthetic_page() == GOLDEN.read_text(encoding="utf-8")


REPORT_DIR = Path(report.__file__).parent
SECTION_LINES = 40  # a section or finding function
FUNCTION_LINES = 80  # any function of bench/report/
FILE_LINES = 400


def _functions(path: Path):
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


def test_every_section_and_finding_is_a_small_function():
    import inspect

    from bench.report import quality, reproduction, reproduction_extras, reproduction_udacity
    from bench.report import throughput as sections
    from bench.report import throughput_findings as findings

    pages = (
        (*sections.SECTIONS, *findings.FINDINGS),
        (*quality.SECTIONS, *quality.TASK_PARTS, *quality.TASK_FINDINGS),
        (
            *reproduction.SECTIONS,
            *(extra for _, extra in reproduction_extras.DOC_EXTRAS),
            *reproduction_udacity.UDACITY_PARTS,
        ),
    )
    for fn in (fn for page in pages for fn in page):
        lines = len(inspect.getsourcelines(fn)[0])
        assert lines <= SECTION_LINES, f"{fn.__module__}.{fn.__name__}: {lines} lines"


def test_no_long_function_or_file_in_the_report_package():
    for path in sorted(REPORT_DIR.glob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        assert n <= FILE_LINES, f"{path.name}: {n} lines"
        for name, lines in _functions(path):
            assert lines <= FUNCTION_LINES, f"{path.name}:{name}: {lines} lines"


def test_the_page_is_its_sections_in_order():
    """Each section's lines stand in the page where SECTIONS puts them, and the headings
    come in the order the report has always had."""
    from bench.report import throughput as sections
    from bench.report.data import Run

    plot_files = {name: Path(f"{name}.png") for name in PLOTS}
    run = Run.of_records("synthetic", MANIFEST, records(), plot_files)
    parts = [section(run) for section in sections.SECTIONS]
    assert all(parts), "the synthetic run reaches every section"
    page = synthetic_page()
    at = 0
    for section, lines in zip(sections.SECTIONS, parts, strict=True):
        text = "\n".join(lines)
        assert page[at : at + len(text)] == text, section.__name__
        at += len(text) + 1  # the newline between two sections
    assert at == len(page) + 1
    headings = [line for line in page.split("\n") if line.startswith("## ")]
    assert headings == [
        "## Environment",
        "## Findings",
        "## Performance bars",
        "## Throughput, ratios and FLOP fraction",
        "## Packed vs padded",
        "## Transformer baseline vs RNN built-ins",
        "## Memory",
        "## torch.compile (compiled)",
        "## Determinism",
        "## Failed and skipped cells",
        "## Reproduce",
    ]


def test_every_finding_speaks_for_the_synthetic_run():
    from bench.report import throughput_findings as findings
    from bench.report.data import Run

    run = Run.of_records("synthetic", MANIFEST, records(), {})
    silent = [f.__name__ for f in findings.FINDINGS if not f(run)]
    assert silent == []
    page = GOLDEN.read_text(encoding="utf-8")
    for sentence in findings.run_findings(run):
        assert f"- {sentence}\n" in page


def _timed(recipe: str, start: str, seconds: float, executor: str) -> dict:
    return {
        "status": "ok",
        "cell": {"recipe": recipe},
        "result": {"metrics": {}},
        "started_at": f"2026-12-02T10:{start}+00:00",
        "seconds": seconds,
        "provenance": {"executor": executor},
    }


def test_the_run_time_table_shows_wall_clock_and_a_run_beside(tmp_path):
    from bench.report import reproduction

    ray = [_timed("a", "00:00", 60, "ray"), _timed("a", "00:00", 120, "ray")]  # in parallel
    local = [_timed("a", "00:00", 60, "local"), _timed("a", "01:00", 120, "local")]
    local.append(_timed("b", "03:00", 600, "local"))  # a recipe the ray run has not
    page = reproduction.Page("r", ray, {}, tmp_path, {}, beside=("l", local))
    lines = reproduction.run_times(page)
    assert "| a | 2 | 90 | 2 | 90 |" in lines
    assert any(x.startswith("- `r` (ray executor, 2 cells of the recipes both runs have): 2.0 min")
               for x in lines)  # fmt: skip
    assert any(x.startswith("- `l` (local executor, 2 cells of the recipes both runs have): 3.0 min")
               for x in lines)  # fmt: skip
    alone = reproduction.run_times(reproduction.Page("r", ray, {}, tmp_path, {}))
    assert "| a | 2 | 90 |" in alone and not any("`l`" in x for x in alone)


def test_the_environment_names_what_the_native_build_did():
    from bench.report.environment import _native_text

    def text(source: str) -> str:
        return _native_text({"active": True, "mode": "auto", "cflags": [], "source": source})

    assert "per-step pointwise kernels" in text("rnnsuite_pointwise_89e2450f08b6")
    assert "whole-sequence loops" in text("rnnsuite_sequence_2aa3f088d55b")
    assert "not in use" in _native_text({"active": False, "mode": "0"})


def test_a_variant_timed_with_its_base_is_read_per_repeat():
    """A variant cell that carries vs_base (timed in its base's group, the runner's way
    now) is reported by that per-repeat ratio; an older record without it still reads as a
    ratio of medians and says so."""
    from bench.report import throughput_findings as findings
    from bench.report.data import Run

    recs = records()
    peep = next(r for r in recs if r["cell"]["arch"] == "lstm_peephole")
    lstm = next(
        r for r in recs
        if r["cell"]["arch"] == "lstm" and r["cell"]["impl"] == "scratch"
        and r["cell"]["input"] == "padded" and r["cell"]["T"] == 64
        and r["provenance"]["torch_threads"] == 1
    )  # fmt: skip
    old = findings.variants(Run.of_records("s", MANIFEST, recs, {}))[0]
    assert "ratios of medians" in old
    peep["group"] = lstm["group"]
    peep["ratios"] = {m: {"vs_base": {"median": r, "q1": r - 0.02, "q3": r + 0.01, "n": 9}}
                      for m, r in (("train", 0.93), ("fwd", 0.97))}  # fmt: skip
    new = findings.variants(Run.of_records("s", MANIFEST, recs, {}))[0]
    assert "training 0.93× (0.91–0.94), forward 0.97× (0.95–0.98)" in new
    assert "interleaved" in new and "ratios of medians" not in new
