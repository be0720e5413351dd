"""Sequence-length distributions for padded and packed batches.

* ``full``    — every sequence is T long (no padding).
* ``uniform`` — lengths uniform in 1..T.
* ``agnews``  — AG News's real lengths: whitespace tokens of title + " " +
  description in ``ag_news/test.csv`` (7,600 articles, median 37, max 137),
  truncated at T as a fixed-length pipeline would. Without the file, a fixed
  long-tailed synthetic stand-in (log-normal, median 37, σ 0.25, tail to 140)
  is used, and every result says which one it got.

Padded batches are padded to the size's T (a fixed-shape bucket); the padding
fraction is 1 - sum(lengths) / (T · B).
"""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

import numpy as np

SYNTHETIC = "synthetic lognormal(median=37, sigma=0.25, clip 1..140)"


def agnews_path() -> Path | None:
    """Where AG News's test.csv is: $RNNSUITE_DATA, else ../shared/data beside the repo."""
    roots = []
    if os.environ.get("RNNSUITE_DATA"):
        roots.append(Path(os.environ["RNNSUITE_DATA"]))
    repo = Path(__file__).resolve().parents[2]
    roots += [repo.parent / "shared" / "data", Path("/work/shared/data")]
    for root in roots:
        p = root / "ag_news" / "test.csv"
        if p.is_file():
            return p
    return None


@functools.cache
def agnews_lengths() -> tuple[np.ndarray, str]:
    """(lengths, source): the real distribution, or the synthetic stand-in."""
    path = agnews_path()
    if path is not None:
        try:
            with path.open(newline="", encoding="utf-8") as f:
                lens = [len(f"{row[1]} {row[2]}".split()) for row in csv.reader(f) if len(row) >= 3]
            if lens:
                return np.asarray(lens, dtype=np.int64), f"ag_news/test.csv ({len(lens)} articles)"
        except (OSError, csv.Error, UnicodeDecodeError):
            pass
    rng = np.random.default_rng(12345)
    lens = np.clip(np.rint(rng.lognormal(np.log(37.0), 0.25, 7600)), 1, 140).astype(np.int64)
    return lens, SYNTHETIC


def draw(kind: str, T: int, B: int, seed: int) -> tuple[list[int], dict]:
    """B lengths in 1..T for a batch, and facts about them for the result record."""
    rng = np.random.default_rng(seed + 7919)
    clipped = 0.0
    if kind == "full":
        lens = np.full(B, T, dtype=np.int64)
        source = "full"
    elif kind == "uniform":
        lens = rng.integers(1, T + 1, size=B)
        source = f"uniform 1..{T}"
    elif kind == "agnews":
        pool, source = agnews_lengths()
        raw = rng.choice(pool, size=B, replace=True)
        clipped = float((raw > T).mean())
        lens = np.clip(raw, 1, T)
    else:
        raise ValueError(f"unknown length distribution {kind!r}")
    lens_list = [int(v) for v in lens]
    valid = int(sum(lens_list))
    info = {
        "kind": kind,
        "source": source,
        "min": int(lens.min()),
        "median": float(np.median(lens)),
        "max": int(lens.max()),
        "clipped_fraction": clipped,
        "tokens_valid": valid,
        "tokens_padded": T * B,
        "padding_fraction": 1.0 - valid / (T * B),
    }
    return lens_list, info
