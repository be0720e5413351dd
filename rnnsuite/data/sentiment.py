"""Movie reviews in the format of Udacity's Sentiment RNN lesson (reviews.txt + labels.txt).

Preprocessing as the course notebook does it: lower-case, delete ASCII punctuation,
split on whitespace; vocabulary by count (ties in first-seen order) numbered from 1 so
that 0 is the padding id; drop reviews left empty; ``pad_features`` left-pads with 0 and
keeps the *first* ``seq_length`` words of a longer review. positive → 1, negative → 0.

The data is not shipped and has no registered download: pass the two files' paths.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from .fetch import DatasetMissing, MalformedData
from .vocab import Vocab

PAD = "<pad>"
LABELS = {"positive": 1, "negative": 0}
_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


@dataclass
class Reviews:
    features: Tensor  # (N, seq_length) long, left-padded with 0
    labels: Tensor  # (N,) long, 1 = positive
    lengths: Tensor  # (N,) words per review before padding/truncation
    vocab: Vocab  # index 0 is PAD, words from 1
    dropped: int  # reviews removed because nothing was left after cleaning


def _read_lines(path: Path, role: str) -> list[str]:
    if not path.is_file():
        raise DatasetMissing(
            f"{role} file {path} was not found. The sentiment data is not shipped with "
            "rnnsuite and has no download here: copy reviews.txt and labels.txt (Udacity "
            "deep-learning-v2-pytorch, sentiment-rnn/data/; one review or one "
            "'positive'/'negative' per line) onto this machine and pass their paths to "
            "load_reviews(reviews_path, labels_path)."
        )
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()


def tokenize_review(text: str) -> list[str]:
    """The notebook's cleaning: lower-case, drop ``string.punctuation``, whitespace split."""
    return text.lower().translate(_STRIP_PUNCTUATION).split()


def pad_features(reviews_ints: Sequence[Sequence[int]], seq_length: int) -> Tensor:
    """(N, seq_length) ids: a short review is left-padded with 0, a long one keeps its first
    ``seq_length`` words — so the last step an RNN reads is real text for short reviews."""
    if seq_length < 1:
        raise ValueError(f"seq_length must be >= 1, got {seq_length}")
    features = torch.zeros(len(reviews_ints), seq_length, dtype=torch.long)
    for i, row in enumerate(reviews_ints):
        kept = list(row[:seq_length])
        if kept:
            features[i, seq_length - len(kept) :] = torch.tensor(kept, dtype=torch.long)
    return features


def load_reviews(
    reviews_path: Path | str, labels_path: Path | str, seq_length: int = 200
) -> Reviews:
    """Read, clean, encode and pad the two files; see the module docstring for the rules.

    Raises DatasetMissing when a file is absent and MalformedData (file and line) for a
    label other than positive/negative or when the files' line counts differ."""
    reviews_path, labels_path = Path(reviews_path), Path(labels_path)
    review_lines = _read_lines(reviews_path, "reviews")
    label_lines = _read_lines(labels_path, "labels")
    if len(review_lines) != len(label_lines):
        shorter = labels_path if len(label_lines) < len(review_lines) else reviews_path
        raise MalformedData(
            shorter,
            min(len(review_lines), len(label_lines)) + 1,
            f"{reviews_path.name} has {len(review_lines)} lines but {labels_path.name} has "
            f"{len(label_lines)}; each review needs exactly one label on the same line number",
        )
    tokenized: list[list[str]] = []
    labels: list[int] = []
    dropped = 0
    for lineno, (review, label) in enumerate(zip(review_lines, label_lines, strict=True), 1):
        words = tokenize_review(review)
        key = label.strip().lower()
        if not words and not key:  # a blank line in both files (e.g. a trailing one)
            dropped += 1
            continue
        if key not in LABELS:
            raise MalformedData(
                labels_path, lineno, f"label {label!r} is neither 'positive' nor 'negative'"
            )
        if not words:
            dropped += 1
            continue
        tokenized.append(words)
        labels.append(LABELS[key])
    vocab = Vocab.build(tokenized, order="frequency", specials=[PAD], pad_token=PAD)
    reviews_ints = [vocab.encode(words) for words in tokenized]
    return Reviews(
        features=pad_features(reviews_ints, seq_length),
        labels=torch.tensor(labels, dtype=torch.long),
        lengths=torch.tensor([len(r) for r in reviews_ints], dtype=torch.long),
        vocab=vocab,
        dropped=dropped,
    )


def split_dataset(
    features: Tensor,
    labels: Tensor,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    seed: int | None = None,
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """(train, valid, test) pairs in file order, as the notebook splits (no shuffle unless
    ``seed`` is given): ``int(N * f_train)`` rows train, the rest shared by valid and test
    in proportion ``f_valid : f_test`` (rounded down for valid)."""
    if len(features) != len(labels):
        raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(sum(fractions), 1):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1: {fractions}")
    n = len(features)
    if seed is not None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        features, labels = features[order], labels[order]
    n_train = int(n * fractions[0])
    rest = n - n_train
    tail = fractions[1] + fractions[2]
    n_valid = int(rest * fractions[1] / tail) if tail > 0 else 0
    a, b = n_train, n_train + n_valid
    return (features[:a], labels[:a]), (features[a:b], labels[a:b]), (features[b:], labels[b:])
