"""AG News as the AI-For-Beginners seed prepared it (torchtext AG_NEWS + basic_english).

Each row ``"label","title","description"`` becomes (label - 1, title + " " + description);
the text is kept as the CSV has it (the ``\\n`` escape sequences stay two characters, as in
torchtext). Without the full train.csv the loader falls back to ``train_partial.csv`` — its
first 10,429 rows — and says so: a ``PartialDataWarning`` and a ``note`` on every object.
"""

from __future__ import annotations

import csv
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from . import fetch
from .cache import load_or_build
from .classification import EncodedClassificationDataset, TextClassificationDataset
from .fetch import DatasetMissing, MalformedData, PartialDataWarning
from .sources import AG_NEWS_TRAIN_ROWS
from .tokenize import basic_english_many
from .vocab import Vocab

CLASSES = ("World", "Sports", "Business", "Sci/Tech")
VocabStyle = Literal["faithful", "reserved"]
_PROCESSED_FORMAT = 1


def read_ag_news_csv(path: Path | str) -> tuple[list[int], list[str]]:
    """(labels 0..3, texts) from an AG News CSV; a bad row raises MalformedData(file, line)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MalformedData(path, line, f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    labels: list[int] = []
    texts: list[str] = []
    reader = csv.reader(io.StringIO(content, newline=""), strict=True)
    try:
        for row in reader:
            line = reader.line_num
            if len(row) != 3:
                raise MalformedData(
                    path, line, f"expected 3 fields (label, title, description), got {len(row)}"
                )
            label = row[0].strip()
            if label not in ("1", "2", "3", "4"):
                raise MalformedData(path, line, f"label must be 1..4, got {row[0]!r}")
            labels.append(int(label) - 1)
            texts.append(f"{row[1]} {row[2]}")
    except csv.Error as exc:
        raise MalformedData(path, reader.line_num, f"CSV error: {exc}") from None
    return labels, texts


@dataclass
class EncodedAGNews:
    """Numericalized AG News: ids per example, the vocabulary, the pad id to collate with."""

    vocab: Vocab
    train: EncodedClassificationDataset
    test: EncodedClassificationDataset
    pad_id: int
    style: VocabStyle
    note: str | None = None

    @property
    def partial(self) -> bool:
        return self.note is not None


@dataclass
class AGNews:
    """Raw AG News splits; ``partial``/``note`` say whether train is the 10,429-row prefix."""

    train: TextClassificationDataset
    test: TextClassificationDataset
    classes: tuple[str, ...] = CLASSES
    note: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        return self.note is not None

    def numericalize(
        self, style: VocabStyle = "faithful", *, use_cache: bool | None = None
    ) -> EncodedAGNews:
        """Tokenize with basic_english and map to ids (cached by content hash).

        ``faithful``: the seed's vocabulary — every train token, first-seen order, no
        specials; unknown test tokens and padding both use id 0 (a real word).
        ``reserved``: ``<pad>`` = 0 and ``<unk>`` = 1 in front of the same tokens."""
        if style not in ("faithful", "reserved"):
            raise ValueError(f"style must be 'faithful' or 'reserved', got {style!r}")
        key = {
            "format": _PROCESSED_FORMAT,
            "tokenizer": "torchtext-basic_english",
            "style": style,
            "train_sha256": self.digests.get("train") or _text_digest(self.train.texts),
            "test_sha256": self.digests.get("test") or _text_digest(self.test.texts),
            "n_train": len(self.train),
            "n_test": len(self.test),
        }
        payload = load_or_build("ag_news", key, lambda: self._encode(style), use_cache=use_cache)
        vocab = _vocab_from_itos(payload["itos"], style)
        note = self.note
        train = EncodedClassificationDataset(
            payload["train_labels"], payload["train_ids"], payload["train_offsets"], note
        )
        test = EncodedClassificationDataset(  # the note describes the run, so both splits
            payload["test_labels"], payload["test_ids"], payload["test_offsets"], note
        )
        return EncodedAGNews(vocab, train, test, 0, style, note)

    def _encode(self, style: VocabStyle) -> dict:
        train_tokens = basic_english_many(self.train.texts)
        test_tokens = basic_english_many(self.test.texts)
        if style == "faithful":
            vocab = Vocab.build(train_tokens, order="first-seen", default_index=0)
        else:
            vocab = Vocab.build(
                train_tokens,
                specials=("<pad>", "<unk>"),
                unk_token="<unk>",
                pad_token="<pad>",
            )
        payload: dict = {"itos": vocab.itos}
        for split, labels, tokens in (
            ("train", self.train.labels, train_tokens),
            ("test", self.test.labels, test_tokens),
        ):
            ids, offsets = vocab.encode_many(tokens)
            payload[f"{split}_labels"] = torch.tensor(labels, dtype=torch.long)
            payload[f"{split}_ids"] = ids
            payload[f"{split}_offsets"] = offsets
        return payload


def _vocab_from_itos(itos: list[str], style: VocabStyle) -> Vocab:
    if style == "faithful":
        return Vocab(itos, default_index=0)
    return Vocab(itos, unk_token="<unk>", pad_token="<pad>")


def _text_digest(texts: list[str]) -> str:
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def partial_note(rows: int) -> str:
    return f"partial: {rows:,} of {AG_NEWS_TRAIN_ROWS:,} rows"


def load_ag_news(
    root: Path | str | None = None,
    *,
    download: bool | None = None,
    verify: bool = True,
    allow_partial: bool = True,
    mirror: str | None = None,
) -> AGNews:
    """Load train and test; fall back (loudly) to train_partial.csv when train.csv is absent."""
    test = fetch.locate_info(
        "ag_news", "test.csv", root=root, download=download, verify=verify, mirror=mirror
    )
    note = None
    try:
        train = fetch.locate_info(
            "ag_news", "train.csv", root=root, download=download, verify=verify, mirror=mirror
        )
    except DatasetMissing as missing:
        if not allow_partial:
            raise
        try:
            train = fetch.locate_info("ag_news", "train_partial.csv", root=root, verify=verify)
        except DatasetMissing:
            raise missing from None
    train_labels, train_texts = read_ag_news_csv(train.path)
    test_labels, test_texts = read_ag_news_csv(test.path)
    if train.spec.filename == "train_partial.csv":
        note = partial_note(len(train_labels))
        warnings.warn(
            f"AG News: train.csv is missing, using {train.path} ({note}). Results built on it "
            f"must carry this note; get the full file with `python -m rnnsuite.data download "
            f"ag_news`.",
            PartialDataWarning,
            stacklevel=2,
        )
    return AGNews(
        TextClassificationDataset(train_labels, train_texts, note),
        TextClassificationDataset(test_labels, test_texts, note),
        CLASSES,
        note,
        {"train": train.path, "test": test.path},
        {"train": fetch.file_digest(train.path), "test": fetch.file_digest(test.path)},
    )


__all__ = [
    "CLASSES",
    "AGNews",
    "EncodedAGNews",
    "load_ag_news",
    "partial_note",
    "read_ag_news_csv",
]
