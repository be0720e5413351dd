"""``bench report RUN_ID`` → ``reports/<run-id>/README.md`` plus PNG plots; and the
Markdown (and plots) of the quality and reproduction reports.

Everything in the throughput report is read from the run's results.jsonl: environment
(provenance), the performance bars, throughput, ratios, FLOP fraction, memory, packed vs
padded, compile time, determinism, failures, and a short findings section whose
sentences are computed from those same numbers.

The pages are ordered lists of small section functions, each ``section(ctx) -> lines``:

- ``throughput.SECTIONS``: the throughput report, of a ``data.Run``; its findings are
  ``throughput_findings.FINDINGS``, of the same Run;
- ``quality.SECTIONS``: the quality report (bench/quality.py reads the records), of a
  ``quality.Page``; a task's part is ``quality.TASK_PARTS``, its findings
  ``quality.TASK_FINDINGS``;
- ``reproduction.SECTIONS``: the reproduction report (bench/reproduce.py reads the
  records and references), of a ``reproduction.Page``; each document's extras are
  ``reproduction_extras.DOC_EXTRAS`` (the Udacity ones ``reproduction_udacity``).

``markdown`` holds what they share (tables, number and ratio formats); ``spec`` the bars
and the architecture names the sentences spell out. The names below are the ones
``bench.report`` has always had; the constants are re-exported copies, so patch them in
``bench.report.spec``.
"""

from __future__ import annotations

import pandas as pd

from . import spec
from .data import Run, bar_rows, transformer_pairs
from .environment import _environment
from .frame import frame, short_name
from .spec import (
    BAR_ARCHS,
    BAR_SPEC,
    BARS,
    DOC_SPECS,
    HARNESS_BAR,
    TRANSFORMER_MATCH,
    VARIANT_MATCH,
    VARIANT_OF,
)
from .throughput import SECTIONS, render
from .throughput_findings import findings, torch_ops
from .write import write_report


def _torch_ops_findings(df: pd.DataFrame) -> list[str]:
    """The scratch_torch finding of a run's frame (throughput_findings.torch_ops)."""
    return torch_ops(Run.of_frame(df))


__all__ = [
    "BARS",
    "BAR_ARCHS",
    "BAR_SPEC",
    "DOC_SPECS",
    "HARNESS_BAR",
    "SECTIONS",
    "TRANSFORMER_MATCH",
    "VARIANT_MATCH",
    "VARIANT_OF",
    "Run",
    "_environment",
    "_torch_ops_findings",
    "bar_rows",
    "findings",
    "frame",
    "render",
    "short_name",
    "spec",
    "transformer_pairs",
    "write_report",
]
