"""Judge measured numbers against the documents' references — computed, never typed in.

A metric's values across seeds become mean ± std and min–max, then one verdict:
"reproduced" (mean within tolerance, or better in the metric's direction), "within
spread" (the reference lies inside the seeds' range widened by the tolerance), "not
reproduced", or "needs the full train.csv" when the run used partial data the
reference cannot be compared with.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10: the tomli backport
    import tomli as tomllib  # type: ignore[no-redef]

REFERENCES_FILE = Path(__file__).with_name("references.toml")
VERDICTS = ("reproduced", "within spread", "not reproduced", "needs the full train.csv")


def load_references(path: Path = REFERENCES_FILE) -> dict[str, dict[str, Any]]:
    with open(path, "rb") as fh:
        refs = tomllib.load(fh)
    for recipe, spec in refs.items():
        for name, m in spec.get("metrics", {}).items():
            if "reference" not in m or m.get("better") not in ("higher", "lower", "match"):
                raise ValueError(
                    f"{path}: [{recipe}.metrics.{name}] needs `reference` and `better` = "
                    "higher|lower|match"
                )
    return refs


@dataclass(frozen=True)
class Judgement:
    metric: str
    reference: float | bool
    n: int
    mean: float
    std: float
    low: float
    high: float
    verdict: str

    def ours(self) -> str:
        if isinstance(self.reference, bool):
            return f"{self.mean * self.n:.0f}/{self.n} seeds true"
        return f"{self.mean:.4f} ± {self.std:.4f} ({self.low:.4f}–{self.high:.4f}, n={self.n})"


def judge(
    metric: str, values: list[float | bool], ref: dict[str, Any], *, partial_data: bool = False
) -> Judgement:
    """One verdict for one metric over its seeds."""
    if not values:
        raise ValueError(f"no measured values for {metric}")
    nums = [float(v) for v in values]
    mean = statistics.fmean(nums)
    std = statistics.stdev(nums) if len(nums) > 1 else 0.0
    low, high = min(nums), max(nums)
    target, tol, better = ref["reference"], float(ref.get("tolerance", 0.0)), ref["better"]
    t = float(target)
    if partial_data and ref.get("needs") == "full_train":
        verdict = "needs the full train.csv"
    elif (
        (better == "higher" and mean >= t - tol)
        or (better == "lower" and mean <= t + tol)
        or (better == "match" and abs(mean - t) <= tol)
    ):
        verdict = "reproduced"
    elif low - tol <= t <= high + tol:
        verdict = "within spread"
    else:
        verdict = "not reproduced"
    return Judgement(metric, target, len(nums), mean, std, low, high, verdict)
