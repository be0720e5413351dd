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
